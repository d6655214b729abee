package e2e

// `make demo`: the same stack the suite starts (a real Mattermost server, PostgreSQL, the bundle
// installed and enabled, users, a team, allowed channels and a demo project), kept running for a
// person to try from a browser, the desktop app or a phone until Ctrl-C, which tears it all down.
//
//	CODEX_MM_DEMO=1             demo mode: only TestDemo runs, and waits for Ctrl-C
//	CODEX_MM_DEMO_LISTEN        where the server listens (default 127.0.0.1:8065; 0.0.0.0:8065 for
//	                            phones on the same network)
//	CODEX_MM_DEMO_SITE_URL      the URL clients use (default http://<listen address>; set it to
//	                            http://<this machine's LAN address>:8065 with 0.0.0.0)
//	CODEX_MM_DEMO_CODEX=real    Codex uses your own login and model (CODEX_HOME, default
//	                            ~/.codex) instead of the mock model

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func demoMode() bool { return os.Getenv("CODEX_MM_DEMO") == "1" }

func demoRealCodex() bool { return os.Getenv("CODEX_MM_DEMO_CODEX") == "real" }

// demoListen returns the listen address and site URL of the demo server.
func demoListen() (listen, siteURL string) {
	listen = os.Getenv("CODEX_MM_DEMO_LISTEN")
	if listen == "" {
		listen = "127.0.0.1:8065"
	}
	siteURL = os.Getenv("CODEX_MM_DEMO_SITE_URL")
	if siteURL == "" {
		siteURL = "http://" + listen
	}
	return listen, strings.TrimRight(siteURL, "/")
}

// interruptContext ends on Ctrl-C (or SIGTERM) in demo mode; outside it, never.
func interruptContext() (context.Context, func()) {
	if !demoMode() {
		return context.WithCancel(context.Background())
	}
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// demoCodexSettings adapts the plugin's settings for a person trying it: the project may be
// edited, and with CODEX_MM_DEMO_CODEX=real Codex uses the person's own login and default model.
func demoCodexSettings(settings map[string]any) error {
	settings["defaultsandbox"] = "workspace-write"
	if !demoRealCodex() {
		return nil
	}
	home := os.Getenv("CODEX_HOME")
	if home == "" {
		userHome, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		home = filepath.Join(userHome, ".codex")
	}
	if _, err := os.Stat(filepath.Join(home, "auth.json")); err != nil {
		return fmt.Errorf("CODEX_MM_DEMO_CODEX=real needs a Codex login in %s (run `codex login` first, or set CODEX_HOME): %w", home, err)
	}
	settings["codexhome"] = home
	settings["codexconfig"] = ""
	settings["codexenv"] = ""
	settings["model"] = ""
	return nil
}

// initDemoRepo makes the demo project a git repository with one commit, as a real project is.
func initDemoRepo(repo string) error {
	if err := os.WriteFile(filepath.Join(repo, "hello.py"), []byte("def greet(name):\n    return \"Hello, \" + name\n"), 0o644); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"init", "-q"},
		{"add", "."},
		{"-c", "user.name=demo", "-c", "user.email=demo@example.com", "commit", "-qm", "demo project"},
	} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

func TestDemo(t *testing.T) {
	if !demoMode() {
		t.Skip("runs only under `make demo` (CODEX_MM_DEMO=1)")
	}
	codex := "the mock model (prompts like `[[mock:patch]] add a greeting file` make it edit files)"
	if demoRealCodex() {
		codex = "your own Codex login and model"
	}
	fmt.Printf(`
Codex for Mattermost is running.

  Open      %s   (browser, Mattermost desktop or mobile app)
  Log in    admin / %s   (system admin; alice may use Codex too, bob may not)
  Go to     team %q, channel ~codex (or ~codex-private)
  Type      /codex help    then    /codex add a greeting to hello.py
  Codex     %s
  Project   demo = %s
  Logs      %s

Press Ctrl-C to stop; everything started here is stopped and removed.
`, s.server.URL, password, teamName, codex, filepath.Join(s.workDir, "repos", "demo"), s.server.LogDir)
	<-s.interrupted.Done()
	fmt.Println("\nstopping the demo…")
}
