//go:build !linux

package logs

import (
	"os"
	"syscall"
)

// openNoSymlinks opens path, failing should its last part be a symlink.
func openNoSymlinks(path string, flags int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flags|syscall.O_NOFOLLOW, perm)
}
