package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultsWhenNothingIsSet(t *testing.T) {
	c, err := parseConfiguration(map[string]any{})
	require.NoError(t, err)
	assert.Equal(t, hostModeManaged, c.HostMode)
	assert.Equal(t, "codex", c.CodexPath)
	assert.Equal(t, "workspace-write", c.DefaultSandbox)
	assert.Equal(t, 30.0, c.RunTimeoutMinutes)
	assert.Equal(t, 2, c.MaxConcurrentRuns)
	assert.Equal(t, 20, c.QueueLimit)
	assert.Equal(t, 12000, c.TranscriptBudgetChars)
	assert.True(t, c.ThreadRepliesContinue)
	assert.Equal(t, []string{}, c.AllowedUsers)
}

func TestParsesLowercasedKeysAndLooseTypes(t *testing.T) {
	// The server lower-cases plugin setting keys, and System Console has saved numbers as strings.
	c, err := parseConfiguration(map[string]any{
		"allowedusers":          "@alice, bob\ncarol",
		"allowedchannels":       "~town-square eng/backend",
		"maxconcurrentruns":     "4",
		"runtimeoutminutes":     7.5,
		"threadrepliescontinue": "false",
		"hostmode":              "External",
		"socketpath":            "/run/codex/host.sock",
		"hostsecret":            "s3cret",
		"mattermosturl":         "http://127.0.0.1:8065/",
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"alice", "bob", "carol"}, c.AllowedUsers)
	assert.Equal(t, []string{"town-square", "eng/backend"}, c.AllowedChannels)
	assert.Equal(t, 4, c.MaxConcurrentRuns)
	assert.Equal(t, 7.5, c.RunTimeoutMinutes)
	assert.False(t, c.ThreadRepliesContinue)
	assert.Equal(t, hostModeExternal, c.HostMode)
	assert.Equal(t, "http://127.0.0.1:8065", c.MattermostURL)

	s := c.hostSettings()
	assert.Equal(t, 4, s.MaxConcurrentRuns)
	assert.Equal(t, []string{"alice", "bob", "carol"}, s.AllowedUsers)
}

func TestReportsEveryProblemByItsSystemConsoleName(t *testing.T) {
	_, err := parseConfiguration(map[string]any{
		"HostMode":          "sideways",
		"MaxConcurrentRuns": "two",
		"QueueLimit":        2.5,
		"SocketPath":        "relative.sock",
		"MattermostURL":     "ftp://x",
		"PolicyDir":         "policies",
	})
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"Host mode: `sideways` is not a host mode; accepted: managed, external.",
		"Max concurrent runs: `two` is not a number.",
		"Queue limit: 2.5 is not a whole number.",
		"Socket path: `relative.sock` is not an absolute path.",
		"Mattermost URL for the host: `ftp://x` is not an http:// or https:// URL.",
		"Policy directory: `policies` is not an absolute path.",
	} {
		assert.Contains(t, msg, want)
	}
}

func TestExternalModeNeedsSocketAndSecret(t *testing.T) {
	_, err := parseConfiguration(map[string]any{"HostMode": "external"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Socket path: required in external mode")
	assert.Contains(t, err.Error(), "Host secret: required in external mode")
}

func TestSocketPathMustFitAUnixSocket(t *testing.T) {
	_, err := parseConfiguration(map[string]any{"SocketPath": "/" + strings.Repeat("x", 120)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Unix sockets accept at most 103")
}

func TestWebappStubRegistersThisPlugin(t *testing.T) {
	raw, err := os.ReadFile("../../webapp-stub/main.js")
	require.NoError(t, err)
	assert.Contains(t, string(raw), "'"+pluginID+"'")
	assert.Contains(t, string(raw), "window.registerPlugin(")
}

func TestAllowedBotIdsStayInThePlugin(t *testing.T) {
	c, err := parseConfiguration(map[string]any{"allowedbotids": "ci1, ci2\nci3"})
	require.NoError(t, err)
	assert.Equal(t, []string{"ci1", "ci2", "ci3"}, c.AllowedBotIDs)
	raw, err := json.Marshal(c.hostSettings())
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "ci1", "the host is not told: the plugin alone decides what it forwards")
}
