package api

import (
	"net"
	"sync"
	"syscall"
)

// MaxConns bounds the connections the daemon serves at once, and an eighth of its
// open-files limit (a follow of all holds every log open): the next wait in the socket's
// backlog until one closes. Forty `logs -f` clients that never read held the daemon's
// descriptors until a crashed program could not be spawned again (too many open files):
// its programs come first.
var MaxConns = 256

// followLimit is how many logs the follows under way may hold open: a quarter of the
// open-files limit (a variable: tests set it).
var followLimit = func() int64 { return max(int64(openFilesLimit()/4), 8) }

// openFilesLimit is the daemon's soft open-files limit (1024 when it cannot be read).
func openFilesLimit() uint64 {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return 1024
	}
	return rl.Cur
}

// maxConns is MaxConns, within an eighth of the open-files limit.
func maxConns() int { return min(MaxConns, max(int(openFilesLimit()/8), 4)) }

// limited accepts at most n connections at a time from l.
func limited(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n)}
}

type limitListener struct {
	net.Listener
	slots chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, free: func() { <-l.slots }}, nil
}

// limitConn gives its slot back once, when it closes.
type limitConn struct {
	net.Conn
	free func()
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.free)
	return err
}
