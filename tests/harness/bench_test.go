package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
	"github.com/mattermost/mattermost/server/public/plugin/plugintest"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
)

// The bench section this test writes: the same shape as bench/src/results.rs (Section, Figure,
// Target), which `make bench` turns into bench/REPORT.md.
type benchSection struct {
	ID      string        `json:"id"`
	Title   string        `json:"title"`
	Method  string        `json:"method"`
	Figures []benchFigure `json:"figures"`
	Notes   []string      `json:"notes"`
}

type benchFigure struct {
	Name   string       `json:"name"`
	Unit   string       `json:"unit"`
	Rounds []float64    `json:"rounds"`
	Target *benchTarget `json:"target,omitempty"`
}

type benchTarget struct {
	Op    string  `json:"op"`
	Value float64 `json:"value"`
}

// The body of POST /v1/commands as docs/socket-contract.md defines it (the plugin's own types,
// CommandRequest, User and Channel in plugin/server/contract.go, live in package main).
type benchUser struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Roles    []string `json:"roles"`
	IsBot    bool     `json:"is_bot"`
}

type benchChannel struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	Kind        string `json:"kind"`
	TeamID      string `json:"team_id"`
	TeamName    string `json:"team_name"`
}

type benchCommandRequest struct {
	User      benchUser    `json:"user"`
	Channel   benchChannel `json:"channel"`
	RootID    string       `json:"root_id"`
	TriggerID string       `json:"trigger_id"`
	Text      string       `json:"text"`
}

// quietAPI is the harness's mocked server API with the host's and plugin's log lines kept in
// memory only: thousands of commands would otherwise flood the test log.
type quietAPI struct{ *serverAPI }

func (a *quietAPI) keep(level, msg string, kv ...any) {
	a.mu.Lock()
	a.logs = append(a.logs, fmt.Sprintf("%s %s %v", level, msg, kv))
	a.mu.Unlock()
}

func (a *quietAPI) LogDebug(msg string, kv ...any) { a.keep("DEBUG", msg, kv...) }
func (a *quietAPI) LogInfo(msg string, kv ...any)  { a.keep("INFO", msg, kv...) }
func (a *quietAPI) LogWarn(msg string, kv ...any)  { a.keep("WARN", msg, kv...) }
func (a *quietAPI) LogError(msg string, kv ...any) { a.keep("ERROR", msg, kv...) }

// benchQuantile is the nearest-rank quantile on sorted values, as bench/src/results.rs computes it.
func benchQuantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(math.Round(float64(len(sorted)-1)*q))]
}

