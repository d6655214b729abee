package main

// Who the plugin expects at the other end of the host's socket. The plugin sends the host secret
// with every request and the bot's access token with its settings, so it checks the listening
// process before a single byte is written: in managed mode it must be the codex-host process the
// plugin started, in external mode a process of the configured OS user. Anything else is refused
// with a *peerError that says what was expected, what was found and what to do.

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// pidSource gives the pid of the managed host process the plugin started (0: none running).
type pidSource interface {
	pid() int
}

// hostPeer is what the plugin requires of the process listening on the socket.
type hostPeer struct {
	mode string    // hostModeManaged or hostModeExternal
	uid  int       // the OS user the host must run as
	proc pidSource // managed mode: the process the plugin started; nil when none was started
}

// peerCred is what the kernel says about the process at the other end of a Unix socket.
type peerCred struct {
	pid, uid int
}

// peerError: the process on the socket is not the expected codex-host; nothing was sent to it.
type peerError struct {
	msg string
}

func (e *peerError) Error() string { return e.msg }

// verify checks the process at the other end of conn against p.
func (p hostPeer) verify(conn net.Conn, socket string) error {
	got, err := peerCredentials(conn)
	if err != nil {
		return &peerError{msg: fmt.Sprintf("could not check which process listens on %s, so nothing was sent to it: %v", socket, err)}
	}
	if p.mode == hostModeManaged {
		want := 0
		if p.proc != nil {
			want = p.proc.pid()
		}
		if want == 0 || got.pid != want || got.uid != p.uid {
			return &peerError{msg: fmt.Sprintf("the process listening on %s (pid %d, uid %d) is not the codex-host the plugin started (%s, uid %d), so nothing was sent to it. Another program has taken the managed host's socket: stop it, then disable and re-enable the plugin.",
				socket, got.pid, got.uid, describePid(want), p.uid)}
		}
		return nil
	}
	if got.uid != p.uid {
		return &peerError{msg: fmt.Sprintf("the process listening on %s (pid %d) runs as uid %d, but codex-host is expected to run as uid %d (setting Host OS user id (external mode)), so nothing was sent to it. If that process is your codex-host, set Host OS user id (external mode) to %d; otherwise find out who started it, stop it, and start codex-host there.",
			socket, got.pid, got.uid, p.uid, got.uid)}
	}
	return nil
}

func describePid(pid int) string {
	if pid == 0 {
		return "none is running right now"
	}
	return fmt.Sprintf("pid %d", pid)
}

// rawUnixConn gives access to a Unix socket connection's file descriptor.
func rawUnixConn(conn net.Conn) (syscall.RawConn, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, errors.New("not a Unix socket connection")
	}
	return uc.SyscallConn()
}
