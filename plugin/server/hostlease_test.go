package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
)

// testCluster is plugin instances sharing one KV store and passing each other's plugin cluster
// events, as the app nodes of a Mattermost cluster do. A real cluster needs an Enterprise
// licence, so this is how the managed host's lock and call forwarding are tested.
type testCluster struct {
	kv *memKV

	mu    sync.Mutex
	nodes []*Plugin
}

// clusterNode is one app node in managed mode, whose host is this test binary (TestMain).
type clusterNode struct {
	p      *Plugin
	api    *testAPI
	socket string
	state  string // the managed host's state directory
}

func (n clusterNode) seen() string {
	raw, _ := os.ReadFile(filepath.Join(n.state, "seen.log"))
	return string(raw)
}

func (c *testCluster) node(t *testing.T) clusterNode {
	t.Helper()
	api := newTestAPI(t)
	p := &Plugin{}
	// Registered before activationMocks' own KV mocks, so these are the ones that answer.
	api.On("KVGet", mock.Anything).Return(c.kv.KVGet)
	api.On("KVSetWithOptions", mock.Anything, mock.Anything, mock.Anything).Return(c.kv.KVSetWithOptions)
	api.On("KVDelete", mock.Anything).Return(c.kv.KVDelete)
	api.On("PublishPluginClusterEvent", mock.Anything, mock.Anything).Return(func(ev model.PluginClusterEvent, _ model.PluginClusterEventSendOptions) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, other := range c.nodes {
			if other != p {
				go other.OnPluginClusterEvent(nil, ev) // the server delivers on its own goroutine
			}
		}
		return nil
	}).Maybe()
	bundle := writeBundle(t, true)
	socket := shortSocketPath(t)
	activationMocks(api, bundle, map[string]any{"socketpath": socket, "mattermosturl": "http://mm"})
	p.SetAPI(api)
	c.mu.Lock()
	c.nodes = append(c.nodes, p)
	c.mu.Unlock()
	return clusterNode{p: p, api: api, socket: socket, state: filepath.Join(filepath.Dir(bundle), "."+pluginID, "state")}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); {
		require.True(t, time.Now().Before(deadline), "timed out waiting for %s", what)
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOneNodeOfAClusterRunsTheManagedHostAndTheOthersForwardToIt(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("Unix only")
	}
	t.Setenv("CODEX_MM_FAKE_HOST", "1")
	c := &testCluster{kv: newMemKV()}
	one, two := c.node(t), c.node(t)

	require.NoError(t, one.p.OnActivate())
	assert.Contains(t, one.seen(), "request PUT /v1/config", "the first node takes the lock at once and configures its host")
	require.NoError(t, two.p.OnActivate())
	assert.True(t, two.p.state().proc == nil, "the second node starts no host")
	assert.Empty(t, two.seen(), "the second node starts no host")
	assert.True(t, two.api.logged("Another server node of the cluster runs codex-host"), two.api.allLogs())

	// A command received by node two is answered by node one's host.
	resp, _, failure := two.p.forwardCommand(two.p.state(), CommandRequest{Text: "status"})
	require.Nil(t, failure)
	assert.Equal(t, "answered by the host on "+one.socket, resp.Text)
	assert.Contains(t, one.seen(), "request POST /v1/commands")

	// Node one goes away: node two takes the lock, starts its own host and configures it.
	require.NoError(t, one.p.OnDeactivate())
	assert.Contains(t, one.seen(), "sigterm")
	waitUntil(t, "node two to run the host", func() bool { return strings.Contains(two.seen(), "request PUT /v1/config") })
	assert.True(t, two.api.logged("This server node now runs codex-host for the cluster"))
	resp, _, failure = two.p.forwardCommand(two.p.state(), CommandRequest{Text: "status"})
	require.Nil(t, failure)
	assert.Equal(t, "answered by the host on "+two.socket, resp.Text)

	require.NoError(t, two.p.OnDeactivate())
	assert.Contains(t, two.seen(), "sigterm")
	lease, _ := c.kv.KVGet(kvHostNode)
	assert.Nil(t, lease, "the last holder gives the lease back")
}

