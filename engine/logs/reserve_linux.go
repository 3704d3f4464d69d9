package logs

import (
	"os"

	"golang.org/x/sys/unix"
)

// allocate reserves the file's blocks from off for n bytes without changing its size
// (fallocate with KEEP_SIZE). supported is false when the file system has no
// fallocate.
func allocate(fh *os.File, off, n int64) (supported bool, err error) {
	err = unix.Fallocate(int(fh.Fd()), unix.FALLOC_FL_KEEP_SIZE, off, n)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		return false, err
	}
	return true, err
}
