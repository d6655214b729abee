package harness

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
	"github.com/mattermost/mattermost/server/public/plugin/plugintest"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
)

// serverAPI is the mocked server side of the plugin API. Log calls (variadic, any arity) go to the
// test log instead of the mock, and are kept so the test can check what an admin would read.
type serverAPI struct {
	*plugintest.API
	t    *testing.T
	mu   sync.Mutex
	logs []string
}

func (a *serverAPI) log(level, msg string, kv ...any) {
	line := fmt.Sprintf("%s %s %v", level, msg, kv)
	a.t.Log("plugin log: " + line)
	a.mu.Lock()
	a.logs = append(a.logs, line)
	a.mu.Unlock()
}

func (a *serverAPI) LogDebug(msg string, kv ...any) { a.log("DEBUG", msg, kv...) }
func (a *serverAPI) LogInfo(msg string, kv ...any)  { a.log("INFO", msg, kv...) }
func (a *serverAPI) LogWarn(msg string, kv ...any)  { a.log("WARN", msg, kv...) }
func (a *serverAPI) LogError(msg string, kv ...any) { a.log("ERROR", msg, kv...) }

func (a *serverAPI) allLogs() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.logs, "\n")
}

// expectActivation sets up what the plugin asks of the server while it activates: its bundle
// path, the server version, and its bot (pluginapi's EnsureBot takes a cluster mutex through the
// KV store) with an access token for codex-host.
func expectActivation(api *serverAPI, bundlePath, botID, botToken string) {
	api.On("GetBundlePath").Return(bundlePath, nil)
	api.On("GetServerVersion").Return(model.CurrentVersion)
	api.On("EnsureBotUser", mock.MatchedBy(func(b *model.Bot) bool { return b.Username == "codex" })).Return(botID, nil)
	api.On("CreateUserAccessToken", mock.MatchedBy(func(tok *model.UserAccessToken) bool { return tok.UserId == botID })).
		Return(&model.UserAccessToken{Id: "token-id", Token: botToken, UserId: botID}, nil)
	api.On("RevokeUserAccessToken", "token-id").Return(nil)
	api.On("SetProfileImage", botID, mock.MatchedBy(func(img []byte) bool { return bytes.HasPrefix(img, []byte("\x89PNG")) })).Return(nil)
	// The plugin's KV store: bot tokens, the cluster lock of the managed host, runners, routes.
	kv := &memKV{entries: map[string]kvEntry{}}
	api.On("KVGet", mock.Anything).Return(kv.get)
	api.On("KVSet", mock.Anything, mock.Anything).Return(kv.set)
	api.On("KVSetWithOptions", mock.Anything, mock.Anything, mock.Anything).Return(kv.setWithOptions)
	api.On("KVDelete", mock.Anything).Return(kv.delete)
	api.On("KVList", mock.Anything, mock.Anything).Return(kv.list)
}

// memKV is the plugin KV store as the server keeps it: atomic sets compare the old value (none:
// the key must be absent), and entries expire.
type memKV struct {
	mu      sync.Mutex
	entries map[string]kvEntry
}

type kvEntry struct {
	value   []byte
	expires time.Time // zero: never
}

func (kv *memKV) current(key string) []byte {
	e, ok := kv.entries[key]
	if !ok || (!e.expires.IsZero() && time.Now().After(e.expires)) {
		delete(kv.entries, key)
		return nil
	}
	return e.value
}

func (kv *memKV) get(key string) ([]byte, *model.AppError) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return kv.current(key), nil
}

func (kv *memKV) set(key string, value []byte) *model.AppError {
	_, appErr := kv.setWithOptions(key, value, model.PluginKVSetOptions{})
	return appErr
}

func (kv *memKV) setWithOptions(key string, value []byte, o model.PluginKVSetOptions) (bool, *model.AppError) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if o.Atomic && !bytes.Equal(kv.current(key), o.OldValue) {
		return false, nil
	}
	if value == nil {
		delete(kv.entries, key)
		return true, nil
	}
	e := kvEntry{value: value}
	if o.ExpireInSeconds > 0 {
		e.expires = time.Now().Add(time.Duration(o.ExpireInSeconds) * time.Second)
	}
	kv.entries[key] = e
	return true, nil
}

