package harness

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"debug/macho"
	"encoding/json"
	"io"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const pluginID = "com.github.codex-for-mattermost"

func requireEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set; run the harness with `make test-harness` (it builds the bundle, the Codex CLI and the testkit first)", name)
	}
	return v
}

type tarEntry struct {
	header *tar.Header
	data   []byte
}

func readBundle(t *testing.T, bundlePath string) map[string]tarEntry {
	t.Helper()
	f, err := os.Open(bundlePath)
	require.NoError(t, err)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	require.NoError(t, err, "the bundle must be a gzip-compressed tarball")
	tr := tar.NewReader(gz)
	entries := map[string]tarEntry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		entries[strings.TrimSuffix(path.Clean(h.Name), "/")] = tarEntry{h, data}
	}
	return entries
}

// TestBundleIsWhatMattermostAccepts checks the tarball as the server's upload does (one top-level
// folder named after the plugin id, a valid plugin.json) and that every file the manifest names
// is in it, executable and built for the platform it is named for.
func TestBundleIsWhatMattermostAccepts(t *testing.T) {
	entries := readBundle(t, requireEnv(t, "CODEX_MM_BUNDLE"))
	for name := range entries {
		assert.True(t, name == pluginID || strings.HasPrefix(name, pluginID+"/"), "%s is outside the top-level folder %s/", name, pluginID)
	}

	mf, ok := entries[pluginID+"/plugin.json"]
	require.True(t, ok, "the bundle has no %s/plugin.json", pluginID)
	var m model.Manifest
	require.NoError(t, json.Unmarshal(mf.data, &m))
	require.NoError(t, m.IsValid())
	assert.Equal(t, pluginID, m.Id)
	version, err := os.ReadFile("../../VERSION")
	require.NoError(t, err)
	assert.Equal(t, strings.TrimSpace(string(version)), m.Version, "the version is stamped from VERSION")

	// System Console shows the sections; servers before 10.x take defaults, and hide secrets, only
	// from the flat list: plugin.json carries every setting in both, the same way.
	require.NotNil(t, m.SettingsSchema)
	require.NotEmpty(t, m.SettingsSchema.Sections, "plugin.json groups the settings in sections")
	var inSections []model.PluginSetting
	for _, sec := range m.SettingsSchema.Sections {
		for _, setting := range sec.Settings {
			inSections = append(inSections, *setting)
		}
	}
	var flat []model.PluginSetting
	for _, setting := range m.SettingsSchema.Settings {
		flat = append(flat, *setting)
	}
	assert.Equal(t, inSections, flat, "plugin.json's settings_schema.settings lists the sections' settings")
	secret := false
	for _, setting := range flat {
		secret = secret || (setting.Key == "HostSecret" && setting.Secret)
	}
	assert.True(t, secret, "HostSecret is a secret setting in the flat list, so the server hides it")

	require.NotNil(t, m.Server)
	for _, platform := range []string{"linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"} {
		assert.Contains(t, m.Server.Executables, platform)
	}
	for platform, exe := range m.Server.Executables {
		e, ok := entries[path.Join(pluginID, exe)]
		if !assert.True(t, ok, "the manifest names %s for %s, but the bundle does not have it", exe, platform) {
			continue
		}
		assert.NotZero(t, e.header.Mode&0o100, "%s must be executable", exe)
		assertBinaryFor(t, exe, platform, e.data, false)
	}

	require.NotNil(t, m.Webapp)
	webapp, ok := entries[path.Join(pluginID, m.Webapp.BundlePath)]
	require.True(t, ok, "the manifest names %s, but the bundle does not have it", m.Webapp.BundlePath)
	assert.Contains(t, string(webapp.data), "window.registerPlugin(")
	assert.Contains(t, string(webapp.data), "'"+pluginID+"'")

	// System Console shows the plugin's icon from the bundle; Mattermost only accepts an SVG.
	require.NotEmpty(t, m.IconPath)
	icon, ok := entries[path.Join(pluginID, m.IconPath)]
	require.True(t, ok, "the manifest names the icon %s, but the bundle does not have it", m.IconPath)
	assert.True(t, strings.HasPrefix(strings.TrimSpace(string(icon.data)), "<svg"), "%s must be an SVG document", m.IconPath)
	assert.Equal(t, "https://github.com/codex-for-mattermost/codex-for-mattermost/blob/main/CHANGELOG.md", m.ReleaseNotesURL)

	hostTargets := strings.Fields(os.Getenv("CODEX_MM_HOST_TARGETS"))
	if len(hostTargets) == 0 {
		hostTargets = []string{"linux-amd64", "linux-arm64"}
	}
	for _, platform := range hostTargets {
		name := path.Join(pluginID, "server/dist/codex-host-"+platform)
		e, ok := entries[name]
		if !assert.True(t, ok, "the bundle has no codex-host for %s (%s)", platform, name) {
			continue
		}
		assert.NotZero(t, e.header.Mode&0o100, "%s must be executable", name)
		assertBinaryFor(t, name, platform, e.data, true)
	}
}

// assertBinaryFor checks the executable format and architecture; static requires a Linux binary
// without a dynamic loader, so it runs on any distribution.
func assertBinaryFor(t *testing.T, name, platform string, data []byte, static bool) {
	t.Helper()
	goos, goarch, _ := strings.Cut(platform, "-")
	switch goos {
	case "linux":
		f, err := elf.NewFile(bytes.NewReader(data))
		if !assert.NoError(t, err, "%s is not an ELF executable", name) {
			return
		}
		want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
		assert.Equal(t, want, f.Machine, "%s is built for the wrong architecture", name)
		if static {
			for _, p := range f.Progs {
				assert.NotEqual(t, elf.PT_INTERP, p.Type, "%s is dynamically linked; it must be static (musl) to run on any Linux", name)
			}
		}
	case "darwin":
		f, err := macho.NewFile(bytes.NewReader(data))
		if !assert.NoError(t, err, "%s is not a Mach-O executable", name) {
			return
		}
		want := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]
		assert.Equal(t, want, f.Cpu, "%s is built for the wrong architecture", name)
	default:
		t.Errorf("%s: unexpected platform %s", name, platform)
	}
}
