// Package procfs reads /proc/PID/stat, the one file both monitoring (CPU, RSS, trees) and
// the launcher (whole-tree stops, orphan reaping) need for every process on the host in a
// single pass. gopsutil lists the pids; the stat lines are read here because gopsutil's
// getters each re-read and re-parse the process's files, several reads per process where
// a pass over the whole host needs one.
package procfs

import (
	"bytes"
	"strconv"
	"syscall"

	"github.com/shirou/gopsutil/v4/process"
)

// Stat is what starvisor uses of one /proc/PID/stat line.
type Stat struct {
	Pid, Ppid, Pgid, Sid int
	State                byte   // R, S, D, Z, X, ...
	CPUTicks             uint64 // utime+stime, in clock ticks
	StartTicks           uint64 // start time after boot, in clock ticks: tells a recycled pid apart
	RSSPages             uint64
}

// Zombie reports a process that has exited but is not reaped yet.
func (s Stat) Zombie() bool { return s.State == 'Z' || s.State == 'X' }

// BufSize holds any stat line: 52 numbers and a comm of at most 64 bytes.
const BufSize = 2048

// Scan reads every process's stat in one pass.
func Scan() []Stat {
	pids, err := process.Pids()
	if err != nil {
		return nil
	}
	out := make([]Stat, 0, len(pids))
	var buf [BufSize]byte
	for _, pid := range pids {
		if st, ok := Read(int(pid), buf[:]); ok {
			out = append(out, st)
		}
	}
	return out
}

// Read parses /proc/PID/stat, read with plain syscalls into buf (os.ReadFile adds an
// fstat, and os.Open a poller registration, per file: they count when a pass reads every
// process on the host). ok is false when the process is gone.
func Read(pid int, buf []byte) (Stat, bool) {
	fd, err := syscall.Open("/proc/"+strconv.Itoa(pid)+"/stat", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return Stat{}, false
	}
	n, err := syscall.Read(fd, buf)
	syscall.Close(fd)
	if err != nil || n <= 0 {
		return Stat{}, false
	}
	return Parse(pid, buf[:n])
}

// Parse reads the fields after comm, which may hold spaces and parentheses, so they are
// counted from the last ')': state(0) ppid(1) pgrp(2) session(3) ... utime(11) stime(12)
// ... starttime(19) vsize(20) rss(21), as proc(5) numbers them from 3.
func Parse(pid int, b []byte) (Stat, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, false
	}
	// The first 22 fields, split by hand: bytes.Fields allocates a slice of all 50, per
	// process per monitoring round (two thirds of a round's garbage).
	var f [22][]byte
	n := 0
	for rest := b[i+1:]; n < len(f); n++ {
		for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\n') {
			rest = rest[1:]
		}
		end := 0
		for end < len(rest) && rest[end] != ' ' && rest[end] != '\n' {
			end++
		}
		if end == 0 {
			break
		}
		f[n], rest = rest[:end], rest[end:]
	}
	if n < len(f) || len(f[0]) == 0 {
		return Stat{}, false
	}
	var v [6]uint64
	for k, idx := range [6]int{1, 2, 3, 11, 12, 19} {
		var ok bool
		if v[k], ok = atou(f[idx]); !ok {
			return Stat{}, false
		}
	}
	rss, ok := atou(f[21])
	if !ok {
		return Stat{}, false
	}
	return Stat{
		Pid: pid, Ppid: int(v[0]), Pgid: int(v[1]), Sid: int(v[2]), State: f[0][0],
		CPUTicks: v[3] + v[4], StartTicks: v[5], RSSPages: rss,
	}, true
}

// atou parses a decimal without the string conversion strconv would need.
func atou(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}
