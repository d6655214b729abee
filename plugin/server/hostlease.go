package main

// Managed mode in a cluster: exactly one app node runs codex-host. The nodes compete for a
// cluster mutex (Mattermost's own, kept in the plugin KV store); the node holding it starts the
// host and writes a record naming itself ("host_node"), refreshed while it holds the lock. The
// others start no host and forward each call meant for the local host to that node as a plugin
// cluster event (clusterLink, runnercluster.go); the holder asks its host over its socket and
// sends the answer back the same way. A node that does not hold the lock keeps waiting for it in
// the background and takes over when the holder deactivates, or crashes and stops refreshing
// the lock. On a single server the lock is free and taken at once. The mutex stores no holder
// id, so a holder frozen past its expiry may refresh a lock another node took meanwhile, and two
// hosts run (docs/architecture.md, "Managed mode in a cluster").

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/pluginapi/cluster"
)

const (
	hostMutexKey     = "managed_host"
	kvHostNode       = "host_node"
	clusterHostEvent = "codex_host_envelope"
	// hostNodeEvery is how often the holder rewrites its record; a record older than
	// hostNodeFresh names a node that has gone away.
	hostNodeEvery = 5 * time.Second
	hostNodeFresh = 3 * hostNodeEvery
	// leaseFirstTry bounds activation's own try for the lock: LockWithContext tries at once, then
	// waits at least 0.75 s between tries, so this is exactly one try.
	leaseFirstTry = 250 * time.Millisecond
	// leaseReleaseWait bounds how long deactivation waits for the lock to be given back.
	leaseReleaseWait = 5 * time.Second
	// forwardMargin is the time a forwarded call's answer gets to travel back from the holder.
	forwardMargin = time.Second
)

// leaseAPI is the part of plugin.API the cluster mutex needs.
type leaseAPI interface {
	KVSetWithOptions(key string, value []byte, options model.PluginKVSetOptions) (bool, *model.AppError)
	LogError(msg string, keyValuePairs ...any)
}

// hostLease is this node's claim to run the managed host.
type hostLease struct {
	link  *clusterLink
	mutex *cluster.Mutex

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	startOnce sync.Once
	started   atomic.Bool
	holding   atomic.Bool
}

type hostNodeRecord struct {
	Node string `json:"node"`
	At   int64  `json:"at"` // unix milliseconds
}

// clusterHostEnvelope is a call for the managed host, sent to the node that runs it.
type clusterHostEnvelope struct {
	To        string   `json:"to"`
	From      string   `json:"from"`
	TimeoutMs int64    `json:"timeout_ms"`
	Envelope  envelope `json:"envelope"`
}

