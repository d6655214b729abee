package main

// The checks of the settings that look at this machine's files (configuration.go does no I/O):
// a socket in a world-writable directory such as /tmp or /var/tmp is refused, because any local
// user could create their own socket at that path before codex-host does, or replace it.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// checkedConfiguration parses the settings and then checks them against this machine.
func checkedConfiguration(raw map[string]any) (*configuration, error) {
	c, err := parseConfiguration(raw)
	if err != nil {
		return nil, err
	}
	if problem := socketDirProblem(c.SocketPath); problem != "" {
		return nil, &configError{problems: []string{manifestSettings.displayName("SocketPath") + ": " + problem}}
	}
	return c, nil
}

// socketDirProblem says why socket's directory is unsafe, or "" when it is not. A directory that
// does not exist yet is judged by its nearest existing ancestor, where it would be created.
func socketDirProblem(socket string) string {
	if socket == "" {
		return ""
	}
	dir := filepath.Dir(socket)
	for {
		info, err := os.Stat(dir)
		if err == nil {
			if info.Mode().Perm()&0o002 != 0 {
				return fmt.Sprintf("`%s` is in %s, which every local user may write to, so another user could put their own socket there. Use a directory that only codex-host's and the Mattermost server's OS users can write, such as /run/codex-host/host.sock (external mode), or leave Socket path empty in managed mode to use the plugin's data directory.", socket, dir)
			}
			return ""
		}
		if !errors.Is(err, fs.ErrNotExist) {
			// Not ours to judge (e.g. no permission to look); connecting will report it.
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
