package logs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/engine/plan"
)

// The recovery of a log folder whose file system went read-only: unmounted (lazily, as
// its files are open), repaired, mounted again at its path. The next open is made there;
// through the folder held since the first write, the log was never written again.
func TestLogFolderMountedAgain(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting wants root")
	}
	is := is.New(t)
	mnt := filepath.Join(t.TempDir(), "log")
	is.NoErr(os.Mkdir(mnt, 0o755))
	mount := func() {
		if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
			t.Skipf("cannot mount a tmpfs: %v", err)
		}
		t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	}
	mount()
	path := filepath.Join(mnt, "a.log")
	f := open(t, plan.Log{Path: path, MaxBytes: 1 << 20, Backups: 1})
	f.Write([]byte("line 1\n"))
	is.Equal(read(t, path), "line 1\n")

	is.NoErr(syscall.Unmount(mnt, syscall.MNT_DETACH))
	mount()
	f.Reopen() // SIGUSR2, or a write failing on the file system gone read-only
	f.Write([]byte("line 2\n"))
	is.NoErr(f.Err())
	is.Equal(read(t, path), "line 2\n") // on the file system mounted there now
}
