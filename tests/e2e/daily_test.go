package e2e

// Daily use on the real server: @codex mentions, the plugin's Prometheus metrics, a branch per
// thread.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A channel-level @codex mention is a prompt: the mention post roots the thread and the bot
// answers there; a reply without a mention then continues that thread.
func TestMentionStartsAThreadOnThePost(t *testing.T) {
	post := s.reply(t, s.alice, s.private, "", "@codex [[mock:exec]] check the build")
	out := s.waitOutcome(t, post.Id, 1, runTimeout)
	assert.Equal(t, "answered", status(out), out.Message)
	assert.Equal(t, post.Id, out.RootId)
	assert.Contains(t, out.Message, "Ran the command.")

	s.reply(t, s.alice, s.private, post.Id, "[[mock:patch]] and add a file")
	second := s.waitOutcome(t, post.Id, 2, runTimeout)
	assert.NotEqual(t, runID(out), runID(second), "the reply started a second run in the same thread")
}

// ServeMetrics through the server's metrics listener: the host's counters as Prometheus text.
func TestMetricsThroughTheServersMetricsListener(t *testing.T) {
	post := s.reply(t, s.alice, s.private, "", "@codex [[mock:exec]] count this run")
	s.waitOutcome(t, post.Id, 1, runTimeout)

	url := s.server.MetricsURL + "/plugins/" + pluginID + "/metrics"
	text := eventually(t, runTimeout, "the plugin's metrics", func() (string, bool, string) {
		resp, err := http.Get(url)
		if err != nil {
			return "", false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body), resp.StatusCode == http.StatusOK && regexp.MustCompile(`codex_runs_total\{outcome="answered"\} [1-9]`).Match(body), resp.Status + "\n" + string(body)
	})
	assert.Contains(t, text, "codex_host_up 1\n")
	assert.Contains(t, text, "# TYPE codex_policy_decision_seconds histogram\n")
	count := regexp.MustCompile(`(?m)^codex_policy_decision_seconds_count (\d+)$`).FindStringSubmatch(text)
	require.Len(t, count, 2, text)
	n, _ := strconv.Atoi(count[1])
	assert.Positive(t, n, "the run was judged by the policy chain")
	assert.Regexp(t, `(?m)^codex_queue_depth \d+$`, text)

	// The listener has no authentication: nothing in it may be a secret.
	cfg, _, err := s.admin.client.GetConfig(context.Background())
	require.NoError(t, err)
	if secret, _ := cfg.PluginSettings.Plugins[pluginID]["hostsecret"].(string); secret != "" {
		assert.NotContains(t, text, secret)
	}
}

// A `worktree=on` project on the real server: the thread's run edits its own worktree on branch
// codex/<thread>, the project's checkout stays clean, `/codex worktree` shows it and removes it.
func TestABranchPerThread(t *testing.T) {
	repo := filepath.Join(s.workDir, "repos", "wt")
	require.NoError(t, os.MkdirAll(repo, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(repo, "README.md"), []byte("worktree e2e\n"), 0o644))
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"}, {"add", "."},
		{"-c", "user.name=e2e", "-c", "user.email=e2e@example.com", "commit", "-qm", "start"},
	} {
		out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
	}
	before := s.settings["projects"]
	s.settings["projects"] = fmt.Sprintf("%s\nwt = %s ; worktree=on ; sandbox=workspace-write", before, repo)
	require.NoError(t, s.writeSettings(context.Background()))
	t.Cleanup(func() {
		s.mustCommand(t, s.alice, s.public, "", "/codex project demo")
		s.settings["projects"] = before
		_ = s.writeSettings(context.Background())
	})
	eventually(t, runTimeout, "the host to take the wt project", func() (string, bool, string) {
		r := s.mustCommand(t, s.alice, s.public, "", "/codex project wt")
		return r.Text, strings.Contains(r.Text, "is now `wt`"), r.Text
	})

	s.mustCommand(t, s.alice, s.public, "", "/codex [[mock:patch]] add the greeting")
	root := s.botRoot(t, s.public, "add the greeting")
	out := s.waitOutcome(t, root.Id, 1, runTimeout)
	branch := "codex/" + root.Id[:8]
	assert.Contains(t, out.Message, "Branch `"+branch+"`", out.Message)
	_, err := os.Stat(filepath.Join(repo, "mock.txt"))
	assert.True(t, os.IsNotExist(err), "the project's own checkout is untouched")

	shown := s.mustCommand(t, s.alice, s.public, root.Id, "/codex worktree")
	assert.Contains(t, shown.Text, branch)
	refused := s.mustCommand(t, s.alice, s.public, root.Id, "/codex worktree remove")
	assert.Contains(t, refused.Text, "--force", "a worktree with uncommitted changes is not removed silently")
	removed := s.mustCommand(t, s.alice, s.public, root.Id, "/codex worktree remove --force")
	assert.Contains(t, removed.Text, "Removed this thread's worktree.", removed.Text)
	branches, err := exec.Command("git", "-C", repo, "branch", "--list", branch).Output()
	require.NoError(t, err)
	assert.Contains(t, string(branches), branch, "the branch and its commits stay")
}
