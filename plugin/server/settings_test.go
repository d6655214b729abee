package main

// Drift tests for the settings: manifest.json defines them once, and these fail when the embedded
// copy, the configuration struct, the settings pushed to the host or the admin guide disagree
// with it. host/tests/settings.rs does the same for the host's Settings struct.

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pluginOnlySettings are the manifest settings the host is not given in settings: the plugin acts
// on them itself (MattermostURL reaches the host as the config push's mattermost_url).
var pluginOnlySettings = []string{"AllowedBotIds", "HostMode", "SocketPath", "HostSecret", "ExternalHostUID", "MattermostURL"}

func readManifest(t *testing.T) *model.Manifest {
	t.Helper()
	raw, err := os.ReadFile("../../manifest.json")
	require.NoError(t, err)
	var m model.Manifest
	require.NoError(t, json.Unmarshal(raw, &m))
	return &m
}

func TestEmbeddedCopiesAreCurrent(t *testing.T) {
	for embedded, source := range map[string]string{
		"embedded/manifest.json": "../../manifest.json",
		"embedded/commands.json": "../../contract/commands.json",
	} {
		want, err := os.ReadFile(source)
		require.NoError(t, err)
		got, err := os.ReadFile(embedded)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "plugin/server/%s differs from %s: run `go generate ./...` in plugin/", embedded, strings.TrimPrefix(source, "../../"))
	}
}

func TestManifestIsValidAndGrouped(t *testing.T) {
	m := readManifest(t)
	require.NoError(t, m.IsValid())
	assert.Equal(t, pluginID, m.Id)
	assert.Empty(t, m.SettingsSchema.Settings, "define each setting once, inside its section (the bundle's plugin.json gets the flat list from build/manifest)")
	var keys []string
	for _, sec := range m.SettingsSchema.Sections {
		keys = append(keys, sec.Key)
		assert.NotEmpty(t, sec.Title, "section %s needs a title", sec.Key)
		assert.NotEmpty(t, sec.Settings, "section %s has no settings", sec.Key)
		for _, s := range sec.Settings {
			assert.NotEmpty(t, s.HelpText, "setting %s needs help text", s.Key)
			assert.NotEmpty(t, s.DisplayName, "setting %s needs a display name", s.Key)
		}
	}
	assert.Equal(t, []string{"access", "projects", "runs", "host"}, keys)
}

// settingTypeKinds are the Go kinds a configuration field may have for each manifest type.
var settingTypeKinds = map[string][]reflect.Kind{
	"bool":      {reflect.Bool},
	"number":    {reflect.Int, reflect.Float64},
	"text":      {reflect.String, reflect.Slice},
	"longtext":  {reflect.String, reflect.Slice},
	"dropdown":  {reflect.String},
	"radio":     {reflect.String},
	"generated": {reflect.String},
}

func TestConfigurationStructMatchesManifest(t *testing.T) {
	typ := reflect.TypeOf(configuration{})
	fields := map[string]reflect.StructField{}
	for i := 0; i < typ.NumField(); i++ {
		fields[strings.ToLower(typ.Field(i).Name)] = typ.Field(i)
	}
	for key, s := range manifestSettings.byKey {
		f, ok := fields[strings.ToLower(key)]
		if !assert.True(t, ok, "manifest setting %s has no field in configuration (configuration.go)", key) {
			continue
		}
		delete(fields, strings.ToLower(key))
		kinds := settingTypeKinds[s.Type]
		if key == "ExternalHostUID" {
			kinds = []reflect.Kind{reflect.Int} // text, so that empty can mean unset
		}
		assert.Contains(t, kinds, f.Type.Kind(), "setting %s is a %s in the manifest but configuration.%s is a %s", key, s.Type, f.Name, f.Type)
	}
	for _, f := range fields {
		t.Errorf("configuration.%s is not a setting in manifest.json", f.Name)
	}
}

func TestManifestDefaultsAreTheCodeDefaults(t *testing.T) {
	defaults := map[string]any{}
	for key, s := range manifestSettings.byKey {
		defaults[key] = s.Default
	}
	fromManifest, err := parseConfiguration(defaults)
	require.NoError(t, err, "the manifest's defaults must be valid settings")
	fromNothing, err := parseConfiguration(map[string]any{})
	require.NoError(t, err)
	assert.Equal(t, fromManifest, fromNothing)
}

// snakeCase spells a manifest key as the contract does: RunTimeoutMinutes -> run_timeout_minutes,
// MattermostURL -> mattermost_url.
func snakeCase(key string) string {
	var b strings.Builder
	runes := []rune(key)
	for i, r := range runes {
		if unicode.IsUpper(r) && i > 0 && (unicode.IsLower(runes[i-1]) || (i+1 < len(runes) && unicode.IsLower(runes[i+1]))) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

func TestHostSettingsMatchManifest(t *testing.T) {
	c, err := parseConfiguration(map[string]any{})
	require.NoError(t, err)
	raw, err := json.Marshal(c.hostSettings())
	require.NoError(t, err)
	var pushed map[string]any
	require.NoError(t, json.Unmarshal(raw, &pushed))

	for key, s := range manifestSettings.byKey {
		if slices.Contains(pluginOnlySettings, key) {
			assert.NotContains(t, pushed, snakeCase(key), "%s is listed as plugin-only but is pushed to the host", key)
			continue
		}
		value, ok := pushed[snakeCase(key)]
		if !assert.True(t, ok, "manifest setting %s is neither pushed to the host as %s (HostSettings in contract.go) nor listed in pluginOnlySettings", key, snakeCase(key)) {
			continue
		}
		delete(pushed, snakeCase(key))
		want := s.Default
		if list, isList := value.([]any); isList && want == "" {
			want = []any{}
			value = list
		}
		assert.Equal(t, want, value, "the default pushed for %s is not the manifest's", key)
	}
	for key := range pushed {
		t.Errorf("HostSettings.%s is pushed to the host but is not a setting in manifest.json", key)
	}
}

func TestAdminGuideDocumentsEverySettingInItsSection(t *testing.T) {
	raw, err := os.ReadFile("../../docs/admin-guide.md")
	require.NoError(t, err)
	doc := string(raw)
	headings := regexp.MustCompile(`(?m)^#{2,3} .*$`)
	for _, sec := range manifestSettings.sections {
		heading := "### " + sec.Title
		start := strings.Index(doc, "\n"+heading+"\n")
		if !assert.True(t, start >= 0, "docs/admin-guide.md has no heading %q for the System Console section %s", heading, sec.Key) {
			continue
		}
		body := doc[start+len(heading)+2:]
		if next := headings.FindStringIndex(body); next != nil {
			body = body[:next[0]]
		}
		for _, s := range sec.Settings {
			assert.Contains(t, body, "| **"+s.DisplayName+"** |", "docs/admin-guide.md, %q: no table row for the setting %s", heading, s.Key)
		}
	}
}
