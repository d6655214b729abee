package e2e

// The processes the suite runs: the Mattermost server built from its Go module, a throwaway
// PostgreSQL cluster, and the testkit's mock model. Each start function returns a stop function;
// every child gets SIGKILL if the test binary dies without tearing down (Pdeathsig).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// mattermostModule is the server module the wrapper in mmserver/ pins.
const mattermostModule = "github.com/mattermost/mattermost/server/v8"

// logf reports setup progress on stderr with the time since the suite started.
var suiteStart = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2e [%6.1fs] %s\n", time.Since(suiteStart).Seconds(), fmt.Sprintf(format, args...))
}

// childAttr kills a child when the test binary dies, and optionally runs it as another user.
func childAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: cred}
}

// run runs a command to completion, returning its combined output in the error.
func run(ctx context.Context, dir string, env []string, cred *syscall.Credential, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.SysProcAttr = childAttr(cred)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return out, nil
}

// stopProcess asks a child to stop with sig, and kills it after grace.
func stopProcess(cmd *exec.Cmd, waited <-chan struct{}, sig os.Signal, grace time.Duration) {
	if cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-waited:
	case <-time.After(grace):
		logf("%s did not stop within %s; killing it", filepath.Base(cmd.Path), grace)
		_ = cmd.Process.Kill()
		<-waited
	}
}

// startLogged starts cmd with stdout and stderr appended to logPath; the channel closes on exit.
func startLogged(cmd *exec.Cmd, logPath string) (<-chan struct{}, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	waited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(waited)
	}()
	return waited, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ---------------------------------------------------------------------------------------------
// Mattermost server binary

// mattermostBuild is the server binary for the version mmserver/go.mod pins, and the module's
// directory in the Go module cache, where the server finds i18n/, templates/ and fonts/.
type mattermostBuild struct {
	Version   string
	Binary    string
	ServerDir string
}

// buildMattermost downloads the server module and builds it once per version into cacheDir.
func buildMattermost(ctx context.Context, cacheDir string) (*mattermostBuild, error) {
	wrapper, err := filepath.Abs("mmserver")
	if err != nil {
		return nil, err
	}
	started := time.Now()
	out, err := run(ctx, wrapper, os.Environ(), nil, "go", "mod", "download", "-json", mattermostModule)
	if err != nil {
		return nil, fmt.Errorf("downloading the Mattermost server module: %w", err)
	}
	var mod struct{ Version, Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return nil, fmt.Errorf("go mod download gave no module directory (%v): %s", err, out)
	}
	b := &mattermostBuild{Version: mod.Version, ServerDir: mod.Dir, Binary: filepath.Join(cacheDir, "mattermost-"+mod.Version)}
	if _, err := os.Stat(b.Binary); err == nil {
		logf("Mattermost %s: cached binary %s", b.Version, b.Binary)
		return b, nil
	}
	logf("Mattermost %s: building the server (cold: several minutes) into %s", b.Version, b.Binary)
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", b.Binary, os.Getpid())
	defer os.Remove(tmp)
	if _, err := run(ctx, wrapper, os.Environ(), nil, "go", "build", "-trimpath", "-o", tmp, "."); err != nil {
		return nil, fmt.Errorf("building the Mattermost server: %w", err)
	}
	if err := os.Rename(tmp, b.Binary); err != nil {
		return nil, err
	}
	logf("Mattermost %s: built in %s", b.Version, time.Since(started).Round(time.Second))
	return b, nil
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

// postgresBinDir finds PostgreSQL's server binaries, installing Debian's packages if there are none.
func postgresBinDir(ctx context.Context) (string, error) {
	find := func() string {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
				return d
			}
		}
		if p, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p)
		}
		return ""
	}
	if d := find(); d != "" {
		return d, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("PostgreSQL is not installed and this is not root: install it (Debian: apt-get install postgresql) and run again")
	}
	logf("PostgreSQL not found; installing it from Debian packages")
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if _, err := run(ctx, "/", env, nil, "apt-get", "update"); err != nil {
		return "", err
	}
	if _, err := run(ctx, "/", env, nil, "apt-get", "install", "-y", "--no-install-recommends", "postgresql"); err != nil {
		return "", err
	}
	if d := find(); d != "" {
		return d, nil
	}
	return "", errors.New("installed the postgresql package but found no initdb under /usr/lib/postgresql/*/bin")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// postgresCredential runs PostgreSQL as the `postgres` user when we are root (it refuses root).
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres OS user (from the postgresql package): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// sqlQuery runs one statement on Mattermost's database as PostgreSQL's superuser and returns its
// rows, one a line, columns separated by '|'. Only for reading what the server keeps from clients.
type sqlQuery func(ctx context.Context, sql string) (string, error)

