package harness

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
	"github.com/mattermost/mattermost/server/public/plugin/plugintest"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
)

var runnerTokenRE = regexp.MustCompile(`cxr\.[a-z0-9-]+\.[A-Za-z0-9_-]+`)

// TestBenchRunnerOverhead measures what a remote runner adds next to the local host: the same
// /codex command and the same Codex run, once in a channel whose project the managed host serves
// over its Unix socket and once in a channel whose project a `codex-host connect` process serves
// by long-polling the plugin's HTTP routes and posting through its relay. It runs only under
// `make bench`, which sets CODEX_BENCH_RESULTS to the directory for runners.json.
func TestBenchRunnerOverhead(t *testing.T) {
	resultsDir := os.Getenv("CODEX_BENCH_RESULTS")
	if resultsDir == "" {
		t.Skip("CODEX_BENCH_RESULTS is not set; `make bench` runs this benchmark")
	}
	bundle := requireEnv(t, "CODEX_MM_BUNDLE")
	codex := requireEnv(t, "CODEX_MM_CODEX")
	testkit := requireEnv(t, "CODEX_MM_TESTKIT")
	rounds, perRound, warmup, runPairs := 5, 200, 30, 10
	if os.Getenv("CODEX_BENCH_QUICK") == "1" {
		rounds, perRound, warmup, runPairs = 1, 20, 5, 1
	}

	root := t.TempDir()
	pluginsDir, webappDir, bundlePath := installBundle(t, root, bundle)
	botID, botToken := model.NewId(), model.NewId()
	modelAddr := startTestkit(t, testkit, "mock-model")
	mmAddr := startTestkit(t, testkit, "fake-mattermost", "--bot-user-id", botID, "--bot-token", botToken)
	alice := &model.User{Id: model.NewId(), Username: "alice", Roles: "system_user"}
	admin := &model.User{Id: model.NewId(), Username: "admin", Roles: "system_user system_admin"}
	for _, u := range []*model.User{alice, admin} {
		postJSON(t, "http://"+mmAddr+"/_test/users", map[string]any{"id": u.Id, "username": u.Username, "roles": strings.Fields(u.Roles)}, nil)
	}

	localRepo, remoteRepo := filepath.Join(root, "local-repo"), filepath.Join(root, "remote-repo")
	codexHome := filepath.Join(root, "codex-home")
	for _, d := range []string{localRepo, remoteRepo, codexHome} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	sockDir, err := os.MkdirTemp("", "cmr")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	t.Setenv("MOCK_API_KEY", "mock-key")
	settings := map[string]any{
		"hostmode":          "managed",
		"socketpath":        filepath.Join(sockDir, "host.sock"),
		"mattermosturl":     "http://" + mmAddr,
		"allowedusers":      "alice",
		"projects":          "local = " + localRepo + "\nremote = " + remoteRepo + " ; runner=bench",
		"defaultproject":    "local",
		"codexpath":         codex,
		"codexhome":         codexHome,
		"codexconfig":       codexConfig(t, testkit, modelAddr),
		"codexenv":          "MOCK_API_KEY",
		"defaultsandbox":    "read-only",
		"model":             "gpt-5.5",
		"runtimeoutminutes": 5,
	}

	team := &model.Team{Id: model.NewId(), Name: "eng", DisplayName: "Engineering"}
	localCh := &model.Channel{Id: model.NewId(), Name: "local", DisplayName: "Local", Type: model.ChannelTypeOpen, TeamId: team.Id}
	remoteCh := &model.Channel{Id: model.NewId(), Name: "remote", DisplayName: "Remote", Type: model.ChannelTypeOpen, TeamId: team.Id}
	api := &quietAPI{&serverAPI{API: &plugintest.API{}, t: t}}
	api.On("LoadPluginConfiguration", mock.Anything).Run(func(args mock.Arguments) {
		*args.Get(0).(*any) = settings
	}).Return(nil)
	expectActivation(api.serverAPI, bundlePath, botID, botToken)
	api.On("RegisterCommand", mock.Anything).Return(nil)
	api.On("GetConfig").Return(&model.Config{})
	for _, u := range []*model.User{alice, admin} {
		api.On("GetUser", u.Id).Return(u, nil)
		api.On("GetUserByUsername", u.Username).Return(u, nil)
		api.On("HasPermissionTo", u.Id, model.PermissionManageSystem).Return(strings.Contains(u.Roles, "system_admin"))
	}
	api.On("GetTeam", team.Id).Return(team, nil)
	for _, ch := range []*model.Channel{localCh, remoteCh} {
		api.On("GetChannel", ch.Id).Return(ch, nil)
		api.On("GetChannelMember", ch.Id, botID).Return(&model.ChannelMember{ChannelId: ch.Id, UserId: botID}, nil)
	}
	// The relay checks a thread's root before a runner posts in it: the post as Mattermost has it.
	api.On("GetPost", mock.Anything).Return(func(id string) (*model.Post, *model.AppError) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+mmAddr+"/api/v4/posts/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+botToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, model.NewAppError("GetPost", "fake", nil, err.Error(), http.StatusInternalServerError)
		}
		defer resp.Body.Close()
		var p model.Post
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&p) != nil {
			return nil, model.NewAppError("GetPost", "not_found", nil, "", http.StatusNotFound)
		}
		return &p, nil
	})

	env, err := plugin.NewEnvironment(func(*model.Manifest) plugin.API { return api }, nil, pluginsDir, webappDir, mlog.CreateConsoleTestLogger(t), nil)
	require.NoError(t, err)
	t.Cleanup(env.Shutdown)
	_, activated, err := env.Activate(pluginID)
	require.NoError(t, err, "activation failed; plugin log:\n%s", api.allLogs())
	require.True(t, activated)
	hooks, err := env.HooksForPlugin(pluginID)
	require.NoError(t, err)
	// The server's HTTP front for plugin routes: /plugins/<id>/... reaches ServeHTTP without the
	// prefix, and a client cannot bring its own Mattermost-User-Id (no session: none is set).
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prefix := "/plugins/" + pluginID
		if !strings.HasPrefix(r.URL.Path, prefix+"/") {
			http.NotFound(w, r)
			return
		}
		r.URL.Path = strings.TrimPrefix(r.URL.Path, prefix)
		r.Header.Del("Mattermost-User-Id")
		hooks.ServeHTTP(&plugin.Context{}, w, r)
	}))
	t.Cleanup(front.Close)

	command := func(user *model.User, ch *model.Channel, text string) string {
		t.Helper()
		resp, appErr := hooks.ExecuteCommand(&plugin.Context{}, &model.CommandArgs{
			UserId: user.Id, ChannelId: ch.Id, TeamId: team.Id, TriggerId: "trigger", Command: "/codex " + text,
		})
		require.Nil(t, appErr)
		require.NotNil(t, resp)
		return resp.Text
	}

	// The runner: registered by the admin, its token in a file, `codex-host connect` from the bundle.
	token := runnerTokenRE.FindString(command(admin, remoteCh, "runner add bench"))
	require.NotEmpty(t, token, "/codex runner add shows the token")
	tokenFile := filepath.Join(root, "runner.token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	runnerLog, err := os.Create(filepath.Join(root, "runner.log"))
	require.NoError(t, err)
	runner := exec.Command(filepath.Join(bundlePath, "server", "dist", "codex-host-linux-"+runtime.GOARCH),
		"connect", "--server", front.URL, "--token-file", tokenFile, "--plugin-id", pluginID,
		"--state-dir", filepath.Join(root, "runner-state"), "--policy-dir", filepath.Join(bundlePath, "policies"))
	runner.Stdout, runner.Stderr = runnerLog, runnerLog
	require.NoError(t, runner.Start())
	t.Cleanup(func() {
		_ = runner.Process.Signal(syscall.SIGTERM)
		_ = runner.Wait()
	})
	runnerOutput := func() string { b, _ := os.ReadFile(runnerLog.Name()); return string(b) }

	// The remote channel follows the project its runner serves; then both answer /codex policy.
	waitUntil(t, 60*time.Second, "the runner to take the remote project", func() bool {
		return strings.Contains(command(alice, remoteCh, "project remote"), "is now `remote`")
	})
	policyText := func(ch *model.Channel) string { return command(alice, ch, "policy") }
	waitUntil(t, 60*time.Second, "both hosts to answer /codex policy with their settings", func() bool {
		return strings.HasPrefix(policyText(localCh), "You may") && strings.HasPrefix(policyText(remoteCh), "You may")
	})
	require.Contains(t, command(admin, localCh, "runner list"), "online", "runner log:\n%s", runnerOutput())

	// Acknowledgements: /codex policy in each channel, interleaved, the order alternating.
	timeOne := func(ch *model.Channel) float64 {
		start := time.Now()
		text := policyText(ch)
		d := time.Since(start)
		require.True(t, strings.HasPrefix(text, "You may"), "%s: %q", ch.Name, text)
		return benchMs(d)
	}
	for i := 0; i < warmup; i++ {
		timeOne(localCh)
		timeOne(remoteCh)
	}
	var sock50, sock99, run50, run99, add50, add99 []float64
	for r := 0; r < rounds; r++ {
		runtime.GC()
		var viaSocket, viaRunner []float64
		for i := 0; i < perRound; i++ {
			if i%2 == 0 {
				viaSocket = append(viaSocket, timeOne(localCh))
				viaRunner = append(viaRunner, timeOne(remoteCh))
			} else {
				viaRunner = append(viaRunner, timeOne(remoteCh))
				viaSocket = append(viaSocket, timeOne(localCh))
			}
		}
		sort.Float64s(viaSocket)
		sort.Float64s(viaRunner)
		s50, s99 := benchQuantile(viaSocket, 0.5), benchQuantile(viaSocket, 0.99)
		r50, r99 := benchQuantile(viaRunner, 0.5), benchQuantile(viaRunner, 0.99)
		sock50, sock99 = append(sock50, benchRound3(s50)), append(sock99, benchRound3(s99))
		run50, run99 = append(run50, benchRound3(r50)), append(run99, benchRound3(r99))
		add50, add99 = append(add50, benchRound3(r50-s50)), append(add99, benchRound3(r99-s99))
		t.Logf("round %d: /codex policy via socket p50 %.3f p99 %.3f ms; via runner p50 %.3f p99 %.3f ms", r+1, s50, s99, r50, r99)
	}

	// Runs: from the command to its outcome post in Mattermost, one Codex run each way per pair.
	outcomeOf := func(prompt string) bool {
		var posts []fakePost
		getJSON(t, "http://"+mmAddr+"/_test/posts", &posts)
		for _, p := range posts {
			if p.Post.Props["codex_kind"] == "outcome" && strings.Contains(p.Post.Message, "Mock answer: "+prompt) {
				return true
			}
		}
		return false
	}
	timeRun := func(ch *model.Channel, n int) float64 {
		prompt := fmt.Sprintf("summarise the repository (bench %s %d)", ch.Name, n)
		start := time.Now()
		command(alice, ch, prompt)
		deadline := start.Add(90 * time.Second)
		for !outcomeOf(prompt) {
			require.True(t, time.Now().Before(deadline), "no outcome for %q; runner log:\n%s", prompt, runnerOutput())
			time.Sleep(5 * time.Millisecond)
		}
		return benchMs(time.Since(start))
	}
	timeRun(localCh, -1)
	timeRun(remoteCh, -1)
	var runLocal, runRemote, runAdded []float64
	for i := 0; i < runPairs; i++ {
		var l, rm float64
		if i%2 == 0 {
			l, rm = timeRun(localCh, i), timeRun(remoteCh, i)
		} else {
			rm = timeRun(remoteCh, i)
			l = timeRun(localCh, i)
		}
		runLocal, runRemote, runAdded = append(runLocal, benchRound3(l)), append(runRemote, benchRound3(rm)), append(runAdded, benchRound3(rm-l))
		t.Logf("run pair %d: local host %.0f ms, runner %.0f ms", i+1, l, rm)
	}
	require.True(t, env.Deactivate(pluginID))

	section := benchSection{
		ID:    "runners",
		Title: "Remote runners",
		Method: fmt.Sprintf("The built bundle in Mattermost's own plugin loader (as in *Plugin overhead*), with two hosts: the "+
			"managed codex-host on the plugin's Unix socket serves project `local`, and `codex-host connect` (the bundle's "+
			"binary, registered with `/codex runner add`) serves project `remote`, long-polling the plugin's runner routes "+
			"through an HTTP server in front of the plugin's `ServeHTTP` (as the Mattermost server routes `/plugins/<id>/...`) "+
			"and posting through the plugin's relay to the fake Mattermost. Same machine, loopback: the figures are the "+
			"transport's own cost, not a network's. **Acknowledgement**: `/codex policy` through `hooks.ExecuteCommand` in a "+
			"channel of each project, interleaved with the order alternating, %d per round, %d rounds after %d warm-up pairs; "+
			"via the runner the plugin puts the request in the runner's mailbox, answers its waiting poll, and waits for the "+
			"runner's answer on the answer route. **Per run**: `/codex <prompt>` (a real Codex CLI run against the mock model, "+
			"read-only sandbox) timed from the command to its outcome post in Mattermost (polled every 5 ms), %d pairs after "+
			"one warm-up pair; every post the runner makes (root, progress, outcome) goes through the relay.",
			perRound, rounds, warmup, runPairs),
		Notes: []string{
			"The plugin API's server side is the harness's mock (see *Plugin overhead*); the relay's own calls go to the " +
				"fake Mattermost over HTTP with the bot's token, as they go to the real server's REST API.",
			fmt.Sprintf("%d CPUs (%s/%s) shared by the plugin, both hosts, Codex and the fake peers.", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH),
		},
		Figures: []benchFigure{
			{Name: "ack via socket p50", Unit: "ms", Rounds: sock50},
			{Name: "ack via runner p50", Unit: "ms", Rounds: run50},
			{Name: "added by the runner at p50", Unit: "ms", Rounds: add50},
			{Name: "ack via socket p99", Unit: "ms", Rounds: sock99},
			{Name: "ack via runner p99", Unit: "ms", Rounds: run99},
			{Name: "added by the runner at p99", Unit: "ms", Rounds: add99},
			{Name: "run via the local host", Unit: "ms", Rounds: runLocal},
			{Name: "run via the runner", Unit: "ms", Rounds: runRemote},
			{Name: "added per run by the runner", Unit: "ms", Rounds: runAdded},
		},
	}
	raw, err := json.MarshalIndent(section, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(resultsDir, "runners.json"), raw, 0o644))
}
