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
// them for a File, waited on by waiter_linux.go).
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

// io.Copy from an *os.File pipe reaches File.ReadFrom and splices; rotation still
// lands on line boundaries and nothing is lost.
func TestSpliceFromPipeKeepsLines(t *testing.T) {
	for _, blocking := range []bool{false, true} {
		t.Run(map[bool]string{false: "pollable", true: "blocking"}[blocking], func(t *testing.T) {
			is := is.New(t)
			path := filepath.Join(t.TempDir(), "a.log")
			f := open(t, plan.Log{Path: path, MaxBytes: 4000, Backups: 200})
			all := strings.Join(numbered(20000, 30), "")
			n, err := io.Copy(f, pipeFrom(t, all, blocking))
			is.NoErr(err)
			is.Equal(n, int64(len(all)))
			is.True(f.Rotations() >= 50)
			is.Equal(f.spliced, int64(len(all))) // every byte took the fast path
			checkFiles(t, path, 4000, all)
		})
	}
}

func TestReadFromWithTimestampsTakesBufferedPath(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path, Timestamps: true})
	all := strings.Join(numbered(2000, 30), "")
	_, err := io.Copy(f, pipeFrom(t, all, true))
	is.NoErr(err)
	is.Equal(f.spliced, int64(0))
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