func TestAHostWhoseNodeDiedIsTakenOverWhenItsLeaseExpires(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("Unix only")
	}
	t.Setenv("CODEX_MM_FAKE_HOST", "1")
	c := &testCluster{kv: newMemKV()}
	// Another node holds the lease and has just died: nothing answers for it.
	_, _ = c.kv.KVSetWithOptions(kvHostNode, []byte("gone"), model.PluginKVSetOptions{ExpireInSeconds: 60})
	n := c.node(t)

	start := time.Now()
	require.NoError(t, n.p.OnActivate())
	assert.Less(t, time.Since(start), 2*time.Second, "activation does not wait for the lease")
	assert.True(t, n.p.state().proc == nil, "the lease is another node's")

	// Calls go to the holder, which does not answer: unreachable, after the call's own timeout.
	start = time.Now()
	_, err := holderConn{link: n.p.state().hub.cluster}.call(context.Background(), 200*time.Millisecond, http.MethodPost, routeCommands, CommandRequest{})
	assert.Equal(t, hostUnreachable, asHostError(err).kind)
	assert.Contains(t, err.Error(), "did not answer")
	assert.Less(t, time.Since(start), 3*time.Second)

	// Its lease expires: this node takes it, starts its host and answers.
	c.kv.expire(kvHostNode)
	waitUntil(t, "the node to take over", func() bool { return strings.Contains(n.seen(), "request PUT /v1/config") })
	resp, _, failure := n.p.forwardCommand(n.p.state(), CommandRequest{Text: "status"})
	require.Nil(t, failure)
	assert.Equal(t, "answered by the host on "+n.socket, resp.Text)

	require.NoError(t, n.p.OnDeactivate())
	lease, _ := c.kv.KVGet(kvHostNode)
	assert.Nil(t, lease)
}

// A holder that could not renew in time (frozen past the expiry) finds another node's name on
// the lease, stops its host and forwards calls to the new holder: never two hosts for long.
func TestAHolderWhoseLeaseWasTakenOverStepsDown(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("Unix only")
	}
	t.Setenv("CODEX_MM_FAKE_HOST", "1")
	c := &testCluster{kv: newMemKV()}
	one := c.node(t)
	require.NoError(t, one.p.OnActivate())
	require.Contains(t, one.seen(), "request PUT /v1/config")

	// Node one's lease expired while it was frozen, and node two took it.
	c.kv.expire(kvHostNode)
	two := c.node(t)
	require.NoError(t, two.p.OnActivate())
	assert.Contains(t, two.seen(), "request PUT /v1/config", "node two took the expired lease at once")

	waitUntil(t, "node one to stop its host and forward", func() bool {
		return strings.Contains(one.seen(), "sigterm") && one.p.state().target().client == nil
	})
	assert.True(t, one.api.logged("Another server node of the cluster took over codex-host"), one.api.allLogs())
	resp, _, failure := one.p.forwardCommand(one.p.state(), CommandRequest{Text: "status"})
	require.Nil(t, failure)
	assert.Equal(t, "answered by the host on "+two.socket, resp.Text)

	require.NoError(t, one.p.OnDeactivate())
	lease, _ := c.kv.KVGet(kvHostNode)
	assert.Equal(t, two.p.state().hub.cluster.node, string(lease), "the old holder leaves the new one's lease alone")
	require.NoError(t, two.p.OnDeactivate())
}

// The holder answers forwarded calls with its own host, and its host's answers and failures
// reach the caller as the same kinds of error as over the socket.
func TestForwardedCallsCarryTheHostsAnswersAndFailures(t *testing.T) {
	host := startFakeHost(t, "s3cret")
	host.handle("POST "+routeActions, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(ErrorBody{Error: "this run has finished"})
	})
	host.handle("POST "+routeCommands, func(w http.ResponseWriter, r *http.Request) {
		var req CommandRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		_ = json.NewEncoder(w).Encode(map[string]any{"text": "got " + req.Text})
	})
	kv := newMemKV()
	links := make([]*clusterLink, 2)
	for i := range links {
		other := 1 - i
		links[i] = newClusterLink(newRunnerHub(), kv, func(ev model.PluginClusterEvent) error {
			go links[other].receive(ev)
			return nil
		})
	}
	var holderClient *hostClient
	var mu sync.Mutex
	links[1].localHost = func() *hostClient { mu.Lock(); defer mu.Unlock(); return holderClient }
	mu.Lock()
	holderClient = newHostClient(host.socket, host.secret, sameUserPeer())
	mu.Unlock()
	_, _ = kv.KVSetWithOptions(kvHostNode, []byte(links[1].node), model.PluginKVSetOptions{})
	conn := holderConn{link: links[0]}

	raw, err := conn.call(context.Background(), time.Second, http.MethodPost, routeCommands, CommandRequest{Text: "status"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"text":"got status"}`, string(raw))

	_, err = conn.call(context.Background(), time.Second, http.MethodPost, routeActions, ActionRequest{})
	he := asHostError(err)
	assert.Equal(t, hostRejected, he.kind)
	assert.Equal(t, http.StatusBadRequest, he.status)
	assert.Equal(t, "this run has finished", he.message)

	// The record names node one, which no longer runs a host.
	mu.Lock()
	holderClient = nil
	mu.Unlock()
	_, err = conn.call(context.Background(), time.Second, http.MethodPost, routeCommands, CommandRequest{})
	assert.Equal(t, hostUnreachable, asHostError(err).kind)
	assert.Contains(t, err.Error(), "does not run codex-host")

	assert.Empty(t, links[0].hub.waiting, "no caller is left waiting")
}
