//go:build !linux

package logs

import "syscall"

func (f *File) spliceFrom(syscall.Conn) (int64, error) { return 0, errNoSplice }
