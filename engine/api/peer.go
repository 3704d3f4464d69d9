package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
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
	if lc, ok := c.(*limitConn); ok {
		c = lc.Conn
	}
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

// checkServer admits, for a client, a daemon run by the caller's own uid or by root. A
// socket another user made where the script or a lock file points would otherwise get
// the request, an apply's plan with the programs' environment included, and could
// answer with a forged status. Root admits another user's daemon too (it controls those
// of every user), but only where no one else could have put its socket: in a folder of
// that user's (or root's) that others may not write. In a shared folder (/tmp), any
// user could have planted a listener at the name root's script gives.
func checkServer(c net.Conn, socket string, expect []uint32) error {
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
	if cred.Uid == 0 || int(cred.Uid) == os.Geteuid() {
		return nil
	}
	if os.Geteuid() == 0 {
		if len(expect) > 0 && !slices.Contains(expect, cred.Uid) {
			return fmt.Errorf("%w: the process listening there (pid %d) runs as uid %d, and the bundle's script is uid %d's: its daemon would be that user's or root's, nothing sent to it (--socket reaches it on purpose)", ErrForeignSocket, cred.Pid, cred.Uid, expect[0])
		}
		if why := plantable(socket, cred.Uid); why != "" {
			return fmt.Errorf("%w: the process listening there (pid %d) runs as uid %d, and %s: anyone could have put it there, nothing sent to it", ErrForeignSocket, cred.Pid, cred.Uid, why)
		}
		return nil
	}
	return fmt.Errorf("%w: the process listening there (pid %d) runs as uid %d, neither you (uid %d) nor root: nothing sent to it", ErrForeignSocket, cred.Pid, cred.Uid, os.Geteuid())
}

// plantable says why the socket at path might not be uid's own daemon's ("" when it is):
// the socket is not uid's, or its folder is neither uid's nor root's, or others may
// write in it.
func plantable(path string, uid uint32) string {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil || st.Uid != uid {
		return "the socket is not that user's"
	}
	dir := filepath.Dir(path)
	if err := syscall.Stat(dir, &st); err != nil {
		return "its folder cannot be read"
	}
	if st.Uid != uid && st.Uid != 0 || st.Mode&0o022 != 0 {
		return fmt.Sprintf("its folder %s is uid %d's, mode %#o", dir, st.Uid, st.Mode&0o7777)
	}
	return ""
}

// ErrForeignSocket: the socket is served by another user's process.
var ErrForeignSocket = errors.New("not a daemon of yours")