// startPostgres initialises a cluster in dir, serves it on a free loopback port and creates the
// database Mattermost uses; it returns Mattermost's data source and a way to query that database.
func startPostgres(ctx context.Context, dir, logPath string) (dsn string, query sqlQuery, stop func(), err error) {
	bin, err := postgresBinDir(ctx)
	if err != nil {
		return "", nil, nil, err
	}
	cred, err := postgresCredential()
	if err != nil {
		return "", nil, nil, err
	}
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, d := range []string{dir, data, sock} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", nil, nil, err
		}
		if cred != nil {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				return "", nil, nil, err
			}
		}
	}
	env := []string{"PATH=" + bin + ":/usr/bin:/bin", "LANG=C", "LC_ALL=C"}
	if _, err := run(ctx, dir, env, cred, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		return "", nil, nil, err
	}
	port, err := freePort()
	if err != nil {
		return "", nil, nil, err
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", sock, "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	cmd.Dir, cmd.Env, cmd.SysProcAttr = dir, env, childAttr(cred)
	waited, err := startLogged(cmd, logPath)
	if err != nil {
		return "", nil, nil, err
	}
	stop = func() { stopProcess(cmd, waited, syscall.SIGINT, 30*time.Second) }

	psql := func(sql string) error {
		_, err := run(ctx, dir, env, nil, filepath.Join(bin, "psql"), "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql)
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err = psql("SELECT 1"); err == nil {
			break
		}
		select {
		case <-waited:
			stop()
			return "", nil, nil, fmt.Errorf("PostgreSQL exited during startup; see %s", logPath)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, nil, fmt.Errorf("PostgreSQL did not accept connections within 60s (%v); see %s", err, logPath)
		}
	}
	for _, sql := range []string{"CREATE ROLE mmuser LOGIN PASSWORD 'mmuser-e2e'", "CREATE DATABASE mattermost OWNER mmuser"} {
		if err := psql(sql); err != nil {
			stop()
			return "", nil, nil, err
		}
	}
	query = func(ctx context.Context, sql string) (string, error) {
		out, err := run(ctx, dir, env, nil, filepath.Join(bin, "psql"), "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "-d", "mattermost", "-v", "ON_ERROR_STOP=1", "-XAtqc", sql)
		return strings.TrimSpace(string(out)), err
	}
	return fmt.Sprintf("postgres://mmuser:mmuser-e2e@127.0.0.1:%d/mattermost?sslmode=disable&connect_timeout=10", port), query, stop, nil
}

// ---------------------------------------------------------------------------------------------
// Mattermost server

// mattermostServer is a running server: its URL and where its files and logs are.
type mattermostServer struct {
	URL        string
	PluginsDir string
	LogDir     string
	// MetricsURL is the server's metrics listener (System Console > Performance Monitoring),
	// where plugins' ServeMetrics answers under /plugins/<id>/metrics.
	MetricsURL string
}

// startMattermost runs the server on a free loopback port, configured entirely through MM_*
// environment settings on top of a fresh config file, and waits for /api/v4/system/ping.
// extraEnv reaches the plugin processes and, through them, the managed codex-host.
func startMattermost(ctx context.Context, b *mattermostBuild, dir, logDir, dsn string, extraEnv []string) (*mattermostServer, func(), error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	listen, siteURL := fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.1:%d", port)
	if demoMode() {
		listen, siteURL = demoListen()
	}
	metricsPort, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	s := &mattermostServer{
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d", metricsPort),
		URL:        siteURL,
		PluginsDir: filepath.Join(dir, "plugins"),
		LogDir:     logDir,
	}
	for _, d := range []string{s.PluginsDir, filepath.Join(dir, "client", "plugins"), filepath.Join(dir, "data"), filepath.Join(dir, "config")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, nil, err
		}
	}
	settings := map[string]string{
		"MM_SERVER_PATH":                                       b.ServerDir,
		"MM_SQLSETTINGS_DRIVERNAME":                            "postgres",
		"MM_SQLSETTINGS_DATASOURCE":                            dsn,
		"MM_SERVICESETTINGS_LISTENADDRESS":                     listen,
		"MM_SERVICESETTINGS_SITEURL":                           s.URL,
		"MM_SERVICESETTINGS_ENABLELOCALMODE":                   "true",
		"MM_SERVICESETTINGS_LOCALMODESOCKETLOCATION":           filepath.Join(dir, "mattermost_local.socket"),
		"MM_SERVICESETTINGS_ENABLEBOTACCOUNTCREATION":          "true",
		"MM_SERVICESETTINGS_ENABLESECURITYFIXALERT":            "false",
		"MM_SERVICESETTINGS_ENABLEINSECUREOUTGOINGCONNECTIONS": "false",
		"MM_TEAMSETTINGS_ENABLEOPENSERVER":                     "true",
		"MM_PLUGINSETTINGS_ENABLE":                             "true",
		"MM_PLUGINSETTINGS_ENABLEUPLOADS":                      "true",
		"MM_PLUGINSETTINGS_REQUIREPLUGINSIGNATURE":             "false",
		"MM_PLUGINSETTINGS_ENABLEMARKETPLACE":                  "false",
		"MM_PLUGINSETTINGS_ENABLEREMOTEMARKETPLACE":            "false",
		"MM_PLUGINSETTINGS_AUTOMATICPREPACKAGEDPLUGINS":        "false",
		"MM_PLUGINSETTINGS_DIRECTORY":                          s.PluginsDir,
		"MM_PLUGINSETTINGS_CLIENTDIRECTORY":                    filepath.Join(dir, "client", "plugins"),
		"MM_FILESETTINGS_DIRECTORY":                            filepath.Join(dir, "data"),
		"MM_EMAILSETTINGS_SENDEMAILNOTIFICATIONS":              "false",
		"MM_EMAILSETTINGS_REQUIREEMAILVERIFICATION":            "false",
		"MM_RATELIMITSETTINGS_ENABLE":                          "false",
		"MM_METRICSSETTINGS_ENABLE":                            "true",
		"MM_METRICSSETTINGS_LISTENADDRESS":                     fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"MM_LOGSETTINGS_ENABLEDIAGNOSTICS":                     "false",
		"MM_LOGSETTINGS_ENABLECONSOLE":                         "true",
		"MM_LOGSETTINGS_CONSOLELEVEL":                          "ERROR",
		"MM_LOGSETTINGS_ENABLEFILE":                            "true",
		"MM_LOGSETTINGS_FILELEVEL":                             "DEBUG",
		"MM_LOGSETTINGS_FILEJSON":                              "true",
		"MM_LOGSETTINGS_FILELOCATION":                          logDir,
		"MM_NOTIFICATIONLOGSETTINGS_FILELOCATION":              logDir,
	}
	env := withoutMMSettings(os.Environ())
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	env = append(env, extraEnv...)
	cmd := exec.Command(b.Binary, "server", "--config", filepath.Join(dir, "config", "config.json"))
	// The server looks for i18n/, templates/ and fonts/ in its working directory (this version has
	// no MM_SERVER_PATH, and a -trimpath build cannot find its own sources): run it in the module's
	// read-only directory; everything it writes goes to the absolute paths configured above.
	cmd.Dir, cmd.Env, cmd.SysProcAttr = b.ServerDir, env, childAttr(nil)
	waited, err := startLogged(cmd, filepath.Join(logDir, "mattermost.stdout.log"))
	if err != nil {
		return nil, nil, err
	}
	stop := func() { stopProcess(cmd, waited, syscall.SIGTERM, 60*time.Second) }

	deadline := time.Now().Add(5 * time.Minute) // the first start migrates an empty database
	for {
		resp, err := http.Get(s.URL + "/api/v4/system/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, stop, nil
			}
		}
		select {
		case <-waited:
			return nil, nil, fmt.Errorf("the Mattermost server exited during startup; see %s", logDir)
		case <-ctx.Done():
			stop()
			return nil, nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("the Mattermost server did not answer /api/v4/system/ping within 5 minutes; see %s", logDir)
		}
	}
}

