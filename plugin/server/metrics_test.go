package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetricsWithoutAHostSayItIsDown(t *testing.T) {
	var out bytes.Buffer
	writeMetrics(&out, nil, 3)
	text := out.String()
	assert.Contains(t, text, "codex_host_up 0\n")
	assert.Contains(t, text, "codex_host_restarts_total 3\n")
	assert.NotContains(t, text, "codex_runs_running", "no figures are made up while the host is away")
	assertExposition(t, text)
}

func TestMetricsFromTheHostsHealth(t *testing.T) {
	var h Health
	require.NoError(t, json.Unmarshal([]byte(`{
		"version": "x", "configured": true,
		"queue": {"running": 2, "queued": 5, "max_concurrent_runs": 2, "queue_limit": 20},
		"metrics": {
			"runs": {"succeeded": 7, "failed": 1, "cancelled": 2},
			"approvals_pending": 1,
			"policy_decision": {"bounds_seconds": [0.0001, 0.001, 0.01], "counts": [4, 3, 2, 1], "sum_seconds": 0.05}
		},
		"unknown": {"kept": "ignored"}
	}`), &h))
	var out bytes.Buffer
	writeMetrics(&out, &h, 0)
	text := out.String()
	for _, want := range []string{
		"codex_host_up 1\n",
		"codex_runs_running 2\n",
		"codex_queue_depth 5\n",
		"codex_approvals_pending 1\n",
		`codex_runs_total{outcome="cancelled"} 2` + "\n",
		`codex_runs_total{outcome="failed"} 1` + "\n",
		`codex_runs_total{outcome="succeeded"} 7` + "\n",
		// Buckets are cumulative, as Prometheus requires.
		`codex_policy_decision_seconds_bucket{le="0.0001"} 4` + "\n",
		`codex_policy_decision_seconds_bucket{le="0.001"} 7` + "\n",
		`codex_policy_decision_seconds_bucket{le="0.01"} 9` + "\n",
		`codex_policy_decision_seconds_bucket{le="+Inf"} 10` + "\n",
		"codex_policy_decision_seconds_sum 0.05\n",
		"codex_policy_decision_seconds_count 10\n",
		"# TYPE codex_policy_decision_seconds histogram\n",
		"# TYPE codex_runs_total counter\n",
	} {
		assert.Contains(t, text, want)
	}
	assertExposition(t, text)
}

func TestMetricsSkipAMalformedHistogram(t *testing.T) {
	var h Health
	h.Metrics.PolicyDecision.BoundsSeconds = []float64{0.001}
	h.Metrics.PolicyDecision.Counts = []uint64{1} // no +Inf bucket
	var out bytes.Buffer
	writeMetrics(&out, &h, 0)
	assert.NotContains(t, out.String(), "codex_policy_decision_seconds")
}

func TestMetricLabelsAreEscaped(t *testing.T) {
	assert.Equal(t, `{outcome="a\"b\\c\nd"}`, label("outcome", "a\"b\\c\nd"))
}

// assertExposition checks the text format's grammar: every sample line belongs to a family
// declared by # TYPE before it, and every family is declared once.
func assertExposition(t *testing.T, text string) {
	t.Helper()
	declared := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, kind, _ := strings.Cut(rest, " ")
			_, dup := declared[name]
			assert.False(t, dup, "family %s declared twice", name)
			declared[name] = kind
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		family := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && declared[base] == "histogram" {
				family = base
			}
		}
		assert.Contains(t, declared, family, "sample %q has no # TYPE line before it", line)
		fields := strings.Fields(line[strings.LastIndex(line, " "):])
		assert.Len(t, fields, 1, line)
	}
}
