package launcher

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/procfs"
)

// Why: stop_as_group / kill_as_group signal -pgid, which misses every
// descendant that left the group (setsid, setpgid, a daemonizing double fork).
// So a group signal also goes to the whole tree, found in one /proc scan:
//   - the child's descendants, by ppid links;
//   - every orphan adopted by this (subreaper) process whose environment holds
//     this program's STARVISOR_PROCESS_NAME, and their descendants: once an
//     intermediate parent has exited the ppid link to the program is gone, and
//     the name the engine puts in every child's environment is what is left.
//
// Limits: a descendant that cleared or replaced its environment and whose
// parent died before the stop escapes, as does one that forks between the scan
// and the signal (SIGKILL rescans until nothing new turns up) or one re-parented
// to a subreaper of its own. Per-process cgroups close those gaps; they are used
// instead of all this when the daemon runs as root on cgroup v2 (cgroup_linux.go).
//
// Each pid outside the child itself is signalled through a pidfd opened after
// checking that its start time is the scanned one, so a pid recycled since the
// scan is never hit.

const (
	sysPidfdSendSignal = 424 // pidfd_send_signal(2), Linux 5.1
	killPasses         = 4   // SIGKILL rescans: catches children forked meanwhile
)

// signalTree sends sig to the process group and to every process of the tree
// (see above); with onlyNew, not to those the last group signal reached. The caller
// holds h.mu shared.
func (h *handle) signalTree(sig syscall.Signal, onlyNew bool) error {
	orphans.forks.RLock() // adopted orphans are not reaped, so their pids hold, meanwhile
	defer orphans.forks.RUnlock()
	// Scan before signalling: once the group signal kills the child, its descendants are
	// being re-parented, and a scan taken during that moment can miss the link.
	procs := h.tree(freshScan())
	h.sentMu.Lock()
	defer h.sentMu.Unlock()
	var first error
	if !onlyNew { // -pgid would reach the members signalled already
		if err := syscall.Kill(-h.pid, sig); err != nil && err != syscall.ESRCH {
			first = err
		}
	}
	sent := h.sent
	if !onlyNew || sent == nil {
		sent = map[member]bool{}
	}
	done := map[int]bool{}
	passes := 1
	if sig == syscall.SIGKILL {
		passes = killPasses
	}
	for pass := range passes {
		if pass > 0 {
			procs = h.tree(freshScan())
		}
		fresh := 0
		for _, p := range procs {
			m := member{p.Pid, p.StartTicks}
			if done[p.Pid] || onlyNew && sent[m] {
				continue
			}
			done[p.Pid], sent[m] = true, true
			fresh++
			if p.Pid != h.pid && !isOwn(p.Pid) {
				markAdopted(p) // dying with its program, it may die adopted: the reaper's
			}
			if pass == 0 && !onlyNew && p.Pgid == h.pid {
				continue // -pgid reached it: a second SIGTERM cuts graceful exits short
			}
			if p.Pid == h.pid && !h.reaped {
				if err := h.signalSelf(sig); err != nil && first == nil {
					first = err
				}
				continue
			}
			signalExact(p, sig)
		}
		if fresh == 0 {
			break
		}
	}
	h.sent = sent
	return first
}

// continueTree sends SIGCONT where the group's stop signal went: the process group and
// each process of the tree it reached. A descendant that left the group (setsid) and was
// stopped (SIGSTOP) got the TERM, and stayed frozen until the SIGKILL. The caller holds
// mu, shared.
func (h *handle) continueTree() {
	if !h.reaped { // after the reap the pid, so the group's id, may be another's
		syscall.Kill(-h.pid, syscall.SIGCONT)
	}
	h.sentMu.Lock()
	defer h.sentMu.Unlock()
	for m := range h.sent {
		if m.pid != h.pid {
			signalExact(procfs.Stat{Pid: m.pid, StartTicks: m.ticks}, syscall.SIGCONT)
		}
	}
}

// killLeftovers kills, in process group mode, what the program left behind when it
// exited or was stopped alone, as cgroup mode's drain does: the rest of its process
// group (`sh -c "worker & server"`), and the orphans of its that this subreaper
// adopted (a setsid daemon), found by its name. They ran on unsupervised, through a
// shutdown too, and each restart made more of them. The /proc scan for the orphans is
// made only when this process has a child not its own. killed: something was left.
func (h *handle) killLeftovers() (killed bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.reaped {
		return false
	}
	killed = syscall.Kill(-h.pid, syscall.SIGKILL) == nil // ESRCH: the group is gone
	if orphans.active && h.name != "" && othersChildren() {
		orphans.forks.RLock()
		killed = killed || len(h.tree(freshScan())) > 0 // its adopted orphans: to be killed
		orphans.forks.RUnlock()
		h.signalTree(syscall.SIGKILL, false)
	}
	return killed
}