func benchMs(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// benchRound3 keeps microsecond resolution in the JSON.
func benchRound3(x float64) float64 { return math.Round(x*1000) / 1000 }

// benchCase is one command sent both ways.
type benchCase struct {
	label   string // prefix of the figure names ("" for the main command)
	args    model.CommandArgs
	body    benchCommandRequest
	want    string // the response text both paths must return (checked, not timed)
	viaP50  []float64
	dirP50  []float64
	viaP99  []float64
	dirP99  []float64
	added50 []float64
	added99 []float64
}

// TestBenchPluginOverhead measures what the plugin adds to a /codex command: the same command
// through Mattermost's plugin loader (hooks.ExecuteCommand over go-plugin RPC, the plugin, its
// socket call) and straight to codex-host's socket, interleaved, in several rounds. It runs only
// under `make bench`, which sets CODEX_BENCH_RESULTS to the directory for plugin.json.
func TestBenchPluginOverhead(t *testing.T) {
	resultsDir := os.Getenv("CODEX_BENCH_RESULTS")
	if resultsDir == "" {
		t.Skip("CODEX_BENCH_RESULTS is not set; `make bench` runs this benchmark")
	}
	bundle := requireEnv(t, "CODEX_MM_BUNDLE")
	rounds, perRound, warmup := 5, 200, 50
	if os.Getenv("CODEX_BENCH_QUICK") == "1" {
		rounds, perRound, warmup = 1, 20, 10
	}

	root := t.TempDir()
	pluginsDir, webappDir, bundlePath := installBundle(t, root, bundle)

	botID, botToken := model.NewId(), model.NewId()
	// The commands measured post nothing, so Mattermost's REST API is never called; the fake
	// Mattermost only stands behind the URL when the testkit is at hand.
	mattermostURL := "http://127.0.0.1:9"
	if testkit := os.Getenv("CODEX_MM_TESTKIT"); testkit != "" {
		mattermostURL = "http://" + startTestkit(t, testkit, "fake-mattermost", "--bot-user-id", botID, "--bot-token", botToken)
	}
	codexPath := "codex"
	if c := os.Getenv("CODEX_MM_CODEX"); c != "" {
		codexPath = c
	}

	repo := filepath.Join(root, "repo")
	codexHome := filepath.Join(root, "codex-home")
	require.NoError(t, os.MkdirAll(repo, 0o755))
	require.NoError(t, os.MkdirAll(codexHome, 0o755))
	sockDir, err := os.MkdirTemp("", "cmb")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	socket := filepath.Join(sockDir, "host.sock")
	// A configured secret (managed mode otherwise makes a fresh one it never discloses), so that
	// the direct client can authenticate exactly as the plugin does.
	secretBytes := make([]byte, 32)
	_, err = rand.Read(secretBytes)
	require.NoError(t, err)
	secret := hex.EncodeToString(secretBytes)

	settings := map[string]any{
		"hostmode":          "managed",
		"socketpath":        socket,
		"hostsecret":        secret,
		"mattermosturl":     mattermostURL,
		"allowedusers":      "alice",
		"projects":          "demo = " + repo,
		"defaultproject":    "demo",
		"codexpath":         codexPath,
		"codexhome":         codexHome,
		"defaultsandbox":    "read-only",
		"runtimeoutminutes": 5,
	}

	alice := &model.User{Id: model.NewId(), Username: "alice", Roles: "system_user"}
	mallory := &model.User{Id: model.NewId(), Username: "mallory", Roles: "system_user"}
	team := &model.Team{Id: model.NewId(), Name: "eng", DisplayName: "Engineering"}
	channel := &model.Channel{Id: model.NewId(), Name: "town-square", DisplayName: "Town Square", Type: model.ChannelTypeOpen, TeamId: team.Id}

	api := &quietAPI{&serverAPI{API: &plugintest.API{}, t: t}}
	api.On("LoadPluginConfiguration", mock.Anything).Run(func(args mock.Arguments) {
		*args.Get(0).(*any) = settings
	}).Return(nil)
	expectActivation(api.serverAPI, bundlePath, botID, botToken)
	api.On("RegisterCommand", mock.Anything).Return(nil)
	api.On("GetUser", alice.Id).Return(alice, nil)
	// Allowed users names alice: the plugin resolves it to her id before each settings push.
	api.On("GetUserByUsername", "alice").Return(alice, nil)
	api.On("GetUser", mallory.Id).Return(mallory, nil)
	api.On("GetChannel", channel.Id).Return(channel, nil)
	api.On("GetTeam", team.Id).Return(team, nil)
	// The bot is already in the channel (a prompt makes the plugin check that once, then cache it).
	api.On("GetChannelMember", channel.Id, botID).Return(&model.ChannelMember{ChannelId: channel.Id, UserId: botID}, nil)

	env, err := plugin.NewEnvironment(func(*model.Manifest) plugin.API { return api }, nil, pluginsDir, webappDir, mlog.CreateConsoleTestLogger(t), nil)
	require.NoError(t, err)
	t.Cleanup(env.Shutdown)
	_, activated, err := env.Activate(pluginID)
	require.NoError(t, err, "activation failed; plugin log:\n%s", api.allLogs())
	require.True(t, activated)
	hooks, err := env.HooksForPlugin(pluginID)
	require.NoError(t, err)

	// The direct client: what the plugin's hostClient does, from this process. Keep-alive HTTP/1.1
	// on the Unix socket, the bearer secret, a JSON body encoded per request.
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:        4,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     60 * time.Second,
	}
	client := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	t.Cleanup(transport.CloseIdleConnections)
	direct := func(body benchCommandRequest) (*model.CommandResponse, error) {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequest(http.MethodPost, "http://codex-host/v1/commands", bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
		}
		var out model.CommandResponse
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, err
		}
		return &out, nil
	}
	viaPlugin := func(args model.CommandArgs) (*model.CommandResponse, error) {
		resp, appErr := hooks.ExecuteCommand(&plugin.Context{}, &args)
		if appErr != nil {
			return nil, appErr
		}
		if resp == nil {
			return nil, fmt.Errorf("no response")
		}
		return resp, nil
	}

	contractChannel := benchChannel{ID: channel.Id, Name: channel.Name, DisplayName: channel.DisplayName, Kind: "public", TeamID: team.Id, TeamName: team.Name}
	contractUser := func(u *model.User) benchUser {
		return benchUser{ID: u.Id, Username: u.Username, Roles: strings.Fields(u.Roles)}
	}
	cases := []*benchCase{
		{
			args: model.CommandArgs{UserId: alice.Id, ChannelId: channel.Id, TeamId: team.Id, TriggerId: "trigger", Command: "/codex policy"},
			body: benchCommandRequest{User: contractUser(alice), Channel: contractChannel, TriggerID: "trigger", Text: "policy"},
		},
		{
			label: "refused prompt: ",
			args:  model.CommandArgs{UserId: mallory.Id, ChannelId: channel.Id, TeamId: team.Id, TriggerId: "trigger", Command: "/codex summarise the README"},
			body:  benchCommandRequest{User: contractUser(mallory), Channel: contractChannel, TriggerID: "trigger", Text: "summarise the README"},
		},
	}

	// The managed host starts and takes its settings asynchronously after activation; wait until
	// /codex policy is answered with a decision on both paths.
	waitUntil(t, 60*time.Second, "codex-host to answer /codex policy with its settings", func() bool {
		a, errA := viaPlugin(cases[0].args)
		b, errB := direct(cases[0].body)
		return errA == nil && errB == nil && strings.HasPrefix(a.Text, "You may") && strings.HasPrefix(b.Text, "You may")
	})
	for _, c := range cases {
		a, err := viaPlugin(c.args)
		require.NoError(t, err)
		b, err := direct(c.body)
		require.NoError(t, err)
		require.Equal(t, model.CommandResponseTypeEphemeral, a.ResponseType)
		require.Equal(t, b.ResponseType, a.ResponseType)
		require.Equal(t, b.Text, a.Text, "the plugin and the direct call must get the same answer for %q", c.args.Command)
		c.want = a.Text
		t.Logf("%s -> %q", c.args.Command, c.want)
	}
	require.True(t, strings.HasPrefix(cases[0].want, "You may run Codex here"), "alice may run Codex: %q", cases[0].want)
	require.True(t, strings.HasPrefix(cases[1].want, "Codex did not run:"), "mallory's prompt must be refused before a run starts: %q", cases[1].want)

	check := func(c *benchCase, path string, resp *model.CommandResponse, err error) {
		t.Helper()
		require.NoError(t, err, "%s: %s", path, c.args.Command)
		require.Equal(t, c.want, resp.Text, "%s: %s", path, c.args.Command)
	}
	// One command both ways, in alternating order, timed separately.
	pair := func(c *benchCase, i int, via, dir []float64) ([]float64, []float64) {
		var dv, dd time.Duration
		runVia := func() {
			start := time.Now()
			resp, err := viaPlugin(c.args)
			dv = time.Since(start)
			check(c, "via plugin", resp, err)
		}
		runDirect := func() {
			start := time.Now()
			resp, err := direct(c.body)
			dd = time.Since(start)
			check(c, "direct", resp, err)
		}
		if i%2 == 0 {
			runVia()
			runDirect()
		} else {
			runDirect()
			runVia()
		}
		return append(via, benchMs(dv)), append(dir, benchMs(dd))
	}

	for _, c := range cases {
		for i := 0; i < warmup; i++ {
			pair(c, i, nil, nil)
		}
	}
	logCount := func() int {
		api.mu.Lock()
		defer api.mu.Unlock()
		return len(api.logs)
	}
	logsBefore := logCount()
	for r := 0; r < rounds; r++ {
		runtime.GC()
		for _, c := range cases {
			via := make([]float64, 0, perRound)
			dir := make([]float64, 0, perRound)
			for i := 0; i < perRound; i++ {
				via, dir = pair(c, i, via, dir)
			}
			sort.Float64s(via)
			sort.Float64s(dir)
			v50, d50, v99, d99 := benchQuantile(via, 0.5), benchQuantile(dir, 0.5), benchQuantile(via, 0.99), benchQuantile(dir, 0.99)
			c.viaP50 = append(c.viaP50, benchRound3(v50))
			c.dirP50 = append(c.dirP50, benchRound3(d50))
			c.viaP99 = append(c.viaP99, benchRound3(v99))
			c.dirP99 = append(c.dirP99, benchRound3(d99))
			c.added50 = append(c.added50, benchRound3(v50-d50))
			c.added99 = append(c.added99, benchRound3(v99-d99))
			t.Logf("round %d %q: via plugin p50 %.3f ms p99 %.3f ms; direct p50 %.3f ms p99 %.3f ms", r+1, c.args.Command, v50, v99, d50, d99)
		}
	}
	logLines := logCount() - logsBefore
	t.Logf("log lines from the plugin and the host during the measured commands: %d", logLines)
	require.True(t, env.Deactivate(pluginID))

	target := &benchTarget{Op: "<=", Value: 2}
	policy, prompt := cases[0], cases[1]
	section := benchSection{
		ID:    "plugin",
		Title: "Plugin overhead",
		Method: fmt.Sprintf("The built bundle is loaded with Mattermost's own plugin loader (`plugin.NewEnvironment` + `Activate`, "+
			"the real go-plugin handshake; the plugin starts the bundled codex-host in managed mode). "+
			"Each round sends `/codex policy` %d times both ways, interleaved one by one with the order alternating "+
			"(the host evaluates the policy chain, writes its audit record and explains the decision; no Codex run starts). "+
			"**Via plugin** times `hooks.ExecuteCommand` on the hooks the loader returns: a net/rpc call (gob over go-plugin's "+
			"connection) from the server side to the plugin process, where the plugin resolves the user with `GetUser` "+
			"(an RPC back to the server side's plugin API; channel and team come from the plugin's cache after the first command), "+
			"POSTs `/v1/commands` to codex-host on its Unix socket (keep-alive HTTP/1.1, bearer secret), decodes the "+
			"`CommandResponse` and returns it over the RPC. **Direct** times the same POST with the same JSON body and secret "+
			"from the server-side process over its own keep-alive Unix-socket client, decoding the same answer. "+
			"p50 and p99 are taken per round over the %d commands (nearest rank); *added* is the per-round difference via plugin − direct. "+
			"The same is measured for a prompt the policy refuses (`/codex <prompt>` from a user not on the allow list), "+
			"which takes the prompt path (plus the plugin's cached bot-membership check) without starting a run.",
			perRound, perRound),
		Notes: []string{
			"The server side of the plugin API is not a real Mattermost server: it is the harness's mock, testify's " +
				"`plugintest.API` from mattermost/server/public, answering `GetUser` (every command) and `GetChannel`, `GetTeam`, " +
				"`GetChannelMember` (first command only; the plugin caches them) from memory, with log calls kept in memory. " +
				"The RPC to and from the plugin process is Mattermost's real one, but a real server answers `GetUser` from its " +
				"user cache or database, which these figures do not include.",
			fmt.Sprintf("%d rounds × %d commands per path per command, after %d warm-up pairs; both paths and codex-host share the "+
				"machine (%d CPUs, %s/%s), and the host's per-command audit write is in both paths alike.",
				rounds, perRound, warmup, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH),
			"Both paths are checked to return the same ephemeral response text on every command.",
		},
		Figures: []benchFigure{
			{Name: "via plugin p50", Unit: "ms", Rounds: policy.viaP50},
			{Name: "direct p50", Unit: "ms", Rounds: policy.dirP50},
			{Name: "added at p50", Unit: "ms", Rounds: policy.added50, Target: target},
			{Name: "via plugin p99", Unit: "ms", Rounds: policy.viaP99},
			{Name: "direct p99", Unit: "ms", Rounds: policy.dirP99},
			{Name: "added at p99", Unit: "ms", Rounds: policy.added99},
			{Name: prompt.label + "via plugin p50", Unit: "ms", Rounds: prompt.viaP50},
			{Name: prompt.label + "direct p50", Unit: "ms", Rounds: prompt.dirP50},
			{Name: prompt.label + "added at p50", Unit: "ms", Rounds: prompt.added50, Target: target},
			{Name: prompt.label + "added at p99", Unit: "ms", Rounds: prompt.added99},
		},
	}
	if rounds == 1 {
		section.Notes = append(section.Notes, "Quick run (CODEX_BENCH_QUICK=1): one short round, indicative only.")
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(section))
	require.NoError(t, os.MkdirAll(resultsDir, 0o755))
	path := filepath.Join(resultsDir, "plugin.json")
	require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))
	t.Logf("wrote %s", path)
}
