//go:build !linux && !darwin

package main

import (
	"fmt"
	"net"
	"runtime"
)

// peerCredentials fails closed where the plugin cannot ask the kernel who is at the other end of
// the socket: without that, it would hand its secret to whoever listens there.
func peerCredentials(net.Conn) (peerCred, error) {
	return peerCred{}, fmt.Errorf("checking who listens on a Unix socket is not supported on %s, so the plugin does not talk to codex-host here; run Mattermost on Linux or macOS", runtime.GOOS)
}
