package e2e

// Remote runners on the real server: two `codex-host connect` processes (the bundle's own
// binary, copied out as an admin would) serving different projects, reached only through the
// plugin's runner routes. Commands are routed by project, a reply continues on the right runner,
// buttons come back to it, and an offline runner gets a clear message.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runnerProc is one `codex-host connect` started by the test.
type runnerProc struct {
	name, dir, repo string
	cmd             *exec.Cmd
}

func (s *suite) addRunner(t *testing.T, name string) string {
	r := s.mustCommand(t, s.admin, s.public, "", "/codex runner add "+name)
	token := regexp.MustCompile("cxr\\.[a-z0-9-]+\\.[A-Za-z0-9_-]+").FindString(r.Text)
	require.NotEmpty(t, token, "no token in: %s", r.Text)
	t.Cleanup(func() { s.mustCommand(t, s.admin, s.public, "", "/codex runner remove "+name) })
	return token
}

func (s *suite) startRunner(t *testing.T, r *runnerProc, token string) {
	bin := filepath.Join(s.workDir, "runner-bin", "codex-host")
	policies := filepath.Join(s.workDir, "runner-bin", "policies")
	if _, err := os.Stat(bin); err != nil {
		require.NoError(t, os.MkdirAll(policies, 0o755))
		require.NoError(t, extractFromBundle(s.bundle, pluginID+"/server/dist/codex-host-linux-amd64", bin))
		require.NoError(t, os.Chmod(bin, 0o755))
		require.NoError(t, extractFromBundle(s.bundle, pluginID+"/policies/allowlist.wasm", filepath.Join(policies, "allowlist.wasm")))
	}
	tokenFile := filepath.Join(r.dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	log, err := os.OpenFile(filepath.Join(r.dir, "runner.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	r.cmd = exec.Command(bin, "connect", "--server", s.server.URL, "--token-file", tokenFile,
		"--state-dir", filepath.Join(r.dir, "state"), "--policy-dir", policies)
	r.cmd.Env = append(os.Environ(), "MOCK_API_KEY=e2e-mock-key")
	r.cmd.Stdout, r.cmd.Stderr = log, log
	require.NoError(t, r.cmd.Start())
	t.Cleanup(func() { r.stop() })
}

func (r *runnerProc) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

func (s *suite) newRunner(t *testing.T, name string) *runnerProc {
	dir := filepath.Join(s.workDir, "runners", name)
	repo := filepath.Join(dir, "repo")
	require.NoError(t, os.MkdirAll(repo, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(repo, "README.md"), []byte("served by "+name+"\n"), 0o644))
	return &runnerProc{name: name, dir: dir, repo: repo}
}

func (s *suite) waitRunnersOnline(t *testing.T, names ...string) {
	eventually(t, runTimeout, "the runners to connect", func() (string, bool, string) {
		r := s.mustCommand(t, s.admin, s.public, "", "/codex runner list")
		for _, n := range names {
			if !regexp.MustCompile("`" + n + "` \\| online \\|").MatchString(r.Text) {
				return r.Text, false, r.Text
			}
		}
		return r.Text, true, ""
	})
}

func TestRemoteRunners(t *testing.T) {
	ctx := context.Background()
	one, two := s.newRunner(t, "one"), s.newRunner(t, "two")

	// Only system admins manage runners.
	refused := s.mustCommand(t, s.alice, s.public, "", "/codex runner add sneaky")
	assert.Contains(t, refused.Text, "Only system admins")

	tokenOne, tokenTwo := s.addRunner(t, "one"), s.addRunner(t, "two")
	before := s.settings["projects"]
	s.settings["projects"] = fmt.Sprintf("%s\nalpha = %s ; runner=one ; sandbox=workspace-write\nbeta = %s ; runner=two ; sandbox=workspace-write", before, one.repo, two.repo)
	require.NoError(t, s.writeSettings(ctx))
	t.Cleanup(func() {
		s.mustCommand(t, s.alice, s.public, "", "/codex project demo")
		s.mustCommand(t, s.alice, s.private, "", "/codex project demo")
		s.settings["projects"] = before
		_ = s.writeSettings(context.Background())
	})

	// A runner that never connected: the user is told which runner and what to do.
	r, err := s.command(ctx, s.alice, s.public, "", "/codex project alpha")
	require.NoError(t, err)
	assert.Contains(t, r.Text, "runner one is offline", r.Text)
	assert.Contains(t, r.Text, "project alpha", "the command is given back")

	// A wrong token is refused: the process stops and says why.
	bad := s.newRunner(t, "bad")
	s.startRunner(t, bad, "cxr.one.not-the-token")
	done := make(chan error, 1)
	go func() { done <- bad.cmd.Wait() }()
	select {
	case err := <-done:
		bad.cmd = nil
		assert.Error(t, err, "a runner with a wrong token must exit")
	case <-time.After(60 * time.Second):
		t.Fatal("a runner with a wrong token kept running")
	}
	logText, _ := os.ReadFile(filepath.Join(bad.dir, "runner.log"))
	assert.Contains(t, string(logText), "refused this runner's token")

	s.startRunner(t, one, tokenOne)
	s.startRunner(t, two, tokenTwo)
	s.waitRunnersOnline(t, "one", "two")

	// Routed by project: alpha's run edits runner one's repository, beta's runner two's.
	eventually(t, runTimeout, "runner one to take project alpha", func() (string, bool, string) {
		r := s.mustCommand(t, s.alice, s.public, "", "/codex project alpha")
		return r.Text, strings.Contains(r.Text, "is now `alpha`"), r.Text
	})
	s.mustCommand(t, s.alice, s.public, "", "/codex [[mock:patch]] add the greeting (e2e-runner-one)")
	root := s.botRoot(t, s.public, "e2e-runner-one")
	out := s.waitOutcome(t, root.Id, 1, runTimeout)
	assert.Equal(t, "answered", status(out), out.Message)
	assert.FileExists(t, filepath.Join(one.repo, "mock.txt"), "the run happened on runner one")
	assert.NoFileExists(t, filepath.Join(two.repo, "mock.txt"))

	// A reply continues the session on the same runner.
	s.reply(t, s.alice, s.public, root.Id, "[[mock:exec]] and check it (e2e-runner-reply)")
	second := s.waitOutcome(t, root.Id, 2, runTimeout)
	assert.Equal(t, "answered", status(second), second.Message)

	eventually(t, runTimeout, "runner two to take project beta", func() (string, bool, string) {
		r := s.mustCommand(t, s.alice, s.private, "", "/codex project beta")
		return r.Text, strings.Contains(r.Text, "is now `beta`"), r.Text
	})
	const slow = "[[mock:slow:90]] take your time (e2e-runner-two)"
	s.mustCommand(t, s.alice, s.private, "", "/codex "+slow)
	slowRoot := s.botRoot(t, s.private, "e2e-runner-two")
	progress := s.waitRunning(t, slowRoot.Id, 1)

	// Buttons come back to the runner that made them: Cancel stops runner two's run.
	_, err = press(s.alice, progress, "cancel")
	require.NoError(t, err)
	cancelled := s.waitOutcome(t, slowRoot.Id, 1, 60*time.Second)
	assert.Equal(t, "cancelled", status(cancelled), cancelled.Message)

	// Runner two is killed mid-run: its channel is told it is offline, not left waiting, while
	// runner one still works; back online, it reports the interrupted run, and Retry works.
	const crash = "[[mock:slow:6]] survive a crash (e2e-runner-kill)"
	s.mustCommand(t, s.alice, s.private, "", "/codex "+crash)
	crashRoot := s.botRoot(t, s.private, "e2e-runner-kill")
	s.waitRunning(t, crashRoot.Id, 1)
	two.stop()
	eventually(t, 60*time.Second, "runner two to be offline", func() (string, bool, string) {
		r, err := s.command(ctx, s.alice, s.private, "", "/codex status")
		if err != nil {
			return "", false, err.Error()
		}
		return r.Text, strings.Contains(r.Text, "runner two is offline"), r.Text
	})
	r = s.mustCommand(t, s.alice, s.public, "", "/codex status")
	assert.NotContains(t, r.Text, "offline", r.Text)

	s.startRunner(t, two, tokenTwo)
	s.waitRunnersOnline(t, "two")
	interrupted := s.waitOutcome(t, crashRoot.Id, 1, runTimeout)
	assert.Equal(t, "interrupted", status(interrupted), interrupted.Message)
	require.Contains(t, actionIDs(interrupted), "retry")
	_, err = press(s.alice, interrupted, "retry")
	require.NoError(t, err)
	retried := s.waitOutcome(t, crashRoot.Id, 2, runTimeout)
	assert.Equal(t, "answered", status(retried), retried.Message)
	assert.Contains(t, retried.Message, "Slow answer done.")
}
