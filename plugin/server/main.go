// Command plugin is the server half of Codex for Mattermost, started by the Mattermost server
// through its plugin RPC. It owns identity, transport and the host's lifecycle; codex-host does
// the rest (see docs/socket-contract.md).
package main

import (
	"github.com/mattermost/mattermost/server/public/plugin"
)

func main() {
	plugin.ClientMain(&Plugin{})
}
