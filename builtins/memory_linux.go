package builtins

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// memBytes is the process's resident memory, from /proc/self/statm. Not the Go heap
// from runtime.ReadMemStats: that stops the world, which waits for a copy of a large
// string to finish (a memmove is not preemptible), so the sample came only after the
// step that should have been stopped, and raced the next, twice as large. Resident
// memory grows while the copy runs, and reading it stops nothing. (runtime/metrics
// would not stop the world either, but its initialisation costs every CLI start,
// `status` included, 0.15 ms.)
func memBytes() uint64 {
	fd, err := syscall.Open("/proc/self/statm", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	var buf [128]byte
	n, _ := syscall.Read(fd, buf[:])
	syscall.Close(fd)
	// "size resident shared ...", in pages.
	fields := bytes.Fields(buf[:max(n, 0)])
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(string(fields[1]), 10, 64)
	return pages * uint64(os.Getpagesize())
}
