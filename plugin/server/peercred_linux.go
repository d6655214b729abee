package main

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerCredentials reads who is at the other end of a connected Unix socket (SO_PEERCRED: the
// process that called listen, as the kernel recorded it; the peer cannot forge it).
func peerCredentials(conn net.Conn) (peerCred, error) {
	raw, err := rawUnixConn(conn)
	if err != nil {
		return peerCred{}, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peerCred{}, err
	}
	if credErr != nil {
		return peerCred{}, credErr
	}
	return peerCred{pid: int(cred.Pid), uid: int(cred.Uid)}, nil
}