func (kv *memKV) delete(key string) *model.AppError {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	delete(kv.entries, key)
	return nil
}

func (kv *memKV) list(page, perPage int) ([]string, *model.AppError) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	var keys []string
	for k := range kv.entries {
		if kv.current(k) != nil {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	from, to := min(page*perPage, len(keys)), min((page+1)*perPage, len(keys))
	return keys[from:to], nil
}

// installBundle lays out a server's plugin directories under root (server plugins, webapp
// bundles) and unpacks the bundle there as an upload would; it returns both directories and the
// plugin's own.
func installBundle(t *testing.T, root, bundle string) (pluginsDir, webappDir, bundlePath string) {
	t.Helper()
	pluginsDir = filepath.Join(root, "plugins")
	webappDir = filepath.Join(root, "client", "plugins")
	require.NoError(t, os.MkdirAll(pluginsDir, 0o755))
	require.NoError(t, os.MkdirAll(webappDir, 0o755))
	extractBundle(t, bundle, pluginsDir)
	return pluginsDir, webappDir, filepath.Join(pluginsDir, pluginID)
}

// extractBundle unpacks the tarball into pluginsDir as the server does on upload.
func extractBundle(t *testing.T, bundlePath, pluginsDir string) {
	t.Helper()
	f, err := os.Open(bundlePath)
	require.NoError(t, err)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		require.NoError(t, err)
		target := filepath.Join(pluginsDir, filepath.Clean(h.Name))
		require.True(t, strings.HasPrefix(target, pluginsDir+string(os.PathSeparator)), "entry %s escapes the plugins directory", h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			require.NoError(t, os.MkdirAll(target, 0o755))
		case tar.TypeReg:
			require.NoError(t, os.MkdirAll(filepath.Dir(target), 0o755))
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode).Perm())
			require.NoError(t, err)
			_, err = io.Copy(out, tr)
			require.NoError(t, err)
			require.NoError(t, out.Close())
		}
	}
}

// startTestkit runs `codex-testkit <args>` until the test ends and returns the address it bound.
func startTestkit(t *testing.T, binary string, args ...string) string {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	cmd := exec.Command(binary, append(args, "--listen", "127.0.0.1:0", "--addr-file", addrFile)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	var addr []byte
	waitUntil(t, 20*time.Second, "codex-testkit "+args[0]+" to listen", func() bool {
		addr, _ = os.ReadFile(addrFile)
		return len(addr) > 0
	})
	return strings.TrimSpace(string(addr))
}

// waitUntil re-checks cond until it holds; the peers are other processes with no event to block on.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
}

func postJSON(t *testing.T, url string, in, out any) {
	t.Helper()
	body, err := json.Marshal(in)
	require.NoError(t, err)
	resp, err := http.Post(url, "application/json", strings.NewReader(string(body)))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, url)
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
}

// waitForBotPost waits until the host has posted a message containing text and returns it.
func waitForBotPost(t *testing.T, mmAddr, botID, text string) *fakePost {
	t.Helper()
	var found *fakePost
	waitUntil(t, 90*time.Second, "the host to post "+strconv.Quote(text), func() bool {
		var posts []fakePost
		getJSON(t, "http://"+mmAddr+"/_test/posts", &posts)
		for i := range posts {
			if posts[i].Post.UserID == botID && strings.Contains(posts[i].Post.Message, text) {
				found = &posts[i]
				return true
			}
		}
		return false
	})
	return found
}

// cancelContext is the integration context of a post's Cancel button, if it has one.
func cancelContext(p fakePost) map[string]any { return buttonContext(p, "cancel") }

