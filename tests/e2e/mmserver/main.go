// Command mattermost is the Mattermost server, built from its Go module for the end-to-end tests.
//
// Mattermost's own cmd/mattermost cannot be installed with `go install` (its go.mod carries
// replace lines), so this wrapper module requires a pinned pseudo-version of
// github.com/mattermost/mattermost/server/v8, copies those lines, and repeats its main package:
// the same blank imports register the slash commands, the GitLab OAuth provider and the
// enterprise stubs exactly as the official binary does.
package main

import (
	"os"

	_ "github.com/mattermost/mattermost/server/v8/channels/app/oauthproviders/gitlab"
	_ "github.com/mattermost/mattermost/server/v8/channels/app/slashcommands"
	"github.com/mattermost/mattermost/server/v8/cmd/mattermost/commands"
	_ "github.com/mattermost/mattermost/server/v8/enterprise"
)

func main() {
	if err := commands.Run(os.Args[1:]); err != nil {
		os.Exit(1)
	}
}
