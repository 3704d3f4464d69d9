package api

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// maxSunPath is the longest path a unix socket address holds on Linux (sun_path is 108
// bytes with its NUL).
const maxSunPath = 107

// viaShortPath calls fn with a name for socket that fits a unix socket address: socket
// itself, or, when it is longer, /proc/self/fd/N/NAME through a descriptor of its
// folder, which Linux resolves like the folder. A bundle in a deep folder (its socket
// is run/starvisor.sock inside it) still gets its daemon, instead of "bind: invalid
// argument".
func viaShortPath(socket string, fn func(name string) error) error {
	if len(socket) <= maxSunPath {
		return fn(socket)
	}
	fd, err := unix.Open(filepath.Dir(socket), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket folder: %w", err)
	}
	defer unix.Close(fd)
	name := fmt.Sprintf("/proc/self/fd/%d/%s", fd, filepath.Base(socket))
	if len(name) > maxSunPath {
		return fmt.Errorf("socket %s: its file name is too long for a unix socket", socket)
	}
	return fn(name)
}

// Dial connects to the daemon socket (any length; see viaShortPath).
func Dial(ctx context.Context, socket string) (net.Conn, error) {
	var c net.Conn
	err := viaShortPath(socket, func(name string) (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, "unix", name)
		return err
	})
	return c, err
}

// Reach connects to socket and hangs up: nil when a daemon answers there, else why not,
// as a client's call would say it (a *NoDaemonError, a *ForeignDaemonError, ...).
func Reach(socket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := Dial(ctx, socket)
	if err != nil {
		return unreachable(socket, err)
	}
	c.Close()
	return nil
}

// Answers reports whether something accepts connections on the socket within a second.
func Answers(socket string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := Dial(ctx, socket)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