// withoutMMSettings drops MM_* variables of the calling environment so that only the suite's
// settings configure the server.
func withoutMMSettings(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "MM_") {
			out = append(out, kv)
		}
	}
	return out
}

// ---------------------------------------------------------------------------------------------
// Mock model

// startMockModel runs `codex-testkit mock-model` on a free loopback port.
func startMockModel(ctx context.Context, testkit, dir, logPath string) (addr string, stop func(), err error) {
	addrFile := filepath.Join(dir, "model.addr")
	cmd := exec.Command(testkit, "mock-model", "--listen", "127.0.0.1:0", "--addr-file", addrFile)
	cmd.SysProcAttr = childAttr(nil)
	waited, err := startLogged(cmd, logPath)
	if err != nil {
		return "", nil, err
	}
	stop = func() { stopProcess(cmd, waited, syscall.SIGTERM, 10*time.Second) }
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(addrFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return strings.TrimSpace(string(b)), stop, nil
		}
		select {
		case <-waited:
			return "", nil, fmt.Errorf("the mock model exited; see %s", logPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop()
	return "", nil, errors.New("the mock model wrote no address within 30s")
}

// ---------------------------------------------------------------------------------------------
// Managed codex-host

// hostPIDs lists the running processes whose executable is the bundle's codex-host.
func hostPIDs(pluginsDir, pluginID string) []int {
	want := filepath.Join(pluginsDir, pluginID, "server", "dist")
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || !strings.HasPrefix(exe, want+string(os.PathSeparator)+"codex-host-") {
			continue
		}
		if state, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); isZombie(state) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func isZombie(stat []byte) bool {
	// /proc/<pid>/stat: "pid (comm) S ..."; comm may contain spaces, so read after the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] == 'Z'
}

// serverLogLines returns the lines of the server's JSON log whose message contains substr.
func serverLogLines(logDir, substr string) []string {
	f, err := os.Open(filepath.Join(logDir, "mattermost.log"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), substr) {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}
