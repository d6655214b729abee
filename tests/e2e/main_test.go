package e2e

// TestMain brings the whole stack up once for every scenario and always tears it down.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

const (
	pluginID = "com.github.codex-for-mattermost"
	password = "Codex-e2e-passw0rd!"
	teamName = "eng"
)

// suite is what TestMain set up and every scenario uses.
type suite struct {
	server    *mattermostServer
	modelAddr string
	// The Codex config lines that point Codex at the mock model.
	codexConfig string
	workDir     string
	bundle      string

	admin, alice, bob, carol *actor
	team                     *model.Team
	public, private, offList *model.Channel
	botID                    string
	settings                 map[string]any
	// sql reads Mattermost's database directly, for what the server hides from every client.
	sql sqlQuery
	// interrupted ends on Ctrl-C under `make demo`.
	interrupted context.Context
}

// actor is one logged-in user and the REST client they act through.
type actor struct {
	user   *model.User
	client *model.Client4
}

var s *suite

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	var teardown []func()
	defer func() {
		for i := len(teardown) - 1; i >= 0; i-- {
			teardown[i]()
		}
	}()
	interrupted, stop := interruptContext()
	defer stop()
	logDir, err := setUp(interrupted, &teardown)
	if logDir != "" {
		logf("logs of this run (server, host, PostgreSQL, mock model): %s", logDir)
	}
	if err != nil {
		logf("setup failed: %v", err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		logf("FAILED; the server log (with the codex-host: lines) is %s", filepath.Join(logDir, "mattermost.log"))
	}
	return code
}

func requireEnv(name string) (string, error) {
	v := os.Getenv(name)
	if v == "" {
		return "", fmt.Errorf("%s is not set; run the suite with `make e2e`", name)
	}
	return filepath.Abs(v)
}

// setUp starts every peer and installs the plugin; teardown steps are appended as they become due.
func setUp(interrupted context.Context, teardown *[]func()) (logDir string, err error) {
	ctx, cancel := context.WithTimeout(interrupted, 60*time.Minute)
	defer cancel()
	bundle, err := requireEnv("CODEX_MM_BUNDLE")
	if err != nil {
		return "", err
	}
	codex, err := requireEnv("CODEX_MM_CODEX")
	if err != nil {
		return "", err
	}
	testkit, err := requireEnv("CODEX_MM_TESTKIT")
	if err != nil {
		return "", err
	}
	logDir = os.Getenv("CODEX_MM_E2E_LOGS")
	if logDir == "" {
		logDir, err = os.MkdirTemp("", "codex-mm-e2e-logs-")
		if err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return "", err
	}
	cacheDir := os.Getenv("CODEX_MM_E2E_CACHE")
	if cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return logDir, err
		}
		cacheDir = filepath.Join(base, "codex-mm-e2e")
	}

	// Short, traversable by the postgres user, outside the repository; removed at the end.
	work, err := os.MkdirTemp("", "cmm-e2e-")
	if err != nil {
		return logDir, err
	}
	if err := os.Chmod(work, 0o755); err != nil {
		return logDir, err
	}
	*teardown = append(*teardown, func() { _ = os.RemoveAll(work) })
	s = &suite{workDir: work, bundle: bundle, interrupted: interrupted}

	build, err := buildMattermost(ctx, cacheDir)
	if err != nil {
		return logDir, err
	}

	logf("starting PostgreSQL")
	dsn, query, stopPG, err := startPostgres(ctx, filepath.Join(work, "pg"), filepath.Join(logDir, "postgres.log"))
	if err != nil {
		return logDir, err
	}
	*teardown = append(*teardown, stopPG)
	s.sql = query

	modelAddr, stopModel, err := startMockModel(ctx, testkit, work, filepath.Join(logDir, "mock-model.log"))
	if err != nil {
		return logDir, err
	}
	*teardown = append(*teardown, stopModel)
	s.modelAddr = modelAddr
	if s.codexConfig, err = codexConfig(testkit, modelAddr); err != nil {
		return logDir, err
	}

	logf("starting Mattermost %s", build.Version)
	// The managed host inherits the server's environment (minus MM_*), and Codex the host's: the
	// mock provider's env_key must be set there.
	server, stopMM, err := startMattermost(ctx, build, filepath.Join(work, "mm"), logDir, dsn, []string{"MOCK_API_KEY=e2e-mock-key"})
	if err != nil {
		return logDir, err
	}
	*teardown = append(*teardown, func() {
		logf("stopping Mattermost")
		stopMM()
		if pids := hostPIDs(server.PluginsDir, pluginID); len(pids) > 0 {
			logf("codex-host still running after the server stopped (pids %v); killing it", pids)
			for _, pid := range pids {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			}
		}
	})
	s.server = server
	logf("Mattermost is up at %s", server.URL)

	if err := s.createPeople(ctx); err != nil {
		return logDir, fmt.Errorf("creating users, team and channels: %w", err)
	}
	if err := s.installPlugin(ctx, bundle, codex); err != nil {
		return logDir, fmt.Errorf("installing the plugin: %w", err)
	}
	logf("plugin running, codex-host answering; setup done")
	return logDir, nil
}

