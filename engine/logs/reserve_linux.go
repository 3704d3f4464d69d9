package logs

import (
	"os"

	"golang.org/x/sys/unix"
)

// allocate reserves the file's blocks from off for n bytes without changing its size
// (fallocate with KEEP_SIZE), if it can. False when the file system has no fallocate;
// other failures (a full disk) only mean no reservation.
func allocate(fh *os.File, off, n int64) (supported bool) {
	err := unix.Fallocate(int(fh.Fd()), unix.FALLOC_FL_KEEP_SIZE, off, n)
	return err != unix.EOPNOTSUPP && err != unix.ENOSYS
}
