package main

// Managed mode in a cluster: exactly one app node runs codex-host. The nodes compete for a lease
// in the plugin KV store: the key "host_node", whose value names the node holding it, written only
// with atomic compare-and-set and expiring hostNodeFresh after the holder's last refresh. The node
// holding it starts the host; the others start none and forward each call meant for the local
// host to that node as a plugin cluster event (clusterLink, runnercluster.go); the holder asks its
// host over its socket and sends the answer back the same way. Every node tries again every
// leaseEvery: a node without the lease takes it once it is free (the holder deactivated, or
// crashed and let it expire); the holder refreshes it, and steps down — stops its host — when the
// refresh finds another node's name there (it was frozen past the expiry and another node took
// over) or has not succeeded for hostNodeFresh. On a single server the lease is free and taken at
// once.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

const (
	kvHostNode       = "host_node"
	clusterHostEvent = "codex_host_envelope"
	// leaseEvery is how often every node tries for the lease (the holder: refreshes it).
	leaseEvery = 3 * time.Second
	// hostNodeFresh is how long the lease outlives its holder's last refresh.
	hostNodeFresh = 15 * time.Second
	// leaseReleaseWait bounds how long deactivation waits for the lease to be given back.
	leaseReleaseWait = 5 * time.Second
	// forwardMargin is the time a forwarded call's answer gets to travel back from the holder.
	forwardMargin = time.Second
)

// hostLease is this node's claim to run the managed host.
type hostLease struct {
	link *clusterLink

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	startOnce sync.Once
	started   atomic.Bool
	holding   atomic.Bool
	// refreshed is when the holder last renewed the lease (unix ms); only the lease's goroutine
	// writes it after start.
	refreshed atomic.Int64
}

// clusterHostEnvelope is a call for the managed host, sent to the node that runs it.
type clusterHostEnvelope struct {
	To        string   `json:"to"`
	From      string   `json:"from"`
	TimeoutMs int64    `json:"timeout_ms"`
	Envelope  envelope `json:"envelope"`
}

func newHostLease(link *clusterLink) *hostLease {
	ctx, cancel := context.WithCancel(context.Background())
	return &hostLease{link: link, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// held reports whether this node runs the managed host.
func (l *hostLease) held() bool {
	return l != nil && l.holding.Load()
}

// start tries for the lease once, at once, and then keeps trying (or refreshing) in the
// background until release; onChange runs (on that goroutine) whenever this node starts or stops
// holding it. It reports whether this node holds the lease now. Only the first call does this.
func (l *hostLease) start(onChange func()) bool {
	l.startOnce.Do(func() {
		l.started.Store(true)
		l.holding.Store(l.renew(false))
		go l.run(onChange)
	})
	return l.held()
}

func (l *hostLease) run(onChange func()) {
	defer close(l.done)
	tick := time.NewTicker(leaseEvery)
	defer tick.Stop()
	for {
		select {
		case <-l.ctx.Done():
			if l.holding.Swap(false) {
				// Deleted only if it still names this node.
				_, _ = l.link.kv.KVSetWithOptions(kvHostNode, nil, model.PluginKVSetOptions{Atomic: true, OldValue: []byte(l.link.node)})
			}
			return
		case <-tick.C:
			was := l.holding.Load()
			now := l.renew(was)
			if now != was {
				l.holding.Store(now)
				onChange()
			}
		}
	}
}

// renew takes the lease (holding false) or refreshes it (true), and reports whether this node
// holds it afterwards. A store error leaves the holder holding until the lease would have expired.
func (l *hostLease) renew(holding bool) bool {
	me := []byte(l.link.node)
	opts := model.PluginKVSetOptions{Atomic: true, ExpireInSeconds: int64(hostNodeFresh / time.Second)}
	if holding {
		opts.OldValue = me
	}
	ok, appErr := l.link.kv.KVSetWithOptions(kvHostNode, me, opts)
	switch {
	case appErr != nil:
		return holding && time.Since(time.UnixMilli(l.refreshed.Load())) < hostNodeFresh
	case ok:
		l.refreshed.Store(model.GetMillis())
	}
	return ok
}

// release gives the lease back (the host must be stopped first) or stops trying for it, and
// waits up to timeout for that to be done. Call it without the plugin's lifecycle lock: onChange
// takes that lock to start or stop the host.
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
	if appErr != nil {
		return ""
	}
	return string(raw)
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
