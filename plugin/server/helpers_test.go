package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin/plugintest"
)

// testAPI is plugintest.API with its log calls recorded instead of mocked (their arity varies).
type testAPI struct {
	*plugintest.API
	mu   sync.Mutex
	logs []string
}

func newTestAPI(t *testing.T) *testAPI {
	api := &plugintest.API{}
	t.Cleanup(func() { api.AssertExpectations(t) })
	return &testAPI{API: api}
}

func (a *testAPI) record(level, msg string, kv ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.logs = append(a.logs, level+" "+msg+" "+fmt.Sprint(kv...))
}

func (a *testAPI) LogDebug(msg string, kv ...any) { a.record("DEBUG", msg, kv...) }
func (a *testAPI) LogInfo(msg string, kv ...any)  { a.record("INFO", msg, kv...) }
func (a *testAPI) LogWarn(msg string, kv ...any)  { a.record("WARN", msg, kv...) }
func (a *testAPI) LogError(msg string, kv ...any) { a.record("ERROR", msg, kv...) }

func (a *testAPI) logged(substr string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range a.logs {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}

func (a *testAPI) allLogs() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.logs, "\n")
}

// fakeHost plays codex-host on a Unix socket: it checks the secret, records every request and
// answers with per-route handlers.
type fakeHost struct {
	socket string
	secret string

	mu         sync.Mutex
	requests   []hostRequest
	handlers   map[string]http.HandlerFunc
	configured bool
	changed    chan struct{}
}

type hostRequest struct {
	Method, Path, Query string
	Body                []byte
}

func startFakeHost(t *testing.T, secret string) *fakeHost {
	t.Helper()
	h := &fakeHost{
		socket:   filepath.Join(t.TempDir(), "host.sock"),
		secret:   secret,
		handlers: map[string]http.HandlerFunc{},
		changed:  make(chan struct{}, 1000),
	}
	ln, err := net.Listen("unix", h.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return h
}

func (h *fakeHost) handle(route string, fn http.HandlerFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handlers[route] = fn
}

func (h *fakeHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Authorization") != "Bearer "+h.secret {
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(ErrorBody{Error: "wrong secret"})
		return
	}
	h.mu.Lock()
	h.requests = append(h.requests, hostRequest{r.Method, r.URL.Path, r.URL.RawQuery, body})
	fn := h.handlers[r.Method+" "+r.URL.Path]
	configured := h.configured
	if r.Method == http.MethodPut && r.URL.Path == routeConfig && fn == nil {
		h.configured = true
	}
	h.mu.Unlock()
	defer func() { h.changed <- struct{}{} }()
	if fn != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		fn(w, r)
		return
	}
	switch r.Method + " " + r.URL.Path {
	case "GET " + routeHealth:
		_ = json.NewEncoder(w).Encode(map[string]any{"version": "test", "configured": configured})
	case "PUT " + routeConfig:
		_ = json.NewEncoder(w).Encode(ConfigResponse{OK: true})
	default:
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(ErrorBody{Error: "no route"})
	}
}

func (h *fakeHost) received(method, path string) []hostRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hostRequest
	for _, r := range h.requests {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// waitFor waits until cond holds, re-checking whenever the fake host answers a request.
func (h *fakeHost) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-h.changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// activeTestPlugin returns a plugin in the active state, talking to host, without OnActivate.
func activeTestPlugin(t *testing.T, api *testAPI, host *fakeHost) *Plugin {
	p := &Plugin{}
	p.SetAPI(api)
	kv := newMemKV()
	st := &activeState{botUserID: "bot1", botToken: "bot-token", resolver: newResolver(api, "bot1"),
		runners: newRunnerRegistry(kv), hub: newRunnerHub(), route: router{kv: kv}, prepareDoc: func(d *ConfigRequest) *ConfigRequest { return d }}
	st.tgt = hostTarget{client: newHostClient(host.socket, host.secret, sameUserPeer()), doc: &ConfigRequest{}, gen: 1, mode: hostModeExternal}
	p.active.Store(st)
	return p
}

// sameUserPeer expects the host to run as this test process's user, as fakeHost does.
func sameUserPeer() hostPeer {
	return hostPeer{mode: hostModeExternal, uid: os.Getuid()}
}

func testUser(id, username string) *model.User {
	return &model.User{Id: id, Username: username, Roles: "system_user system_admin"}
}
