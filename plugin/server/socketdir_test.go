package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSocketsInWorldWritableDirectoriesAreRefused(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "shared")
	require.NoError(t, os.Mkdir(shared, 0o700))
	require.NoError(t, os.Chmod(shared, 0o1777)) // like /tmp
	private := filepath.Join(t.TempDir(), "private")
	require.NoError(t, os.Mkdir(private, 0o750))

	for _, socket := range []string{
		filepath.Join(shared, "host.sock"),
		filepath.Join(shared, "not-yet", "host.sock"), // would be created inside shared
	} {
		_, err := checkedConfiguration(map[string]any{"SocketPath": socket})
		require.Error(t, err, socket)
		assert.Contains(t, err.Error(), "Socket path: `"+socket+"` is in "+shared+", which every local user may write to")
		assert.Contains(t, err.Error(), "/run/codex-host/host.sock")
	}
	for _, socket := range []string{"", filepath.Join(private, "host.sock"), filepath.Join(private, "run", "host.sock")} {
		_, err := checkedConfiguration(map[string]any{"SocketPath": socket})
		assert.NoError(t, err, socket)
	}
}

func TestSavingASocketPathInTmpIsRefused(t *testing.T) {
	info, err := os.Stat(os.TempDir())
	if err != nil || info.Mode().Perm()&0o002 == 0 {
		t.Skip("the temporary directory here is not world-writable")
	}
	api := newTestAPI(t)
	p := &Plugin{}
	p.SetAPI(api)
	api.On("GetConfig").Return(&model.Config{})
	next := &model.Config{}
	socket := filepath.Join(os.TempDir(), "codex-host.sock")
	next.PluginSettings.Plugins = map[string]map[string]any{pluginID: {"hostmode": "external", "socketpath": socket, "hostsecret": "s"}}
	_, err = p.ConfigurationWillBeSaved(next)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Socket path: `"+socket+"`")
}
