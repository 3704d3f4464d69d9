//go:build !linux

package builtins

import "runtime"

// memBytes is the Go heap where /proc/self/statm does not exist (see memory_linux.go).
func memBytes() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
