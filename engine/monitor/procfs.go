// Package monitor measures running processes (CPU, RSS, per process and per
// tree, through gopsutil) and keeps the state file that lets a new daemon find
// and stop the processes an earlier one left behind.
package monitor

import (
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/starvisor/starvisor/engine/procfs"
)

// scanProcs reads every process's stat in one pass (see engine/procfs).
func scanProcs() []procfs.Stat { return procfs.Scan() }

func readStat(pid int) (procfs.Stat, bool) {
	var buf [procfs.BufSize]byte
	return procfs.Read(pid, buf[:])
}

// childMap maps each pid to its children.
func childMap(procs []procfs.Stat) map[int][]int {
	children := make(map[int][]int, len(procs))
	for _, p := range procs {
		children[p.Ppid] = append(children[p.Ppid], p.Pid)
	}
	return children
}

// descendants returns root and every process below it.
func descendants(procs []procfs.Stat, root int) []int {
	return treeOf(childMap(procs), root)
}

func treeOf(children map[int][]int, root int) []int {
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// groups are the live (non-zombie) processes of each process group, by pgid, from one
// scan of /proc: a look per stray scanned all of /proc each time (213 strays on a busy
// host: 140,000 reads, seconds per client command).
type groups map[int][]int

func groupsNow() groups { return groupsOf(scanProcs()) }

func groupsOf(procs []procfs.Stat) groups {
	g := groups{}
	for _, p := range procs {
		if !p.Zombie() {
			g[p.Pgid] = append(g[p.Pgid], p.Pid)
		}
	}
	return g
}

// startMillis is when pid started, in ms since the epoch, from one read of its stat:
// the boot time in /proc/stat plus its start in clock ticks (the formula gopsutil's
// CreateTime uses, so state files of earlier versions still match). The state file
// records it and the stray check compares it, both through here: a recycled pid has
// another start.
func startMillis(pid int) (int64, bool) {
	st, ok := readStat(pid)
	if !ok {
		return 0, false
	}
	return startOf(st)
}

// startOf is startMillis from a stat already read; false when the boot time is unknown.
func startOf(st procfs.Stat) (int64, bool) { return startAt(st.StartTicks) }

// startAt is startMillis from the start in clock ticks after boot.
func startAt(ticks uint64) (int64, bool) {
	bt := bootSeconds()
	if bt == 0 {
		return 0, false
	}
	return int64(ticks*1000/ticksPerSec + bt*1000), true
}

// incarnation reports whether e's pid is alive (not a zombie), and if so whether it is
// still the process e recorded (same start) rather than a recycled pid.
func incarnation(e Entry) (alive, same bool) {
	st, ok := readStat(e.Pid)
	if !ok || st.Zombie() {
		return false, false
	}
	start, ok := startOf(st)
	return true, ok && start == e.Start
}

// bootSeconds reads the boot time ("btime") from /proc/stat once; 0 when unknown.
var bootSeconds = sync.OnceValue(func() uint64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
})
