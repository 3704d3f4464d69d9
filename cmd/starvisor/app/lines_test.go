package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
	"golang.org/x/sys/unix"

	"github.com/starvisor/starvisor/engine/api"
)

// gatedWriter blocks every write until open is closed, like a pipe nobody reads.
type gatedWriter struct {
	open chan struct{}
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (g *gatedWriter) Write(b []byte) (int, error) {
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(b)
}

// A reader that stops reading stalls no printf; the backlog is bounded, and what did not
// fit is counted once the reader takes output again, in its place.
func TestLineWriterStalledReader(t *testing.T) {
	is := is.New(t)
	g := &gatedWriter{open: make(chan struct{})}
	l := newLineWriter(g)
	line := strings.Repeat("x", 99)
	n := 2 * lineBacklog / 100
	for i := range n {
		l.printf("%s\n", line) // would block for good if printf waited for the reader
		if i == 0 {
			// The writer holds the first line (blocked in Write); the rest waits behind it.
			deadline := time.Now().Add(10 * time.Second)
			for !func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.busy }() {
				if time.Now().After(deadline) {
					t.Fatal("the writer never took the first line")
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	start := time.Now()
	l.flush(50 * time.Millisecond) // gives up: no progress
	is.True(time.Since(start) < 10*time.Second)

	close(g.open)
	l.flush(time.Minute)
	l.printf("after\n")
	l.flush(time.Minute)
	lines := strings.Split(strings.TrimSuffix(g.buf.String(), "\n"), "\n")
	kept := 1 + (lineBacklog+99)/100 // the one being written, then the backlog
	is.Equal(len(lines), kept+2)
	is.Equal(lines[kept-1], line)
	is.Equal(lines[kept], fmt.Sprintf("starvisor: %d lines of output dropped: its reader did not take them", n-kept))
	is.Equal(lines[kept+1], "after")
}

// `up` whose output nobody reads any more still stops its programs and exits on SIGTERM:
// it used to hang in a write, with every program left running.
func TestUpShutsDownWhileNobodyReadsItsOutput(t *testing.T) {
	is := is.New(t)
	r, w, err := os.Pipe()
	is.NoErr(err)
	defer r.Close()
	_, err = unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 4096) // full after ~40 lines
	is.NoErr(err)
	const n = 60 // 120 state changes and more: the pipe fills during the start
	d := launchDaemon(t, sleepers(n), n, w)
	w.Close()
	st, err := api.NewClient(d.sock).Status(context.Background())
	is.NoErr(err)
	is.NoErr(d.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("up did not exit 30 s after SIGTERM")
	}
	is.Equal(d.cmd.ProcessState.ExitCode(), 0)
	for _, p := range st.Programs {
		is.True(syscall.Kill(p.Pid, 0) == syscall.ESRCH) // stopped, and reaped
	}
}
