package monitor

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/procfs"
)

// daemonKey is the state file's entry for the daemon itself (a process name cannot
// hold ':'). A child is spawned before the file records it; a daemon killed in between
// leaves a child only its environment tells apart: STARVISOR_DAEMON names the daemon.
const daemonKey = "starvisor:daemon"

// self is this process's state file entry, and the STARVISOR_DAEMON value of its children.
var self = sync.OnceValue(func() Entry {
	start, _ := startMillis(os.Getpid())
	return Entry{Pid: os.Getpid(), Start: start}
})

// Self is what the daemon puts in its children's environment (engine.EnvDaemon): its
// pid and start time, "pid.start".
func Self() string { return identity(self()) }

func identity(e Entry) string { return strconv.Itoa(e.Pid) + "." + strconv.FormatInt(e.Start, 10) }

// recordSelf is the state a daemon starts from: itself, no process.
func recordSelf(m map[string]Entry) { m[daemonKey] = self() }

// Release forgets the daemon's own entry once it stopped every process, so the next
// daemon does not read every process's environment (~30 µs each) looking for children
// of this one.
func (f *StateFile) Release() {
	f.change(func(m map[string]Entry) { delete(m, daemonKey) })
}

// unrecorded finds what the dead daemon d spawned and the state file does not list:
// live processes whose environment names d, as strays by process group, leaving out
// the pids of known (the recorded strays), among procs (a scan of /proc). A live d (not
// dead after all) has none.
func unrecorded(d Entry, known []Stray, procs []procfs.Stat) []Stray {
	if d.Pid <= 1 || d.Pid == os.Getpid() {
		return nil
	}
	if alive, same := incarnation(d); alive && same {
		return nil
	}
	covered := map[int]bool{}
	for _, s := range known {
		for _, pid := range s.Pids {
			covered[pid] = true
		}
	}
	want := []byte(engine.EnvDaemon + "=" + identity(d) + "\x00")
	marked := func(pid int) ([]byte, bool) {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		return env, err == nil && bytes.Contains(env, want)
	}
	var out []Stray
	g := groupsOf(procs)
	for _, p := range procs {
		if covered[p.Pid] || p.Zombie() || p.Pid == os.Getpid() {
			continue
		}
		env, ok := marked(p.Pid)
		if !ok {
			continue
		}
		name := "?"
		for _, kv := range bytes.Split(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte(engine.EnvProcessName+"=")); ok {
				name = string(v)
			}
		}
		// Children lead their own group (grandchildren share it), which may come first
		// in pid order (pids wrapped around): the group is taken whole when its leader
		// is ours too, or gone. A group whose leader is another process, alive and not
		// ours, is left alone: only p is.
		s := Stray{Process: name, Pid: p.Pid, Pids: []int{p.Pid}}
		if _, ours := marked(p.Pgid); p.Pgid == p.Pid || !leaderAlive(p.Pgid) || ours {
			s = Stray{Process: name, Pid: p.Pgid, Pids: slices.Clone(g[p.Pgid])}
		}
		for _, pid := range s.Pids {
			covered[pid] = true
		}
		out = append(out, s)
	}
	return out
}
