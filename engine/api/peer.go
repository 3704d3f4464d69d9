package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

type peerKey struct{}

type peer struct {
	cred *syscall.Ucred
	err  error
}

// withPeer reads the connecting process's credentials once per connection (SO_PEERCRED),
// so every request on it can be checked without another syscall.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	var p peer
	uc, ok := c.(*net.UnixConn)
	if !ok {
		p.err = errors.New("not a unix socket connection")
		return context.WithValue(ctx, peerKey{}, p)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		p.err = err
		return context.WithValue(ctx, peerKey{}, p)
	}
	if err := raw.Control(func(fd uintptr) {
		p.cred, p.err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		p.err = err
	}
	return context.WithValue(ctx, peerKey{}, p)
}

// checkPeer admits root and the daemon's own uid; the socket's 0600 mode already keeps
// others out, this is the second lock in case the mode or folder is loosened.
// peerPid is the pid of the client on ctx's connection, 0 when unknown.
func peerPid(ctx context.Context) int {
	if p, ok := ctx.Value(peerKey{}).(peer); ok && p.cred != nil {
		return int(p.cred.Pid)
	}
	return 0
}

func checkPeer(ctx context.Context) error {
	p, ok := ctx.Value(peerKey{}).(peer)
	if !ok || p.err != nil || p.cred == nil {
		return fmt.Errorf("permission denied: cannot read the caller's credentials: %v", p.err)
	}
	if p.cred.Uid == 0 || int(p.cred.Uid) == os.Getuid() {
		return nil
	}
	return fmt.Errorf("permission denied: uid %d may not control a daemon owned by uid %d", p.cred.Uid, os.Getuid())
}

// checkServer admits, for a client, a daemon run by the caller's own uid or by root (root
// admits any: it controls the daemons of every user). A socket another user made where the
// script or a lock file points would otherwise get the request, an apply's plan with
// the programs' environment included, and could answer with a forged status.
func checkServer(c net.Conn) error {
	if os.Geteuid() == 0 {
		return nil
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	if err := raw.Control(func(fd uintptr) {
		cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("cannot read the credentials of the process on the socket: %w", err)
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: the process listening there (pid %d) runs as uid %d, neither you (uid %d) nor root: nothing sent to it", ErrForeignSocket, cred.Pid, cred.Uid, os.Geteuid())
	}
	return nil
}

// ErrForeignSocket: the socket is served by another user's process.
var ErrForeignSocket = errors.New("not a daemon of yours")