// buttonContext is the integration context of a post's button `id`, as the server keeps it.
func buttonContext(p fakePost, id string) map[string]any {
	attachments, _ := p.Post.Props["attachments"].([]any)
	for _, a := range attachments {
		actions, _ := a.(map[string]any)["actions"].([]any)
		for _, act := range actions {
			action, _ := act.(map[string]any)
			if action["id"] == id {
				integration, _ := action["integration"].(map[string]any)
				ctx, _ := integration["context"].(map[string]any)
				return ctx
			}
		}
	}
	return nil
}

type fakePost struct {
	Post struct {
		ID        string         `json:"id"`
		UserID    string         `json:"user_id"`
		ChannelID string         `json:"channel_id"`
		RootID    string         `json:"root_id"`
		Message   string         `json:"message"`
		Props     map[string]any `json:"props"`
	} `json:"post"`
}

// codexConfig asks codex-testkit for the Codex config lines that point Codex at the mock model:
// the one list every suite uses (codex_testkit::codex::config_overrides).
func codexConfig(t *testing.T, testkit, modelAddr string) string {
	t.Helper()
	out, err := exec.Command(testkit, "codex-config", "--base-url", "http://"+modelAddr+"/v1").Output()
	require.NoError(t, err, "codex-testkit codex-config")
	return strings.TrimSpace(string(out))
}

