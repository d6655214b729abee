package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
)

// TestMain lets this test binary play codex-host when the plugin under test starts it in managed
// mode: real process supervision, fake host behaviour.
func TestMain(m *testing.M) {
	if os.Getenv("CODEX_MM_FAKE_HOST") == "1" {
		runFakeHostProcess()
		return
	}
	os.Exit(m.Run())
}

// runFakeHostProcess serves health and config like codex-host and records what it saw in
// <state-dir>/seen.log: its arguments, whether it got the secret, whether MM_* leaked, and requests.
func runFakeHostProcess() {
	var socket, stateDir string
	args := os.Args[1:]
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--socket":
			socket = args[i+1]
		case "--state-dir":
			stateDir = args[i+1]
		}
	}
	seen, err := os.OpenFile(filepath.Join(stateDir, "seen.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		os.Exit(3)
	}
	note := func(s string) { _, _ = seen.WriteString(s + "\n") }
	note("start " + strings.Join(args, " "))
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MM_") {
			note("leaked " + kv)
		}
	}
	secret := os.Getenv("CODEX_HOST_SECRET")
	_ = os.Remove(socket)
	ln, err := net.Listen("unix", socket)
	if err != nil {
		note("listen " + err.Error())
		os.Exit(4)
	}
	configured := false
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if secret == "" || r.Header.Get("Authorization") != "Bearer "+secret {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		note("request " + r.Method + " " + r.URL.Path)
		switch r.URL.Path {
		case routeHealth:
			_ = json.NewEncoder(w).Encode(map[string]any{"version": "fake", "configured": configured})
		case routeConfig:
			configured = true
			_ = os.WriteFile(filepath.Join(stateDir, "config.json"), body, 0o600)
			_ = json.NewEncoder(w).Encode(ConfigResponse{OK: true})
		case routeCommands:
			_ = json.NewEncoder(w).Encode(map[string]any{"response_type": "ephemeral", "text": "answered by the host on " + socket})
		}
	})}
	os.Stderr.WriteString(`{"level":"WARN","fields":{"message":"fake host listening","socket":"x"},"target":"codex_host"}` + "\n")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	go func() { <-stop; note("sigterm"); _ = srv.Close() }()
	_ = srv.Serve(ln)
	os.Exit(0)
}

// activationMocks sets up what OnActivate asks of the server.
func activationMocks(api *testAPI, bundle string, settings map[string]any) {
	api.On("LoadPluginConfiguration", mock.Anything).Run(func(args mock.Arguments) {
		*args.Get(0).(*map[string]any) = settings
	}).Return(nil)
	api.On("GetBundlePath").Return(bundle, nil)
	api.On("GetServerVersion").Return("11.0.0")
	api.On("KVSetWithOptions", mock.Anything, mock.Anything, mock.Anything).Return(true, nil)
	api.On("EnsureBotUser", mock.MatchedBy(func(b *model.Bot) bool { return b.Username == "codex" })).Return("bot1", nil)
	api.On("CreateUserAccessToken", mock.MatchedBy(func(tok *model.UserAccessToken) bool { return tok.UserId == "bot1" })).
		Return(&model.UserAccessToken{Id: "tok1", Token: "bot-token", UserId: "bot1"}, nil)
	api.On("RegisterCommand", mock.MatchedBy(func(c *model.Command) bool { return c.Trigger == "codex" })).Return(nil)
	api.On("RevokeUserAccessToken", "tok1").Return(nil)
	api.On("SetProfileImage", "bot1", botProfileImage).Return(nil)
	memoryKV(api)
}

// memoryKV backs the plugin's KV store with a map.
func memoryKV(api *testAPI) {
	var mu sync.Mutex
	kv := map[string][]byte{}
	api.On("KVGet", mock.Anything).Return(func(key string) ([]byte, *model.AppError) {
		mu.Lock()
		defer mu.Unlock()
		return kv[key], nil
	})
	api.On("KVSet", mock.Anything, mock.Anything).Return(func(key string, value []byte) *model.AppError {
		mu.Lock()
		defer mu.Unlock()
		kv[key] = value
		return nil
	})
	api.On("KVDelete", mock.Anything).Return(func(key string) *model.AppError {
		mu.Lock()
		defer mu.Unlock()
		delete(kv, key)
		return nil
	})
}

