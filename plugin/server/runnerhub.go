package main

// The remote transport: a runner long-polls the plugin (POST /runner/v1/poll) and receives the
// same requests the plugin sends a local host over its socket (/v1/commands, /v1/posts,
// /v1/actions, /v1/config), each wrapped in an envelope with an id; it answers each with
// POST /runner/v1/answer. A request to a runner that is not polling fails at once with a message
// that names the runner, so nothing waits silently. Why long polling and not the server's
// WebSocket: docs/architecture.md, "Remote runners".

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

const (
	// pollHold is how long a poll waits for work before it returns empty (below the usual 60 s
	// idle timeouts of proxies in front of Mattermost).
	pollHold = 25 * time.Second
	// runnerGone: a runner that has not polled for this long is offline.
	runnerGone = 10 * time.Second
	// maxEnvelopes handed out by one poll.
	maxEnvelopes = 32
)

// envelope is one request for a runner, exactly as it would go over the socket.
type envelope struct {
	ID     string          `json:"id"`
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// runnerAnswer is a runner's answer to one envelope: the status and body the socket would carry.
type runnerAnswer struct {
	ID     string          `json:"id"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// pollRequest is what a runner says about itself with every poll.
type pollRequest struct {
	Version  string   `json:"version"`
	Hostname string   `json:"hostname"`
	Projects []string `json:"projects"`
	// Configured is false until the runner took settings since it started: a restarted runner
	// gets them again even when this node pushed the same settings to its previous process.
	Configured bool `json:"configured"`
}

type pollResponse struct {
	Envelopes []envelope `json:"envelopes"`
}

// runnerHub holds, on this node, the work waiting for each runner and the callers waiting for
// answers.
type runnerHub struct {
	mu      sync.Mutex
	boxes   map[string]*mailbox
	waiting map[string]waiter // envelope id → caller
	cluster *clusterLink      // nil: a single node
}

type mailbox struct {
	queue    []envelope
	wake     chan struct{}
	polling  int
	lastPoll time.Time
	info     pollRequest
	// The settings generation this runner holds, and whether a push is on its way.
	configGen       uint64
	configBusy      bool
	configError     string
	configFailedGen uint64
	configFailedAt  time.Time
}

// online: the runner is polling, or polled moments ago (it re-polls at once after each answer).
func (b *mailbox) online() bool {
	return b.polling > 0 || time.Since(b.lastPoll) < runnerGone
}

type waiter struct {
	runner string
	ch     chan runnerAnswer // a caller on this node
	node   string            // or the node whose caller forwarded the envelope here
}

func newRunnerHub() *runnerHub {
	return &runnerHub{boxes: map[string]*mailbox{}, waiting: map[string]waiter{}}
}

func (h *runnerHub) box(name string) *mailbox {
	b := h.boxes[name]
	if b == nil {
		b = &mailbox{wake: make(chan struct{}, 1)}
		h.boxes[name] = b
	}
	return b
}

// online reports whether a runner is polling this node now or did moments ago.
func (h *runnerHub) online(name string) (bool, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.boxes[name]
	if b == nil {
		return false, time.Time{}
	}
	return b.online(), b.lastPoll
}

// status is what /codex runner list shows of a runner on this node.
func (h *runnerHub) status(name string) (info pollRequest, online bool, lastPoll time.Time, configError string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.boxes[name]
	if b == nil {
		return pollRequest{}, false, time.Time{}, ""
	}
	return b.info, b.online(), b.lastPoll, b.configError
}

// poll hands out the runner's waiting envelopes, waiting up to pollHold for some.
func (h *runnerHub) poll(ctx context.Context, name string, info pollRequest) []envelope {
	h.mu.Lock()
	b := h.box(name)
	b.polling++
	b.info = info
	b.lastPoll = time.Now()
	h.mu.Unlock()
	h.cluster.markSeen(name)
	defer func() {
		h.mu.Lock()
		b.polling--
		b.lastPoll = time.Now()
		h.mu.Unlock()
	}()
	timer := time.NewTimer(pollHold)
	defer timer.Stop()
	for {
		h.mu.Lock()
		if len(b.queue) > 0 {
			n := min(len(b.queue), maxEnvelopes)
			out := append([]envelope(nil), b.queue[:n]...)
			b.queue = b.queue[n:]
			h.mu.Unlock()
			return out
		}
		h.mu.Unlock()
		select {
		case <-b.wake:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// answer hands a runner's answer to the caller waiting for it. An answer from another runner than
// the one the envelope went to is dropped.
func (h *runnerHub) answer(runner string, a runnerAnswer) bool {
	h.mu.Lock()
	w, ok := h.waiting[a.ID]
	if ok && w.runner == runner {
		delete(h.waiting, a.ID)
	}
	h.mu.Unlock()
	if !ok || w.runner != runner {
		return false
	}
	if w.ch == nil {
		h.cluster.sendAnswer(w.node, a)
		return true
	}
	w.ch <- a
	return true
}

// newEnvelope is one host call as an envelope with a fresh id, its body encoded as JSON.
func newEnvelope(method, path string, in any) (envelope, error) {
	var body json.RawMessage
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return envelope{}, &hostError{kind: hostFailed, message: "encoding the request: " + err.Error()}
		}
		body = b
	}
	return envelope{ID: model.NewId(), Method: method, Path: path, Body: body}, nil
}

// call sends one request to a runner and waits for its answer, as hostClient.call does over the
// socket: the raw 2xx body, or a *hostError.
func (h *runnerHub) call(ctx context.Context, runner string, timeout time.Duration, method, path string, in any) ([]byte, error) {
	local, last := h.online(runner)
	remote := false
	if !local {
		if remote, last = h.cluster.seenElsewhere(runner, last); !remote {
			return nil, &hostError{kind: runnerOffline, message: runnerOfflineText(runner, last)}
		}
	}
	env, err := newEnvelope(method, path, in)
	if err != nil {
		return nil, err
	}
	ch := make(chan runnerAnswer, 1)
	h.mu.Lock()
	h.waiting[env.ID] = waiter{runner: runner, ch: ch}
	h.mu.Unlock()
	if remote {
		// The runner polls another node of the cluster: that node queues it and sends the answer.
		if err := h.cluster.sendEnvelope(runner, env); err != nil {
			h.forget(env.ID)
			return nil, &hostError{kind: runnerOffline, message: fmt.Sprintf("runner %s is connected to another server node, which could not be reached: %v", runner, err)}
		}
	} else {
		h.enqueue(runner, env, waiter{runner: runner, ch: ch})
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case a := <-ch:
		return classifyAnswer(a.Status, a.Body)
	case <-ctx.Done():
		h.forget(env.ID)
		return nil, &hostError{kind: runnerOffline, message: fmt.Sprintf("runner %s did not answer %s %s within %s", runner, method, path, timeout)}
	}
}

// enqueue puts an envelope in a runner's mailbox on this node and wakes its poll.
func (h *runnerHub) enqueue(runner string, env envelope, w waiter) {
	h.mu.Lock()
	h.waiting[env.ID] = w
	b := h.box(runner)
	b.queue = append(b.queue, env)
	h.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// forget drops a caller that gave up; an envelope not yet handed out is taken back, so a late
// poll does not run what nobody waits for.
func (h *runnerHub) forget(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w, ok := h.waiting[id]
	delete(h.waiting, id)
	if b := h.boxes[w.runner]; ok && b != nil {
		for i, e := range b.queue {
			if e.ID == id {
				b.queue = append(b.queue[:i], b.queue[i+1:]...)
				break
			}
		}
	}
}

func runnerOfflineText(runner string, last time.Time) string {
	if last.IsZero() {
		return fmt.Sprintf("runner %s is offline (it has not connected since the plugin started)", runner)
	}
	return fmt.Sprintf("runner %s is offline (last seen %s ago)", runner, time.Since(last).Round(time.Second))
}

// classifyAnswer turns a status and body into what hostClient.call returns for them.
func classifyAnswer(status int, raw []byte) ([]byte, error) {
	if status >= 200 && status < 300 {
		return raw, nil
	}
	msg := string(raw)
	var eb ErrorBody
	if json.Unmarshal(raw, &eb) == nil && eb.Error != "" {
		msg = eb.Error
	}
	kind := hostFailed
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		kind = hostUnauthorized
	case status >= 400 && status < 500:
		kind = hostRejected
	}
	return nil, &hostError{kind: kind, status: status, message: msg}
}

// runnerConn is a runner seen as a host: what the routes call instead of the socket client.
type runnerConn struct {
	hub  *runnerHub
	name string
}

func (c runnerConn) call(ctx context.Context, timeout time.Duration, method, path string, in any) ([]byte, error) {
	return c.hub.call(ctx, c.name, timeout, method, path, in)
}