// othersChildren says whether this process has a child the launcher did not start (an
// adopted orphan; an exec probe's command): its threads' children lists, a few small
// reads where a /proc scan reads every process. Unknown (no such file) counts as yes.
func othersChildren() bool {
	kids, err := notOwnChildren(true)
	return err != nil || len(kids) > 0
}

// notOwnChildren lists this process's children the launcher did not start, from its
// threads' children lists; with first, it stops at the first one.
func notOwnChildren(first bool) ([]int, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			if first {
				return out, err
			}
			continue // a thread gone meanwhile: the others' lists still count
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				return out, err
			}
			if !isOwn(pid) {
				if out = append(out, pid); first {
					return out, nil
				}
			}
		}
	}
	return out, nil
}

// adopted lists the orphans of this program the daemon, a subreaper, adopted (a worker
// that daemonized), by the name in their environment: process group mode's Members.
func (h *handle) adopted() []int {
	if h.name == "" || !orphans.active {
		return nil
	}
	kids, _ := notOwnChildren(false)
	var out []int
	for _, pid := range kids {
		if environHas(pid, engine.EnvProcessName+"="+h.name) {
			out = append(out, pid)
		}
	}
	return out
}

// tree picks from procs the child (unless reaped), its descendants, the adopted
// orphans carrying this program's name, and their descendants. Zombies link the tree
// (a scan can see a child before its dying parent re-parented it) but are not returned.
func (h *handle) tree(procs []procfs.Stat) []procfs.Stat {
	kids := make(map[int][]procfs.Stat, len(procs))
	var roots []procfs.Stat
	for _, p := range procs {
		kids[p.Ppid] = append(kids[p.Ppid], p)
		if p.State == 'Z' || p.State == 'X' {
			continue
		}
		switch {
		case p.Pid == h.pid:
			if !h.reaped {
				roots = append(roots, p)
			}
		case h.name != "" && orphans.active && p.Ppid == orphans.self && !isOwn(p.Pid) &&
			environHas(p.Pid, engine.EnvProcessName+"="+h.name):
			roots = append(roots, p)
		}
	}
	var out []procfs.Stat
	seen := map[int]bool{}
	for len(roots) > 0 {
		p := roots[len(roots)-1]
		roots = roots[:len(roots)-1]
		if seen[p.Pid] {
			continue
		}
		seen[p.Pid] = true
		if p.State != 'Z' && p.State != 'X' {
			out = append(out, p)
		}
		roots = append(roots, kids[p.Pid]...)
	}
	return out
}

// signalExact signals p only if the pid still names the scanned process.
func signalExact(p procfs.Stat, sig syscall.Signal) {
	fd, _, e := syscall.Syscall(sysPidfdOpen, uintptr(p.Pid), 0, 0)
	if e == syscall.ENOSYS {
		syscall.Kill(p.Pid, sig) // old kernel: the small recycling window stays open
		return
	}
	if e != 0 {
		return // gone
	}
	defer syscall.Close(int(fd))
	var buf [procfs.BufSize]byte
	if now, ok := procfs.Read(p.Pid, buf[:]); !ok || now.StartTicks != p.StartTicks {
		return // the pid was recycled before the pidfd was opened
	}
	syscall.Syscall6(sysPidfdSendSignal, fd, uintptr(sig), 0, 0, 0, 0)
}

// StopAdopted stops the orphans the daemon adopted that are still alive once every
// program stopped: descendants that left their program's process group and cleared
// the environment that names their program (setsid, env -i), which no stop could tell
// apart. At shutdown nothing else of the daemon's runs, so they are leftovers: TERM to
// each and its group, KILL to those alive after grace (their own orphans, reparented
// here meanwhile, with them). Returns their pids; nil without the subreaper (cgroup
// mode's stops leave none).
func (l *Launcher) StopAdopted(grace time.Duration) []int {
	if !orphans.active {
		return nil
	}
	var stopped []int
	sent := map[int]syscall.Signal{}
	buf := make([]byte, 1024)
	deadline := time.Now().Add(grace)
	for {
		kids, _ := notOwnChildren(false)
		kids = slices.DeleteFunc(kids, func(pid int) bool {
			st, ok := procfs.Read(pid, buf)
			return !ok || st.Zombie()
		})
		now := time.Now()
		if len(kids) == 0 || now.After(deadline.Add(grace)) {
			return stopped // none left, or unkillable (D state): not waited for
		}
		for _, pid := range kids {
			sig := syscall.SIGTERM
			if now.After(deadline) {
				sig = syscall.SIGKILL
			}
			if sent[pid] == sig {
				continue
			}
			if sent[pid] == 0 {
				stopped = append(stopped, pid)
			}
			sent[pid] = sig
			syscall.Kill(-pid, sig) // a setsid escapee leads its group
			syscall.Kill(pid, sig)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
