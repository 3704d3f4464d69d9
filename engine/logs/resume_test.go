package logs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/starvisor/starvisor/engine/plan"
)

// Failing follows the writes: true from a dropped write (disk full, file impossible to
// create), false from the first write that lands, which is how the engine clears the
// error it shows.
func TestFailingFollowsWrites(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	is.NoErr(os.Symlink("/dev/full", path)) // every write: ENOSPC
	f := open(t, plan.Log{Path: path})
	is.True(!f.Failing()) // nothing written yet
	f.Write([]byte("lost\n"))
	is.True(f.Failing())
	is.True(errors.Is(f.Err(), syscall.ENOSPC))
	f.Write([]byte("lost too\n"))
	is.True(f.Failing()) // still, although Err was read
	is.True(errors.Is(f.Err(), syscall.ENOSPC))

	is.NoErr(os.Remove(path)) // room again: the next write reopens, now a regular file
	f.Write([]byte("kept\n"))
	is.True(!f.Failing())
	is.NoErr(f.Err())
	is.Equal(read(t, path), "[starvisor: 14 bytes of output lost here: the log could not be written]\nkept\n") // the gap said where it is

	blocked := open(t, plan.Log{Path: filepath.Join(path, "b.log")}) // a file where the folder should be
	blocked.Write([]byte("lost\n"))
	is.True(blocked.Failing())
	is.True(errors.Is(blocked.Err(), syscall.ENOTDIR))
}

// A real full disk under a pump: while a tmpfs is full the pipe keeps draining and the
// file reports the failure; once the filler is gone, the next bytes reach the file
// again and Failing clears. Root only (mount).
func TestPumpResumesAfterDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	is := is.New(t)
	mnt := t.TempDir()
	if out, err := sh(t, "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { sh(t, "umount", "-l", mnt) })
	path := filepath.Join(mnt, "a.log")
	f := open(t, plan.Log{Path: path})

	var fds [2]int
	is.NoErr(syscall.Pipe2(fds[:], syscall.O_CLOEXEC)) // blocking, as the launcher makes them
	r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	done := make(chan struct{})
	f.Pump(r, func() { close(done) })
	defer func() { w.Close(); <-done }()

	// Bytes first, so the file exists and is open.
	_, err := w.WriteString("before\n")
	is.NoErr(err)
	until(t, "the first line in the file", func() bool { return strings.HasPrefix(readOr(path), "before\n") })

	filler, err := os.Create(filepath.Join(mnt, "filler"))
	is.NoErr(err)
	for {
		if _, err := filler.Write(make([]byte, 4096)); err != nil {
			is.True(errors.Is(err, syscall.ENOSPC))
			break
		}
	}
	filler.Close()
	lost := bytes.Repeat([]byte("dropped while the disk is full\n"), 2048) // 62 KiB: past any page left over
	_, err = w.Write(lost)
	is.NoErr(err) // the pipe was drained: the writer never blocked
	until(t, "the file to report the full disk", f.Failing)
	is.True(errors.Is(f.Err(), syscall.ENOSPC))

	is.NoErr(os.Remove(filepath.Join(mnt, "filler")))
	after := "after 1\nafter 2\n"
	_, err = w.WriteString(after)
	is.NoErr(err)
	until(t, "the lines written after the disk had room", func() bool { return strings.HasSuffix(readOr(path), after) })
	is.True(!f.Failing())
	is.NoErr(f.Err())
}

func sh(t *testing.T, name string, args ...string) ([]byte, error) {
	t.Helper()
	return exec.Command(name, args...).CombinedOutput()
}

func readOr(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// until polls cond every 5 ms for up to 5 s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
