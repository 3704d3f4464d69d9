// Package monitor measures running processes (CPU, RSS, per process and per
// tree, through gopsutil) and keeps the state file that lets a new daemon find
// and stop the processes an earlier one left behind.
package monitor

import (
	"bytes"
	"os"
	"strconv"
)

// procStat is what this package needs from /proc/PID/stat.
type procStat struct {
	pid, ppid, pgid int
	zombie          bool
}

// scanProcs reads every process's parent and group in one pass over /proc.
func scanProcs() []procStat {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := make([]procStat, 0, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok {
			out = append(out, st)
		}
	}
	return out
}

// readStat parses /proc/PID/stat; comm may hold spaces and parentheses, so the
// fields are counted from the last ')'.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := bytes.Fields(b[i+1:]) // state ppid pgrp ...
	if len(f) < 3 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgid, err2 := strconv.Atoi(string(f[2]))
	if err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{pid: pid, ppid: ppid, pgid: pgid, zombie: f[0][0] == 'Z' || f[0][0] == 'X'}, true
}

// descendants returns root and every process below it.
func descendants(procs []procStat, root int) []int {
	children := map[int][]int{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
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
