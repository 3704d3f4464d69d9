//go:build !linux

package logs

import (
	"os"
	"syscall"
)

func (f *File) spliceFrom(syscall.Conn) (int64, error) { return 0, errNoSplice }

// Pump copies r into the file on a goroutine of its own until end of input, then
// closes r and calls done (the idle pump without a goroutine is Linux's).
func (f *File) Pump(r *os.File, done func()) { go f.copyAll(r, done) }