// createPeople makes the first user (who becomes system admin), alice (allowed), bob (not
// allowed), carol (the approver), the team and its channels.
func (s *suite) createPeople(ctx context.Context) error {
	var err error
	if s.admin, err = s.signUp(ctx, nil, "admin"); err != nil {
		return err
	}
	if !strings.Contains(s.admin.user.Roles, model.SystemAdminRoleId) {
		return fmt.Errorf("the first user should be a system admin, has roles %q", s.admin.user.Roles)
	}
	for _, p := range []struct {
		a    **actor
		name string
	}{{&s.alice, "alice"}, {&s.bob, "bob"}, {&s.carol, "carol"}} {
		if *p.a, err = s.signUp(ctx, s.admin, p.name); err != nil {
			return err
		}
	}
	s.team, _, err = s.admin.client.CreateTeam(ctx, &model.Team{Name: teamName, DisplayName: "Engineering", Type: model.TeamOpen})
	if err != nil {
		return err
	}
	for _, a := range []*actor{s.alice, s.bob, s.carol} {
		if _, _, err := s.admin.client.AddTeamMember(ctx, s.team.Id, a.user.Id); err != nil {
			return err
		}
	}
	mk := func(name string, typ model.ChannelType) (*model.Channel, error) {
		ch, _, err := s.admin.client.CreateChannel(ctx, &model.Channel{TeamId: s.team.Id, Name: name, DisplayName: name, Type: typ})
		if err != nil {
			return nil, err
		}
		for _, a := range []*actor{s.alice, s.bob, s.carol} {
			if _, _, err := s.admin.client.AddChannelMember(ctx, ch.Id, a.user.Id); err != nil {
				return nil, err
			}
		}
		return ch, nil
	}
	if s.public, err = mk("codex", model.ChannelTypeOpen); err != nil {
		return err
	}
	if s.private, err = mk("codex-private", model.ChannelTypePrivate); err != nil {
		return err
	}
	s.offList, err = mk("random", model.ChannelTypeOpen)
	return err
}

// signUp creates a user (through by's client, or anonymously for the first user) and logs in.
func (s *suite) signUp(ctx context.Context, by *actor, name string) (*actor, error) {
	creator := model.NewAPIv4Client(s.server.URL)
	if by != nil {
		creator = by.client
	}
	if _, _, err := creator.CreateUser(ctx, &model.User{Username: name, Email: name + "@e2e.example.com", Password: password}); err != nil {
		return nil, fmt.Errorf("creating %s: %w", name, err)
	}
	c := model.NewAPIv4Client(s.server.URL)
	u, _, err := c.Login(ctx, name, password)
	if err != nil {
		return nil, fmt.Errorf("logging in as %s: %w", name, err)
	}
	return &actor{user: u, client: c}, nil
}