func writeBundle(t *testing.T, withHost bool) string {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "plugins", pluginID)
	require.NoError(t, os.MkdirAll(filepath.Join(bundle, "server", "dist"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bundle, "plugin.json"), []byte(`{"id":"`+pluginID+`","version":"9.9.9"}`), 0o644))
	if withHost {
		self, err := os.Executable()
		require.NoError(t, err)
		raw, err := os.ReadFile(self)
		require.NoError(t, err)
		// Written without execute bits: the plugin must restore them, as after some unpackers.
		require.NoError(t, os.WriteFile(filepath.Join(bundle, "server", "dist", "codex-host-"+runtime.GOOS+"-"+runtime.GOARCH), raw, 0o644))
	}
	return bundle
}

func shortSocketPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "cm")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "host.sock")
}

func TestExternalModeActivationPushesSettingsAndDeactivationRevokesTheToken(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "s3cret")
	alice := testUser(model.NewId(), "alice")
	api.On("GetUserByUsername", "alice").Return(alice, nil)
	activationMocks(api, writeBundle(t, false), map[string]any{
		"hostmode": "external", "socketpath": host.socket, "hostsecret": "s3cret",
		"mattermosturl": "http://127.0.0.1:8065", "allowedusers": "alice", "projects": "api = /srv/api",
	})
	p := &Plugin{}
	p.SetAPI(api)
	require.NoError(t, p.OnConfigurationChange())
	require.NoError(t, p.OnActivate())

	puts := host.received("PUT", routeConfig)
	require.Len(t, puts, 1)
	var doc ConfigRequest
	require.NoError(t, json.Unmarshal(puts[0].Body, &doc))
	assert.Equal(t, "bot1", doc.BotUserID)
	assert.Equal(t, "bot-token", doc.BotToken)
	assert.Equal(t, "9.9.9", doc.PluginVersion)
	assert.Equal(t, "http://127.0.0.1:8065", doc.MattermostURL)
	assert.Equal(t, "/plugins/"+pluginID+"/v1/actions", doc.ActionsURL)
	assert.Equal(t, []string{alice.Id}, doc.Settings.AllowedUsers, "the host gets ids, never names")
	assert.Equal(t, "api = /srv/api", doc.Settings.Projects)
	assert.False(t, api.logged("bot-token"), "the bot token must never be logged")
	assert.False(t, api.logged("s3cret"), "the host secret must never be logged")

	require.NoError(t, p.OnDeactivate())
	api.AssertCalled(t, "RevokeUserAccessToken", "tok1")
}

func TestInvalidSettingsKeepTheLastGoodOnesAndGoodOnesArePushed(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "s3cret")
	settings := map[string]any{"hostmode": "external", "socketpath": host.socket, "hostsecret": "s3cret", "mattermosturl": "http://mm", "model": "a"}
	activationMocks(api, writeBundle(t, false), settings)
	p := &Plugin{}
	p.SetAPI(api)
	require.NoError(t, p.OnActivate())
	require.Len(t, host.received("PUT", routeConfig), 1)

	settings["maxconcurrentruns"] = "many"
	settings["model"] = "b"
	err := p.OnConfigurationChange()
	require.Error(t, err)
	assert.True(t, api.logged("kept its previous settings"))
	assert.True(t, api.logged("Max concurrent runs: `many` is not a number."))
	assert.Equal(t, "a", p.config.Model)

	delete(settings, "maxconcurrentruns")
	require.NoError(t, p.OnConfigurationChange())
	host.waitFor(t, "the new settings to be pushed", func() bool { return len(host.received("PUT", routeConfig)) == 2 })
	var doc ConfigRequest
	require.NoError(t, json.Unmarshal(host.received("PUT", routeConfig)[1].Body, &doc))
	assert.Equal(t, "b", doc.Settings.Model)
	require.NoError(t, p.OnDeactivate())
}

func TestSettingsTheHostRejectsAreLoggedOnce(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "s3cret")
	host.handle("PUT "+routeConfig, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(ErrorBody{Error: "Projects, line 1: the path of `api` must be absolute."})
	})
	activationMocks(api, writeBundle(t, false), map[string]any{"hostmode": "external", "socketpath": host.socket, "hostsecret": "s3cret", "mattermosturl": "http://mm"})
	p := &Plugin{}
	p.SetAPI(api)
	require.NoError(t, p.OnActivate())
	assert.True(t, api.logged("codex-host rejected the settings and keeps its previous ones"))
	assert.True(t, api.logged("the path of `api` must be absolute"))
	require.NoError(t, p.OnDeactivate())
	assert.Len(t, host.received("PUT", routeConfig), 1, "a rejected document is not pushed again")
}

