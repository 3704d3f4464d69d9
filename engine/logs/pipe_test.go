package logs

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/starvisor/starvisor/engine/plan"
)

// pipeFrom returns the read end of a pipe fed with data in writes of varying
// size: pollable (os.Pipe, Go's netpoller) or blocking (as the launcher makes
// them for Pump, waited on by waiter_linux.go).
func pipeFrom(t *testing.T, data string, blocking bool) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if blocking {
		var fds [2]int
		err = syscall.Pipe2(fds[:], syscall.O_CLOEXEC)
		r, w = os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	go func() {
		defer w.Close()
		for p, step := data, 1; len(p) > 0; step = step*13%4099 + 1 {
			n := min(step, len(p))
			if _, err := w.WriteString(p[:n]); err != nil {
				return
			}
			p = p[n:]
		}
	}()
	return r
}

// pumpAll pumps r into f and waits for the end of input.
func pumpAll(t *testing.T, f *File, r *os.File) {
	t.Helper()
	done := make(chan struct{})
	f.Pump(r, func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the pump reported no end of input")
	}
}

// feed moves a pipe into f the way its kind is read: a blocking pipe through Pump (as
// the launcher does), a pollable one through io.Copy and Write.
func feed(t *testing.T, f *File, data string, blocking bool) {
	t.Helper()
	r := pipeFrom(t, data, blocking)
	if blocking {
		pumpAll(t, f, r)
		return
	}
	n, err := io.Copy(f, r)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("io.Copy: %d of %d bytes, %v", n, len(data), err)
	}
}

// Timestamps see every byte from a pump: each line starts with one.
func TestPumpStampsEveryLine(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path, Timestamps: true})
	all := strings.Join(numbered(2000, 30), "")
	pumpAll(t, f, pipeFrom(t, all, true))
	got := strings.SplitAfter(read(t, path), "\n")
	want := strings.SplitAfter(all, "\n")
	is.Equal(len(got), len(want))
	for i, l := range got[:len(got)-1] {
		ts, rest, ok := strings.Cut(l, " ")
		is.True(ok)
		_, err := time.Parse(StampLayout, ts)
		is.NoErr(err) // every line starts with a stamp
		is.Equal(rest, want[i])
	}
}
