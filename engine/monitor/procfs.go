// Package monitor measures running processes (CPU, RSS, per process and per
// tree, through gopsutil) and keeps the state file that lets a new daemon find
// and stop the processes an earlier one left behind.
package monitor

import (
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

// groupMembers returns the live (non-zombie) processes of process group pgid.
func groupMembers(pgid int) []int {
	var out []int
	for _, p := range scanProcs() {
		if p.Pgid == pgid && !p.Zombie() {
			out = append(out, p.Pid)
		}
	}
	return out
}
