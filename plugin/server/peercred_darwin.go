package main

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerCredentials reads who is at the other end of a connected Unix socket (LOCAL_PEERCRED for
// the uid, LOCAL_PEERPID for the pid; the kernel records both, the peer cannot forge them).
func peerCredentials(conn net.Conn) (peerCred, error) {
	raw, err := rawUnixConn(conn)
	if err != nil {
		return peerCred{}, err
	}
	var cred *unix.Xucred
	var pid int
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		if credErr == nil {
			pid, credErr = unix.GetsockoptInt(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERPID)
		}
	}); err != nil {
		return peerCred{}, err
	}
	if credErr != nil {
		return peerCred{}, credErr
	}
	return peerCred{pid: pid, uid: int(cred.Uid)}, nil
}
