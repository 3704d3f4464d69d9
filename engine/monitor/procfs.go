// Package monitor measures running processes (CPU, RSS, per process and per
// tree, through gopsutil) and keeps the state file that lets a new daemon find
// and stop the processes an earlier one left behind.
package monitor

import (
	"bytes"
	"strconv"
	"syscall"

	"github.com/shirou/gopsutil/v4/process"
)

// procStat is what this package needs from /proc/PID/stat.
type procStat struct {
	pid, ppid, pgid int
	zombie          bool
	cpuTicks        uint64 // utime+stime, in clock ticks
	startTicks      uint64 // start time after boot, in clock ticks: tells a recycled pid apart
	rssPages        uint64
}

// scanProcs reads every process's stat in one pass: gopsutil lists the pids,
// and each /proc/PID/stat is read once here, since gopsutil's getters (Ppid,
// Times, CreateTime, MemoryInfo) each read and parse that process's files again,
// several reads per process where a round over the whole host needs one.
func scanProcs() []procStat {
	pids, err := process.Pids()
	if err != nil {
		return nil
	}
	out := make([]procStat, 0, len(pids))
	var buf [statBuf]byte
	for _, pid := range pids {
		if st, ok := readStatInto(int(pid), buf[:]); ok {
			out = append(out, st)
		}
	}
	return out
}

// statBuf holds any /proc/PID/stat line: 52 numbers and a comm of at most 64 bytes.
const statBuf = 2048

func readStat(pid int) (procStat, bool) {
	var buf [statBuf]byte
	return readStatInto(pid, buf[:])
}

// readStatInto parses /proc/PID/stat, read with plain syscalls into buf (os.ReadFile
// adds an fstat, and os.Open a poller registration, per file: they count when a
// round reads every process on the host). comm may hold spaces and parentheses,
// so the fields are counted from the last ')'.
func readStatInto(pid int, buf []byte) (procStat, bool) {
	fd, err := syscall.Open("/proc/"+strconv.Itoa(pid)+"/stat", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return procStat{}, false
	}
	n, err := syscall.Read(fd, buf)
	syscall.Close(fd)
	if err != nil || n <= 0 {
		return procStat{}, false
	}
	return parseStat(pid, buf[:n])
}

// parseStat reads the fields after comm: state(0) ppid(1) pgrp(2) ... utime(11)
// stime(12) ... starttime(19) vsize(20) rss(21), as proc(5) numbers them from 3.
func parseStat(pid int, b []byte) (procStat, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	var f [22][]byte
	n := 0
	for _, field := range bytes.Fields(b[i+1:]) {
		if n == len(f) {
			break
		}
		f[n] = field
		n++
	}
	if n < len(f) || len(f[0]) == 0 {
		return procStat{}, false
	}
	ppid, ok1 := atou(f[1])
	pgid, ok2 := atou(f[2])
	utime, ok3 := atou(f[11])
	stime, ok4 := atou(f[12])
	start, ok5 := atou(f[19])
	rss, ok6 := atou(f[21])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
		return procStat{}, false
	}
	return procStat{
		pid: pid, ppid: int(ppid), pgid: int(pgid),
		zombie:   f[0][0] == 'Z' || f[0][0] == 'X',
		cpuTicks: utime + stime, startTicks: start, rssPages: rss,
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

// childMap maps each pid to its children.
func childMap(procs []procStat) map[int][]int {
	children := make(map[int][]int, len(procs))
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	return children
}

// descendants returns root and every process below it.
func descendants(procs []procStat, root int) []int {
	return treeOf(childMap(procs), root)
}

func treeOf(children map[int][]int, root int) []int {
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// groupMembers returns the live (non-zombie) processes of process group pgid.
func groupMembers(pgid int) []int {
	var out []int
	for _, p := range scanProcs() {
		if p.pgid == pgid && !p.zombie {
			out = append(out, p.pid)
		}
	}
	return out
}
