//go:build !linux

package app

// closeInheritedOnExec is Linux's (fds_linux.go); elsewhere descriptors are left as they are.
func closeInheritedOnExec() {}