func TestConfigurationWillBeSavedRefusesInvalidPluginSettings(t *testing.T) {
	api := newTestAPI(t)
	p := &Plugin{}
	p.SetAPI(api)
	current := &model.Config{}
	current.PluginSettings.Plugins = map[string]map[string]any{pluginID: {"hostmode": "sideways"}}
	api.On("GetConfig").Return(current)

	bad := &model.Config{}
	bad.PluginSettings.Plugins = map[string]map[string]any{pluginID: {"hostmode": "external"}}
	_, err := p.ConfigurationWillBeSaved(bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Socket path: required in external mode")

	good := &model.Config{}
	good.PluginSettings.Plugins = map[string]map[string]any{pluginID: {"hostmode": "managed"}}
	_, err = p.ConfigurationWillBeSaved(good)
	require.NoError(t, err)

	// Unchanged (even if invalid): saving other settings is never blocked by ours.
	same := &model.Config{}
	same.PluginSettings.Plugins = map[string]map[string]any{pluginID: {"hostmode": "sideways"}}
	_, err = p.ConfigurationWillBeSaved(same)
	require.NoError(t, err)
}

func TestManagedHostIsStartedRestartedAndStopped(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("Unix only")
	}
	api := newTestAPI(t)
	bundle := writeBundle(t, true)
	socket := shortSocketPath(t)
	t.Setenv("CODEX_MM_FAKE_HOST", "1")
	t.Setenv("MM_SQLSETTINGS_DATASOURCE", "postgres://mmuser:dbpassword@db/mattermost")
	activationMocks(api, bundle, map[string]any{"socketpath": socket, "mattermosturl": "http://mm"})
	p := &Plugin{}
	p.SetAPI(api)
	require.NoError(t, p.OnActivate())

	stateDir := filepath.Join(filepath.Dir(bundle), "."+pluginID, "state")
	seen := func() string { raw, _ := os.ReadFile(filepath.Join(stateDir, "seen.log")); return string(raw) }
	assert.Contains(t, seen(), "start serve --socket "+socket+" --state-dir "+stateDir+" --log-format json")
	assert.NotContains(t, seen(), "leaked", "MM_* variables must not reach the host")
	assert.Contains(t, seen(), "request PUT /v1/config")
	raw, err := os.ReadFile(filepath.Join(stateDir, "config.json"))
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"bot_token":"bot-token"`)
	assert.True(t, api.logged("WARN codex-host: fake host listening"), api.allLogs())

	// Kill it behind the plugin's back: it is restarted and configured again.
	st := p.state()
	st.proc.mu.Lock()
	proc := st.proc.proc
	st.proc.mu.Unlock()
	require.NotNil(t, proc)
	require.NoError(t, proc.Kill())
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(seen(), "request PUT /v1/config") < 2 {
		require.True(t, time.Now().Before(deadline), "the host was not restarted and reconfigured:\n%s\n%s", seen(), api.allLogs())
		time.Sleep(20 * time.Millisecond)
	}
	assert.True(t, api.logged("codex-host exited unexpectedly; restarting it."))

	require.NoError(t, p.OnDeactivate())
	assert.Contains(t, seen(), "sigterm")
	assert.Nil(t, st.proc)
}

func TestManagedModeWithoutAHostBinaryExplainsWhatToDo(t *testing.T) {
	api := newTestAPI(t)
	activationMocks(api, writeBundle(t, false), map[string]any{"socketpath": shortSocketPath(t), "mattermosturl": "http://mm"})
	p := &Plugin{}
	p.SetAPI(api)
	start := time.Now()
	require.NoError(t, p.OnActivate(), "activation succeeds so that /codex can explain the problem")
	assert.Less(t, time.Since(start), 1*time.Second, "no host process: nothing to wait for")
	if runtime.GOOS == "linux" {
		assert.True(t, api.logged("The bundle has no codex-host for this machine"))
	} else {
		assert.True(t, api.logged("Managed host mode is not available on "+runtime.GOOS))
	}
	require.NoError(t, p.OnDeactivate())
}