// TestPluginInMattermostsLoader loads the built bundle with Mattermost's plugin loader and drives
// it end to end: activation, /codex through the real host and the real Codex CLI, a button click
// through ServeHTTP, a request without a session, and the host being unreachable.
func TestPluginInMattermostsLoader(t *testing.T) {
	bundle := requireEnv(t, "CODEX_MM_BUNDLE")
	codex := requireEnv(t, "CODEX_MM_CODEX")
	testkit := requireEnv(t, "CODEX_MM_TESTKIT")

	root := t.TempDir()
	pluginsDir, webappDir, bundlePath := installBundle(t, root, bundle)

	// Peers: the mock model Codex talks to and the fake Mattermost the host posts to.
	botID, botToken := model.NewId(), model.NewId()
	modelAddr := startTestkit(t, testkit, "mock-model")
	mmAddr := startTestkit(t, testkit, "fake-mattermost", "--bot-user-id", botID, "--bot-token", botToken)
	alice := &model.User{Id: model.NewId(), Username: "alice", Roles: "system_user"}
	postJSON(t, "http://"+mmAddr+"/_test/users", map[string]any{"id": alice.Id, "username": alice.Username, "roles": []string{"system_user"}}, nil)
	carol := &model.User{Id: model.NewId(), Username: "carol", Roles: "system_user"}
	dave := &model.User{Id: model.NewId(), Username: "dave", Roles: "system_user"}
	mallory := &model.User{Id: model.NewId(), Username: "mallory", Roles: "system_user"}
	for _, u := range []*model.User{carol, dave, mallory} {
		postJSON(t, "http://"+mmAddr+"/_test/users", map[string]any{"id": u.Id, "username": u.Username, "roles": []string{"system_user"}}, nil)
	}

	// The admin's own policy directory: prompts that mention deploying need carol's approval.
	policyDir := filepath.Join(root, "admin-policies")
	require.NoError(t, os.MkdirAll(policyDir, 0o755))
	wasm, err := os.ReadFile(filepath.Join(bundlePath, "policies", "approval-for-risky.wasm"))
	require.NoError(t, err, "the bundle ships the example policies")
	require.NoError(t, os.WriteFile(filepath.Join(policyDir, "50-approval.wasm"), wasm, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(policyDir, "50-approval.json"), []byte(`{"patterns":["(?i)\\bdeploy\\b"],"approvers":["carol"],"expiry_secs":600}`), 0o644))
	// Hotfixes need two distinct approvers; migrations expire after two seconds.
	require.NoError(t, os.WriteFile(filepath.Join(policyDir, "60-two-keys.wasm"), wasm, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(policyDir, "60-two-keys.json"), []byte(`{"patterns":["(?i)\\bhotfix\\b"],"approvers":["carol","dave"],"min_approvals":2,"expiry_secs":600}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(policyDir, "70-expiring.wasm"), wasm, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(policyDir, "70-expiring.json"), []byte(`{"patterns":["(?i)\\bmigrate\\b"],"approvers":["carol"],"expiry_secs":2}`), 0o644))
	installCommandGuard(t, bundlePath, policyDir)

	repo := filepath.Join(root, "repo")
	codexHome := filepath.Join(root, "codex-home")
	require.NoError(t, os.MkdirAll(repo, 0o755))
	require.NoError(t, os.MkdirAll(codexHome, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(repo, "README.md"), []byte("demo\n"), 0o644))
	// Unix socket paths are short; the test's temporary directory may not be.
	sockDir, err := os.MkdirTemp("", "cmh")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	// The managed host inherits the plugin's environment; Codex gets only what Codex
	// environment names: the mock provider's env_key must reach it for Codex to start.
	t.Setenv("MOCK_API_KEY", "mock-key")

	var settingsMu sync.Mutex
	settings := map[string]any{
		"hostmode":          "managed",
		"socketpath":        filepath.Join(sockDir, "host.sock"),
		"mattermosturl":     "http://" + mmAddr,
		"allowedusers":      "alice",
		"projects":          "demo = " + repo,
		"defaultproject":    "demo",
		"codexpath":         codex,
		"codexhome":         codexHome,
		"codexconfig":       codexConfig(t, testkit, modelAddr),
		"codexenv":          "MOCK_API_KEY",
		"defaultsandbox":    "read-only",
		"model":             "gpt-5.5",
		"runtimeoutminutes": 5,
		"policydir":         policyDir,
	}

	api := &serverAPI{API: &plugintest.API{}, t: t}
	api.On("LoadPluginConfiguration", mock.Anything).Run(func(args mock.Arguments) {
		settingsMu.Lock()
		defer settingsMu.Unlock()
		*args.Get(0).(*any) = settings
	}).Return(nil)
	expectActivation(api, bundlePath, botID, botToken)
	var registered *model.Command
	api.On("RegisterCommand", mock.Anything).Run(func(args mock.Arguments) { registered = args.Get(0).(*model.Command) }).Return(nil)

	team := &model.Team{Id: model.NewId(), Name: "eng", DisplayName: "Engineering"}
	channel := &model.Channel{Id: model.NewId(), Name: "town-square", DisplayName: "Town Square", Type: model.ChannelTypeOpen, TeamId: team.Id}
	// The first prompt makes the bot join the team and the channel it will post in.
	notFound := model.NewAppError("Get", "not_found", nil, "", http.StatusNotFound)
	api.On("GetChannelMember", channel.Id, botID).Return(nil, notFound).Once()
	api.On("GetTeamMember", team.Id, botID).Return(nil, notFound).Once()
	api.On("CreateTeamMember", team.Id, botID).Return(&model.TeamMember{TeamId: team.Id, UserId: botID}, nil).Once()
	api.On("AddChannelMember", channel.Id, botID).Return(&model.ChannelMember{ChannelId: channel.Id, UserId: botID}, nil).Once()
	api.On("GetUser", alice.Id).Return(alice, nil)
	// Allowed users names alice: the plugin resolves it to her id before each settings push.
	api.On("GetUserByUsername", "alice").Return(alice, nil)
	api.On("GetUser", carol.Id).Return(carol, nil)
	api.On("GetUser", dave.Id).Return(dave, nil)
	api.On("GetUser", mallory.Id).Return(mallory, nil)
	api.On("GetChannel", channel.Id).Return(channel, nil)
	// Every click is checked against the clicking user's read access to the channel.
	api.On("HasPermissionToChannel", mock.Anything, channel.Id, model.PermissionReadChannel).Return(true)
	api.On("GetTeam", team.Id).Return(team, nil)

	env, err := plugin.NewEnvironment(func(*model.Manifest) plugin.API { return api }, nil, pluginsDir, webappDir, mlog.CreateConsoleTestLogger(t), nil)
	require.NoError(t, err)
	t.Cleanup(env.Shutdown)

	// Activation: the real go-plugin handshake, OnConfigurationChange then OnActivate.
	manifest, activated, err := env.Activate(pluginID)
	require.NoError(t, err, "activation failed; plugin log:\n%s", api.allLogs())
	require.True(t, activated)
	assert.Equal(t, pluginID, manifest.Id)
	assert.Contains(t, api.allLogs(), "codex-host is configured.", "the managed host should have taken the settings during activation")

	t.Run("activation registers /codex with its autocomplete", func(t *testing.T) {
		require.NotNil(t, registered)
		assert.Equal(t, "codex", registered.Trigger)
		assert.True(t, registered.AutoComplete)
		require.NotNil(t, registered.AutocompleteData)
		require.NoError(t, registered.AutocompleteData.IsValid())
		var subs []string
		for _, sub := range registered.AutocompleteData.SubCommands {
			subs = append(subs, sub.Trigger)
			assert.NotEmpty(t, sub.HelpText)
		}
		// The one list autocomplete comes from (the host's grammar is checked against it too).
		raw, err := os.ReadFile("../../contract/commands.json")
		require.NoError(t, err)
		var list struct {
			Subcommands []struct {
				Name string `json:"name"`
			} `json:"subcommands"`
		}
		require.NoError(t, json.Unmarshal(raw, &list))
		var want []string
		for _, sub := range list.Subcommands {
			want = append(want, sub.Name)
		}
		assert.Contains(t, want, "status")
		assert.Equal(t, want, subs, "autocomplete offers contract/commands.json, in its order")
	})

	hooks, err := env.HooksForPlugin(pluginID)
	require.NoError(t, err)

	var answer *fakePost
	t.Run("/codex <prompt> runs the real Codex CLI through the real host", func(t *testing.T) {
		resp, appErr := hooks.ExecuteCommand(&plugin.Context{}, &model.CommandArgs{
			UserId: alice.Id, ChannelId: channel.Id, TeamId: team.Id, TriggerId: "trigger", Command: "/codex say hello to the harness",
		})
		require.Nil(t, appErr)
		require.NotNil(t, resp)
		t.Logf("command response: %s %q", resp.ResponseType, resp.Text)
		assert.NotContains(t, resp.Text, "not available right now")

		answer = waitForBotPost(t, mmAddr, botID, "Mock answer: say hello to the harness")
		assert.Equal(t, channel.Id, answer.Post.ChannelID)
		assert.NotEmpty(t, answer.Post.RootID, "the answer belongs in a thread")

		var requests []map[string]any
		getJSON(t, "http://"+modelAddr+"/_mock/requests", &requests)
		assert.NotEmpty(t, requests, "Codex should have called the mock model")
	})

	t.Run("a plain reply in the bot's thread continues the session", func(t *testing.T) {
		require.NotNil(t, answer, "needs the thread started above")
		rootID := answer.Post.RootID
		api.On("GetPost", rootID).Return(&model.Post{Id: rootID, UserId: botID, ChannelId: channel.Id}, nil)
		// The reply exists in Mattermost (the host may read the thread), then the server calls the hook.
		var reply struct {
			ID       string `json:"id"`
			CreateAt int64  `json:"create_at"`
		}
		postJSON(t, "http://"+mmAddr+"/_test/posts", map[string]any{
			"user_id": alice.Id, "channel_id": channel.Id, "root_id": rootID, "message": "and now in French",
		}, &reply)
		hooks.MessageHasBeenPosted(&plugin.Context{}, &model.Post{
			Id: reply.ID, UserId: alice.Id, ChannelId: channel.Id, RootId: rootID, Message: "and now in French", CreateAt: reply.CreateAt,
		})
		followUp := waitForBotPost(t, mmAddr, botID, "Mock answer: and now in French")
		assert.Equal(t, rootID, followUp.Post.RootID, "the continuation is answered in the same thread")
	})

	t.Run("a run of the managed host reaches neither the host's state nor the server's files", func(t *testing.T) {
		// A stand-in for the server's config.json beside the plugins directory, as in a real install.
		serverConfig := filepath.Join(root, "config", "config.json")
		require.NoError(t, os.MkdirAll(filepath.Dir(serverConfig), 0o755))
		require.NoError(t, os.WriteFile(serverConfig, []byte(`{"SqlSettings":{"DataSource":"postgres://mm:pw@db/mm"}}`), 0o600))
		targets := []string{
			filepath.Join(pluginsDir, "."+pluginID), // the managed host's state: database, button key
			filepath.Join(sockDir, "host.sock"),
			bundlePath,
			serverConfig,
			policyDir,
		}
		script := ""
		for _, p := range targets {
			script += "if test -e '" + p + "'; then echo 'LEAK " + p + "'; else echo 'hidden " + p + "'; fi; "
		}
		script += "cat README.md"
		_, appErr := hooks.ExecuteCommand(&plugin.Context{}, &model.CommandArgs{
			UserId: alice.Id, ChannelId: channel.Id, TeamId: team.Id, TriggerId: "trigger", Command: "/codex [[mock:sh:" + script + "]]",
		})
		require.Nil(t, appErr)
		out := waitForBotPost(t, mmAddr, botID, "Command output:")
		for _, p := range targets {
			assert.Contains(t, out.Post.Message, "hidden "+p, "the run can see %s", p)
		}
		assert.NotContains(t, out.Post.Message, "LEAK")
		assert.Contains(t, out.Post.Message, "demo", "the run reads its own repository")
	})

	t.Run("a button click through ServeHTTP reaches the host", func(t *testing.T) {
		body := `{"post_id":"` + model.NewId() + `","channel_id":"` + channel.Id + `","team_id":"` + team.Id + `","context":{"action":"cancel","run_id":"nope","iat":1,"exp":9999999999,"nonce":"n1","sig":"forged"}}`
		r := httptest.NewRequest(http.MethodPost, "/v1/actions", strings.NewReader(body))
		r.Header.Set("Mattermost-User-Id", alice.Id)
		w := httptest.NewRecorder()
		hooks.ServeHTTP(&plugin.Context{}, w, r)
		t.Logf("action answer: %d %s", w.Code, w.Body.String())
		require.Equal(t, http.StatusOK, w.Code)
		var resp model.PostActionIntegrationResponse
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
		assert.NotContains(t, resp.EphemeralText, "not available right now", "the plugin could not reach the host")
		assert.Contains(t, resp.EphemeralText, "not valid", "a forged button must be refused with an explanation")
	})

	t.Run("the Cancel button of a running run stops Codex", func(t *testing.T) {
		_, appErr := hooks.ExecuteCommand(&plugin.Context{}, &model.CommandArgs{
			UserId: alice.Id, ChannelId: channel.Id, TeamId: team.Id, TriggerId: "trigger", Command: "/codex [[mock:slow:60]] a long one to cancel",
		})
		require.Nil(t, appErr)
		var progress *fakePost
		waitUntil(t, 90*time.Second, "a progress post with a Cancel button", func() bool {
			var posts []fakePost
			getJSON(t, "http://"+mmAddr+"/_test/posts", &posts)
			for i := range posts {
				if posts[i].Post.Props["codex_kind"] == "progress" && posts[i].Post.Props["codex_status"] == "running" && cancelContext(posts[i]) != nil {
					progress = &posts[i]
					return true
				}
			}
			return false
		})
		body, err := json.Marshal(model.PostActionIntegrationRequest{PostId: progress.Post.ID, ChannelId: channel.Id, TeamId: team.Id, Context: cancelContext(*progress)})
		require.NoError(t, err)
		r := httptest.NewRequest(http.MethodPost, "/v1/actions", strings.NewReader(string(body)))
		r.Header.Set("Mattermost-User-Id", alice.Id)
		w := httptest.NewRecorder()
		hooks.ServeHTTP(&plugin.Context{}, w, r)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var resp model.PostActionIntegrationResponse
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
		require.NotNil(t, resp.Update, w.Body.String())
		assert.Contains(t, resp.Update.Message, "Cancelling")
		cancelled := waitForBotPost(t, mmAddr, botID, "Cancelled** by @alice")
		assert.Equal(t, "cancelled", cancelled.Post.Props["codex_status"])
	})

	// awaitApproval waits for the approval request of a prompt; press clicks one of its buttons
	// through ServeHTTP as the server would, with the user in Mattermost-User-Id.
	awaitApproval := func(t *testing.T, prompt string) fakePost {
		var found fakePost
		waitUntil(t, 90*time.Second, "the approval request for "+strconv.Quote(prompt), func() bool {
			var posts []fakePost
			getJSON(t, "http://"+mmAddr+"/_test/posts", &posts)
			for _, p := range posts {
				if p.Post.Props["codex_kind"] == "approval" && strings.Contains(p.Post.Message, prompt) && buttonContext(p, "approve") != nil {
					found = p
					return true
				}
			}
			return false
		})
		return found
	}
	press := func(t *testing.T, post fakePost, action, userID string) model.PostActionIntegrationResponse {
		body, err := json.Marshal(model.PostActionIntegrationRequest{PostId: post.Post.ID, ChannelId: channel.Id, TeamId: team.Id, Context: buttonContext(post, action)})
		require.NoError(t, err)
		r := httptest.NewRequest(http.MethodPost, "/v1/actions", strings.NewReader(string(body)))
		r.Header.Set("Mattermost-User-Id", userID)
		w := httptest.NewRecorder()
		hooks.ServeHTTP(&plugin.Context{}, w, r)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var resp model.PostActionIntegrationResponse
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
		return resp
	}
	prompt := func(t *testing.T, text string) {
		resp, appErr := hooks.ExecuteCommand(&plugin.Context{}, &model.CommandArgs{UserId: alice.Id, ChannelId: channel.Id, TeamId: team.Id, TriggerId: "trigger", Command: "/codex " + text})
		require.Nil(t, appErr)
		assert.Contains(t, resp.Text, "needs approval")
	}

	t.Run("an approval request is decided through real button presses", func(t *testing.T) {
		prompt(t, "deploy the demo")
		request := awaitApproval(t, "deploy the demo")
		assert.Contains(t, request.Post.Message, "@carol")
		assert.NotNil(t, buttonContext(request, "deny"))
		own := press(t, request, "approve", alice.Id)
		assert.Contains(t, own.EphemeralText, "cannot approve your own request")
		granted := press(t, request, "approve", carol.Id)
		require.NotNil(t, granted.Update, granted.EphemeralText)
		assert.Contains(t, granted.Update.Message, "granted** by @carol")
		answer := waitForBotPost(t, mmAddr, botID, "Mock answer: deploy the demo")
		assert.Equal(t, "answered", answer.Post.Props["codex_status"])
	})

	t.Run("a stranger cannot approve, and an approver's deny ends the request visibly", func(t *testing.T) {
		prompt(t, "deploy the other service")
		request := awaitApproval(t, "deploy the other service")
		stranger := press(t, request, "approve", mallory.Id)
		assert.Contains(t, stranger.EphemeralText, "Only @carol")
		denied := press(t, request, "deny", carol.Id)
		require.NotNil(t, denied.Update, denied.EphemeralText)
		assert.Contains(t, denied.Update.Message, "denied** by @carol")
		outcome := waitForBotPost(t, mmAddr, botID, "Denied** by @carol")
		assert.Equal(t, "refused", outcome.Post.Props["codex_status"])
	})

	t.Run("min-approvals 2 needs two distinct approvers", func(t *testing.T) {
		prompt(t, "hotfix the login page")
		request := awaitApproval(t, "hotfix the login page")
		first := press(t, request, "approve", carol.Id)
		require.NotNil(t, first.Update, first.EphemeralText)
		assert.Contains(t, first.Update.Message, "Approved so far by @carol")
		again := press(t, request, "approve", carol.Id)
		assert.Contains(t, again.EphemeralText, "already answered")
		// The updated post carries fresh buttons; dave presses one.
		var updated fakePost
		updated.Post.ID = request.Post.ID
		updated.Post.Props = first.Update.GetProps()
		second := press(t, updated, "approve", dave.Id)
		require.NotNil(t, second.Update, second.EphemeralText)
		assert.Contains(t, second.Update.Message, "granted** by @carol, @dave")
		answer := waitForBotPost(t, mmAddr, botID, "Mock answer: hotfix the login page")
		assert.Equal(t, "answered", answer.Post.Props["codex_status"])
	})

	t.Run("an unanswered approval expires and fails closed", func(t *testing.T) {
		prompt(t, "migrate the database")
		outcome := waitForBotPost(t, mmAddr, botID, "nobody approved this request before it expired")
		assert.Equal(t, "refused", outcome.Post.Props["codex_status"])
		request := waitForBotPost(t, mmAddr, botID, "Approval expired")
		assert.Nil(t, buttonContext(*request, "approve"), "an expired request keeps no buttons")
		assert.Contains(t, request.Post.Message, "migrate the database")
	})

	commandRequestsByButton(t, commandRig{
		repo: repo, alice: alice.Id, carol: carol.Id, await: awaitApproval, press: press, mmAddr: mmAddr,
		run: func(t *testing.T, text string) {
			_, appErr := hooks.ExecuteCommand(&plugin.Context{}, &model.CommandArgs{UserId: alice.Id, ChannelId: channel.Id, TeamId: team.Id, TriggerId: "trigger", Command: "/codex " + text})
			require.Nil(t, appErr)
		},
	})

	t.Run("a request without Mattermost-User-Id is refused", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "/v1/actions", strings.NewReader(`{"user_id":"`+alice.Id+`","context":{"action":"cancel"}}`))
		w := httptest.NewRecorder()
		hooks.ServeHTTP(&plugin.Context{}, w, r)
		assert.Equal(t, http.StatusUnauthorized, w.Code)

		r = httptest.NewRequest(http.MethodGet, "/autocomplete/projects?channel_id="+channel.Id, nil)
		w = httptest.NewRecorder()
		hooks.ServeHTTP(&plugin.Context{}, w, r)
		assert.Equal(t, http.StatusUnauthorized, w.Code)
	})

	t.Run("the project list is served for autocomplete", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/autocomplete/projects?channel_id="+channel.Id+"&team_id="+team.Id, nil)
		r.Header.Set("Mattermost-User-Id", alice.Id)
		w := httptest.NewRecorder()
		hooks.ServeHTTP(&plugin.Context{}, w, r)
		require.Equal(t, http.StatusOK, w.Code)
		var items []model.AutocompleteListItem
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &items), w.Body.String())
		require.NotEmpty(t, items, "the host should list the configured project")
		assert.Equal(t, "demo", items[0].Item)
	})

	t.Run("host unreachable gives an ephemeral error with the prompt echoed", func(t *testing.T) {
		settingsMu.Lock()
		settings["hostmode"] = "external"
		settings["socketpath"] = filepath.Join(sockDir, "nobody-listens.sock")
		settings["hostsecret"] = "whatever"
		settingsMu.Unlock()
		require.NoError(t, hooks.OnConfigurationChange())

		resp, appErr := hooks.ExecuteCommand(&plugin.Context{}, &model.CommandArgs{
			UserId: alice.Id, ChannelId: channel.Id, TeamId: team.Id, Command: "/codex please keep this prompt",
		})
		require.Nil(t, appErr)
		assert.Equal(t, model.CommandResponseTypeEphemeral, resp.ResponseType)
		assert.Contains(t, resp.Text, "Codex is not available right now")
		assert.Contains(t, resp.Text, "System Console")
		assert.Contains(t, resp.Text, "please keep this prompt")
	})

	require.True(t, env.Deactivate(pluginID))
	api.AssertCalled(t, "RevokeUserAccessToken", "token-id")
	assert.NotContains(t, api.allLogs(), botToken, "the bot token must never be logged")
}
