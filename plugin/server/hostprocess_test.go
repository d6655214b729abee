package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestHostLogLinesKeepLevelMessageAndFields(t *testing.T) {
	level, msg, kv := parseHostLogLine(`{"timestamp":"2025-11-21T00:00:00Z","level":"WARN","message":"run timed out","run_id":"r1","target":"codex_host::runner","span":{"name":"run","user":"alice","run_id":"r1"}}`)
	assert.Equal(t, "WARN", level)
	assert.Equal(t, "run timed out", msg)
	assert.Equal(t, []any{"run_id", "r1", "target", "codex_host::runner", "user", "alice"}, kv)

	level, msg, kv = parseHostLogLine(`{"level":"ERROR","fields":{"message":"socket gone","path":"/x"},"target":"codex_host"}`)
	assert.Equal(t, "ERROR", level)
	assert.Equal(t, "socket gone", msg)
	assert.Equal(t, []any{"path", "/x", "target", "codex_host"}, kv)

	level, msg, kv = parseHostLogLine("codex-host: error: --socket is required")
	assert.Equal(t, "INFO", level)
	assert.Equal(t, "codex-host: error: --socket is required", msg)
	assert.Nil(t, kv)
}

func TestHostEnvironmentDropsServerSettingsAndCarriesTheSecret(t *testing.T) {
	env := hostEnv([]string{"PATH=/usr/bin", "MM_SQLSETTINGS_DATASOURCE=postgres://u:p@db", "HOME=/opt/mattermost", "CODEX_HOST_SECRET=stale"}, "fresh")
	assert.Equal(t, []string{"PATH=/usr/bin", "HOME=/opt/mattermost", "CODEX_HOST_SECRET=fresh"}, env)
}

func TestHostCommandLine(t *testing.T) {
	hc := hostCommand{Binary: "/b/codex-host", Socket: "/d/h.sock", StateDir: "/d/state", PolicyDir: "/b/policies", Secret: "s"}
	assert.Equal(t, []string{"serve", "--socket", "/d/h.sock", "--state-dir", "/d/state", "--log-format", "json", "--policy-dir", "/b/policies"}, hc.args())
	assert.NotContains(t, hc.args(), "s", "the secret never goes on the command line")
}

func TestCodeBlockFenceOutgrowsTheText(t *testing.T) {
	assert.Equal(t, "```\nplain\n```", codeBlock("plain"))
	assert.Equal(t, "`````\na ```` b\n`````", codeBlock("a ```` b"))
}
