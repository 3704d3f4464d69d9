//go:build !linux

package app

// trimCode is Linux's (trim_linux.go).
func trimCode() uintptr { return 0 }
