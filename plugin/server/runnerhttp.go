package main

// The routes remote runners call, reached at /plugins/<id>/runner/v1/...:
//
//	POST /runner/v1/poll          wait for work (envelopes), up to pollHold
//	POST /runner/v1/answer        the answer to one envelope
//	*    /runner/v1/mm/api/v4/... the Mattermost REST calls a host makes, as the bot (runnerrelay.go)
//
// Each request carries the runner's token in X-Codex-Runner-Token (not Authorization: the server
// would try it as a session token). Nothing here takes a user id or a channel from the runner:
// what it may touch comes from the work the plugin gave it.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

const (
	headerRunnerToken = "X-Codex-Runner-Token"
	maxRunnerBody     = 8 << 20
	// configRetry: settings a runner refused are sent again after this long (or when they change).
	configRetry = 30 * time.Second
)

// runnerFromRequest authenticates a runner request, or answers 401 and returns "".
func (p *Plugin) runnerFromRequest(w http.ResponseWriter, r *http.Request) (*activeState, string) {
	st := p.state()
	if st == nil {
		writeError(w, http.StatusServiceUnavailable, "The Codex plugin is not active on this server.")
		return nil, ""
	}
	name, err := st.runners.authenticate(r.Header.Get(headerRunnerToken))
	if err != nil {
		p.API.LogWarn("Refused a runner request.", "path", r.URL.Path, "error", err.Error())
		writeError(w, http.StatusUnauthorized, "Refused: "+err.Error())
		return nil, ""
	}
	return st, name
}

func (p *Plugin) handleRunnerPoll(w http.ResponseWriter, r *http.Request) {
	st, name := p.runnerFromRequest(w, r)
	if name == "" {
		return
	}
	var info pollRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&info); err != nil {
		writeError(w, http.StatusBadRequest, "The poll body is not a runner's poll: "+err.Error())
		return
	}
	if was, _ := st.hub.online(name); !was {
		p.API.LogInfo("A Codex runner connected.", "runner", name, "version", info.Version, "hostname", info.Hostname)
	}
	if !info.Configured {
		st.hub.mu.Lock()
		st.hub.box(name).configGen = 0
		st.hub.mu.Unlock()
	}
	p.pushRunnerConfig(st, name)
	writeJSON(w, http.StatusOK, pollResponse{Envelopes: nonNil(st.hub.poll(r.Context(), name, info))})
}

func nonNil(e []envelope) []envelope {
	if e == nil {
		return []envelope{}
	}
	return e
}

func (p *Plugin) handleRunnerAnswer(w http.ResponseWriter, r *http.Request) {
	st, name := p.runnerFromRequest(w, r)
	if name == "" {
		return
	}
	var a runnerAnswer
	if err := json.NewDecoder(io.LimitReader(r.Body, maxRunnerBody)).Decode(&a); err != nil {
		writeError(w, http.StatusBadRequest, "The body is not an answer: "+err.Error())
		return
	}
	if !st.hub.answer(name, a) {
		// Late (the caller gave up) or not this runner's: nothing waits for it.
		writeError(w, http.StatusNotFound, "No request of this runner is waiting for answer "+a.ID+".")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// pushRunnerConfig sends a runner the settings it lacks (its first poll, or settings changed),
// one push at a time, in the background: the poll that triggered it hands the push out.
func (p *Plugin) pushRunnerConfig(st *activeState, name string) {
	tgt := st.target()
	if tgt.doc == nil {
		return
	}
	st.hub.mu.Lock()
	b := st.hub.box(name)
	refusedLately := b.configFailedGen == tgt.gen && time.Since(b.configFailedAt) < configRetry
	if b.configGen == tgt.gen || b.configBusy || refusedLately {
		st.hub.mu.Unlock()
		return
	}
	b.configBusy = true
	// The poll that comes in right now must find the push in its queue: it counts as online.
	b.lastPoll = time.Now()
	st.hub.mu.Unlock()
	doc := docFor(st.prepareDoc(tgt.doc), name)
	go func() {
		var resp ConfigResponse
		err := callJSON(context.Background(), runnerConn{hub: st.hub, name: name}, timeoutConfig, http.MethodPut, routeConfig, doc, &resp)
		st.hub.mu.Lock()
		b.configBusy = false
		if err == nil {
			b.configGen = tgt.gen
			b.configError = ""
		} else {
			b.configError = err.Error()
			b.configFailedGen, b.configFailedAt = tgt.gen, time.Now()
		}
		st.hub.mu.Unlock()
		if err != nil {
			p.API.LogError("A Codex runner refused its settings; it answers nothing until they are fixed.", "runner", name, "error", err.Error())
			return
		}
		for _, w := range resp.Warnings {
			p.API.LogWarn("Codex runner settings warning.", "runner", name, "warning", w)
		}
	}()
}

// pushConfigToRunners sends changed settings to the runners polling this node now.
func (p *Plugin) pushConfigToRunners(st *activeState) {
	st.hub.mu.Lock()
	var names []string
	for name, b := range st.hub.boxes {
		if b.polling > 0 {
			names = append(names, name)
		}
	}
	st.hub.mu.Unlock()
	for _, name := range names {
		p.pushRunnerConfig(st, name)
	}
}
