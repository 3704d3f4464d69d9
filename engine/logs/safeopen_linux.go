package logs

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// openNoSymlinks opens path, failing (ELOOP) should any part of it be a symlink: one
// swapped in after resolve looked. Kernels before 5.6 have no openat2: there the last
// part alone is checked (O_NOFOLLOW).
func openNoSymlinks(path string, flags int, perm os.FileMode) (*os.File, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(perm.Perm()), Resolve: unix.RESOLVE_NO_SYMLINKS}
	fd, err := unix.Openat2(unix.AT_FDCWD, path, &how)
	if errors.Is(err, unix.ENOSYS) {
		return os.OpenFile(path, flags|unix.O_NOFOLLOW, perm)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}
