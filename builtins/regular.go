package builtins

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// readRegular reads at most limit+1 bytes of a regular file. It opens without blocking and
// refuses anything else (a FIFO, a device), because an open or read that blocks cannot be
// interrupted by the step limit or the timeout.
func readRegular(abs string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(abs, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return readOpen(f, limit)
}

// readOpen reads at most limit+1 bytes of f, a regular file, and closes it.
func readOpen(f *os.File, limit int64) ([]byte, error) {
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errNotRegular
	}
	return io.ReadAll(io.LimitReader(f, limit+1))
}

var errNotRegular = errors.New("not a regular file")