func newHostLease(api leaseAPI, link *clusterLink) *hostLease {
	mutex, err := cluster.NewMutex(api, hostMutexKey)
	if err != nil {
		panic(err) // only for an empty key
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &hostLease{link: link, mutex: mutex, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// held reports whether this node runs the managed host.
func (l *hostLease) held() bool {
	return l != nil && l.holding.Load()
}

// start claims the lock once per activation: it reports whether this node got it at once;
// otherwise a goroutine waits for it and calls onAcquired when it has it.
func (l *hostLease) start(onAcquired func()) bool {
	l.startOnce.Do(func() {
		l.started.Store(true)
		first, cancel := context.WithTimeout(l.ctx, leaseFirstTry)
		defer cancel()
		if l.mutex.LockWithContext(first) == nil {
			l.holding.Store(true)
			go l.hold(nil)
			return
		}
		go func() {
			if l.mutex.LockWithContext(l.ctx) != nil {
				close(l.done)
				return
			}
			l.holding.Store(true)
			l.hold(onAcquired)
		}()
	})
	return l.held()
}

// hold keeps the record naming this node fresh until release, then gives the lock back.
func (l *hostLease) hold(onAcquired func()) {
	defer close(l.done)
	l.writeRecord()
	if onAcquired != nil {
		onAcquired()
	}
	tick := time.NewTicker(hostNodeEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			l.writeRecord()
		case <-l.ctx.Done():
			l.holding.Store(false)
			if l.link.hostNode() == l.link.node {
				_ = l.link.kv.KVDelete(kvHostNode)
			}
			l.mutex.Unlock()
			return
		}
	}
}

func (l *hostLease) writeRecord() {
	raw, _ := json.Marshal(hostNodeRecord{Node: l.link.node, At: model.GetMillis()})
	_, _ = l.link.kv.KVSetWithOptions(kvHostNode, raw, model.PluginKVSetOptions{ExpireInSeconds: int64(hostNodeFresh / time.Second)})
}

// release gives the lock back (the host must be stopped first) or stops waiting for it, and
// waits up to timeout for that to be done. Call it without the plugin's lifecycle lock: a lease
// that has just got the lock takes that lock to start the host.
func (l *hostLease) release(timeout time.Duration) {
	if l == nil || !l.started.Load() {
		return
	}
	l.cancel()
	select {
	case <-l.done:
	case <-time.After(timeout):
	}
}

// hostNode is the node that runs the managed host now ("" when none does).
func (c *clusterLink) hostNode() string {
	if c == nil {
		return ""
	}
	raw, appErr := c.kv.KVGet(kvHostNode)
	var rec hostNodeRecord
	if appErr != nil || raw == nil || json.Unmarshal(raw, &rec) != nil {
		return ""
	}
	if time.Since(time.UnixMilli(rec.At)) >= hostNodeFresh {
		return ""
	}
	return rec.Node
}

// holderConn is the managed host seen from a node that does not run it: each call goes to the
// node that does, as a cluster event, and its answer comes back the same way.
type holderConn struct {
	link *clusterLink
}

func (c holderConn) call(ctx context.Context, timeout time.Duration, method, path string, in any) ([]byte, error) {
	node := c.link.hostNode()
	if node == "" || node == c.link.node { // the second: this node is just giving the host up
		return nil, &hostError{kind: hostUnreachable, message: "no node of the cluster runs the managed codex-host right now (one takes over within seconds of the last one going away)"}
	}
	env, err := newEnvelope(method, path, in)
	if err != nil {
		return nil, err
	}
	hub := c.link.hub
	ch := make(chan runnerAnswer, 1)
	hub.mu.Lock()
	hub.waiting[env.ID] = waiter{ch: ch} // no runner: no runner's answer can match it
	hub.mu.Unlock()
	defer hub.forget(env.ID)
	err = c.link.send(clusterHostEvent, clusterHostEnvelope{To: node, From: c.link.node, TimeoutMs: timeout.Milliseconds(), Envelope: env})
	if err != nil {
		return nil, &hostError{kind: hostUnreachable, message: fmt.Sprintf("%s %s: the server node running codex-host could not be reached: %v", method, path, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+forwardMargin)
	defer cancel()
	select {
	case a := <-ch:
		if a.Status == 0 {
			var eb ErrorBody
			_ = json.Unmarshal(a.Body, &eb)
			return nil, &hostError{kind: hostUnreachable, message: "on the server node running it: " + eb.Error}
		}
		return classifyAnswer(a.Status, a.Body)
	case <-ctx.Done():
		return nil, &hostError{kind: hostUnreachable, message: fmt.Sprintf("the server node running codex-host did not answer %s %s within %s", method, path, timeout+forwardMargin)}
	}
}

// serveHost answers another node's call with this node's host (nil: this node runs none).
func (c *clusterLink) serveHost(in clusterHostEnvelope, local *hostClient) {
	if local == nil {
		c.sendAnswer(in.From, hostAnswer(in.Envelope.ID, nil, &hostError{kind: hostUnreachable, message: "this node does not run codex-host (any more)"}))
		return
	}
	var body any
	if len(in.Envelope.Body) > 0 {
		body = in.Envelope.Body
	}
	timeout := time.Duration(in.TimeoutMs) * time.Millisecond
	raw, err := local.call(context.Background(), timeout, in.Envelope.Method, in.Envelope.Path, body)
	c.sendAnswer(in.From, hostAnswer(in.Envelope.ID, raw, err))
}

// hostAnswer is a host call's outcome as an answer envelope. Status 0 stands for "the host did
// not answer", which classifyAnswer has no status for.
func hostAnswer(id string, raw []byte, err error) runnerAnswer {
	if err == nil && (len(raw) == 0 || json.Valid(raw)) {
		return runnerAnswer{ID: id, Status: http.StatusOK, Body: raw}
	}
	if err == nil {
		err = &hostError{kind: hostFailed, status: http.StatusBadGateway, message: "the host's answer is not JSON"}
	}
	he := asHostError(err)
	body, _ := json.Marshal(ErrorBody{Error: he.message})
	status := he.status
	switch {
	case he.kind == hostUnreachable || he.kind == hostWrongPeer:
		status = 0
	case status == 0:
		status = http.StatusInternalServerError
	}
	return runnerAnswer{ID: id, Status: status, Body: body}
}