// installPlugin uploads the bundle as System Console does, writes the settings through the config
// API, enables the plugin and waits until it runs and its managed codex-host answers.
func (s *suite) installPlugin(ctx context.Context, bundle, codex string) error {
	f, err := os.Open(bundle)
	if err != nil {
		return err
	}
	manifest, _, err := s.admin.client.UploadPluginForced(ctx, f)
	f.Close()
	if err != nil {
		return fmt.Errorf("POST /api/v4/plugins: %w", err)
	}
	if manifest.Id != pluginID {
		return fmt.Errorf("uploaded bundle has id %q, want %q", manifest.Id, pluginID)
	}

	repo := filepath.Join(s.workDir, "repos", "demo")
	codexHome := filepath.Join(s.workDir, "codex-home")
	for _, d := range []string{repo, codexHome} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(repo, "README.md"), []byte("demo project for the e2e suite\n"), 0o644); err != nil {
		return err
	}
	if demoMode() {
		if err := initDemoRepo(repo); err != nil {
			return err
		}
	}
	s.settings = map[string]any{
		"hostmode":              "managed",
		"mattermosturl":         s.server.URL,
		"allowedusers":          "admin, alice",
		"allowedchannels":       teamName + "/codex, " + teamName + "/codex-private",
		"allowedteams":          "",
		"projects":              "demo = " + repo,
		"defaultproject":        "demo",
		"codexpath":             codex,
		"codexhome":             codexHome,
		"codexconfig":           s.codexConfig,
		"codexenv":              "MOCK_API_KEY",
		"defaultsandbox":        "read-only",
		"model":                 "gpt-5.5",
		"runtimeoutminutes":     5,
		"maxconcurrentruns":     2,
		"queuelimit":            20,
		"threadrepliescontinue": true,
	}
	if demoMode() {
		if err := demoCodexSettings(s.settings); err != nil {
			return err
		}
	}
	if err := s.writeSettings(ctx); err != nil {
		return err
	}
	if _, err := s.admin.client.EnablePlugin(ctx, pluginID); err != nil {
		return fmt.Errorf("enabling the plugin: %w", err)
	}
	if err := s.waitPluginRunning(ctx); err != nil {
		return err
	}
	bot, _, err := s.admin.client.GetUserByUsername(ctx, "codex", "")
	if err != nil {
		return fmt.Errorf("the plugin should have created the @codex bot: %w", err)
	}
	if !bot.IsBot {
		return errors.New("@codex is not a bot account")
	}
	s.botID = bot.Id
	return s.waitHostAnswering(ctx)
}

// writeSettings stores the plugin's settings with PATCH /api/v4/config/patch.
func (s *suite) writeSettings(ctx context.Context) error {
	patch := &model.Config{}
	patch.PluginSettings.Plugins = map[string]map[string]any{pluginID: s.settings}
	if _, _, err := s.admin.client.PatchConfig(ctx, patch); err != nil {
		return fmt.Errorf("PATCH /api/v4/config/patch: %w", err)
	}
	return nil
}

func (s *suite) waitPluginRunning(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		statuses, _, err := s.admin.client.GetPluginStatuses(ctx)
		if err == nil {
			for _, st := range statuses {
				if st.PluginId == pluginID {
					if st.State == model.PluginStateRunning {
						return nil
					}
					last = fmt.Sprintf("state %d: %s", st.State, st.Error)
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("the plugin did not report running within 2 minutes (%s)", last)
}

// waitHostAnswering waits until `/codex help` gets the host's answer rather than the plugin's
// "not available" message: the managed host is up and has taken the settings.
func (s *suite) waitHostAnswering(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		resp, err := s.command(ctx, s.admin, s.public, "", "/codex help")
		if err == nil && resp.Text != "" && !strings.Contains(resp.Text, "not available right now") {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = resp.Text
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("codex-host did not answer /codex help within 2 minutes; last answer: %s", last)
}

// codexConfig asks codex-testkit for the Codex config lines that point Codex at the mock model:
// the one list every suite uses (codex_testkit::codex::config_overrides).
func codexConfig(testkit, modelAddr string) (string, error) {
	out, err := exec.Command(testkit, "codex-config", "--base-url", "http://"+modelAddr+"/v1").Output()
	if err != nil {
		return "", fmt.Errorf("codex-testkit codex-config: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}
