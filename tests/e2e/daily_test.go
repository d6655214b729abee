package e2e

// Daily use on the real server: @codex mentions and the plugin's Prometheus metrics.

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
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
