package main

// ServeMetrics: Prometheus metrics for the server's metrics listener, at
// <MetricsSettings.ListenAddress>/plugins/<plugin id>/metrics (System Console > Environment >
// Performance Monitoring must be enabled). Everything but the plugin's own counters comes from
// codex-host's health answer, read at scrape time: the host is the one place that knows runs,
// queue and policy timings, and a scrape never sees figures older than the request.

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/mattermost/mattermost/server/public/plugin"
)

// managedHostRestarts counts unexpected exits of the managed codex-host since the plugin process
// started (one plugin process per server node, so a package counter is the plugin's counter).
var managedHostRestarts atomic.Uint64

func (p *Plugin) ServeMetrics(_ *plugin.Context, w http.ResponseWriter, r *http.Request) {
	var h *Health
	if st := p.state(); st != nil {
		// In a cluster, the host's figures from any node: the node running it answers.
		var got Health
		if callJSON(r.Context(), st.conn(""), timeoutHealth, http.MethodGet, routeHealth, nil, &got) == nil {
			h = &got
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	writeMetrics(w, h, managedHostRestarts.Load())
}

// writeMetrics writes the Prometheus text exposition format; h is nil when the host did not answer.
func writeMetrics(w io.Writer, h *Health, restarts uint64) {
	m := metricWriter{w: w}
	m.header("codex_host_up", "gauge", "1 when codex-host answered the plugin's health check during this scrape.")
	m.sample("codex_host_up", "", b2f(h != nil))
	m.header("codex_host_restarts_total", "counter", "Unexpected exits of the managed codex-host that the plugin restarted.")
	m.sample("codex_host_restarts_total", "", float64(restarts))
	if h == nil {
		return
	}
	m.header("codex_runs_running", "gauge", "Codex runs running now.")
	m.sample("codex_runs_running", "", float64(h.Queue.Running))
	m.header("codex_queue_depth", "gauge", "Accepted prompts waiting for a free run slot.")
	m.sample("codex_queue_depth", "", float64(h.Queue.Queued))
	m.header("codex_runs_max_concurrent", "gauge", "The Max concurrent runs setting.")
	m.sample("codex_runs_max_concurrent", "", float64(h.Queue.MaxConcurrentRuns))
	m.header("codex_approvals_pending", "gauge", "Runs waiting for approvers.")
	m.sample("codex_approvals_pending", "", float64(h.Metrics.ApprovalsPending))

	m.header("codex_runs_total", "counter", "Codex runs that ended since codex-host started, by outcome.")
	outcomes := make([]string, 0, len(h.Metrics.Runs))
	for k := range h.Metrics.Runs {
		outcomes = append(outcomes, k)
	}
	sort.Strings(outcomes)
	for _, k := range outcomes {
		m.sample("codex_runs_total", label("outcome", k), float64(h.Metrics.Runs[k]))
	}

	pd := h.Metrics.PolicyDecision
	if len(pd.Counts) == len(pd.BoundsSeconds)+1 {
		m.header("codex_policy_decision_seconds", "histogram", "Time the policy chain took per decision.")
		var cumulative uint64
		for i, le := range pd.BoundsSeconds {
			cumulative += pd.Counts[i]
			m.sample("codex_policy_decision_seconds_bucket", label("le", strconv.FormatFloat(le, 'g', -1, 64)), float64(cumulative))
		}
		cumulative += pd.Counts[len(pd.BoundsSeconds)]
		m.sample("codex_policy_decision_seconds_bucket", label("le", "+Inf"), float64(cumulative))
		m.sample("codex_policy_decision_seconds_sum", "", pd.SumSeconds)
		m.sample("codex_policy_decision_seconds_count", "", float64(cumulative))
	}
}

type metricWriter struct{ w io.Writer }

func (m metricWriter) header(name, kind, help string) {
	fmt.Fprintf(m.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
}

func (m metricWriter) sample(name, labels string, v float64) {
	fmt.Fprintf(m.w, "%s%s %s\n", name, labels, strconv.FormatFloat(v, 'g', -1, 64))
}

// label renders {k="v"} with the value escaped as the exposition format requires.
func label(k, v string) string {
	v = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
	return "{" + k + `="` + v + `"}`
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
