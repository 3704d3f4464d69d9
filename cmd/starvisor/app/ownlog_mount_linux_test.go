package app

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/matryer/is"
)

// The daemon's own log, its folder's file system unmounted under it (umount -l of one
// gone read-only) and a repaired one mounted there: reopened (SIGUSR2), it is written
// on the new one. Through its held folder it was written at /starvisor.log, at the root
// of the machine (the detached folder's path reads "/"), and logs --daemon read it there.
func TestOwnLogFolderMountedAgain(t *testing.T) {
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
	path := filepath.Join(mnt, "starvisor.log")
	var files []*os.File
	for range 2 {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		is.NoErr(err)
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
	}
	l, err := openOwnLog(path, nil, files...)
	is.NoErr(err)
	_, err = l.Write([]byte("before\n"))
	is.NoErr(err)

	is.NoErr(syscall.Unmount(mnt, syscall.MNT_DETACH))
	mount()
	l.reopen()
	_, err = l.Write([]byte("after\n"))
	is.NoErr(err)
	b, err := os.ReadFile(path)
	is.NoErr(err)
	is.Equal(string(b), "after\n") // on the file system mounted there now
	is.Equal(l.where(), path)
}
