package procfs

import (
	"syscall"
	"unsafe"
)

// TicksPerSec is USER_HZ, the unit of the times in /proc/PID/stat: 100 on every
// architecture Linux runs Go on.
const TicksPerSec = 100

// clockBoottime is CLOCK_BOOTTIME, the clock a task's start time is taken from.
const clockBoottime = 7

// BootNanos reads CLOCK_BOOTTIME; 0 if it cannot be read.
func BootNanos() int64 {
	var ts syscall.Timespec
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockBoottime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return ts.Nano()
}

// tickSlack covers the clocks' reading error either side of a tick boundary (the
// kernel's and ours are the same clock, read at different instants).
const tickSlack = 100_000 // ns

// StartTicksBetween gives the StartTicks /proc/PID/stat will show for a process
// cloned between the BootNanos readings before and after, without reading it: the
// kernel stamps a task at clone with CLOCK_BOOTTIME and shows it in whole ticks
// (10 ms), so when both readings fall in one tick, that is the one. False when the
// spawn straddled a tick boundary (then read the file).
func StartTicksBetween(before, after int64) (uint64, bool) {
	const tick = 1e9 / TicksPerSec
	if before <= tickSlack || after < before {
		return 0, false
	}
	lo, hi := (before-tickSlack)/tick, (after+tickSlack)/tick
	if lo != hi {
		return 0, false
	}
	return uint64(lo), true
}
