package launcher

import (
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/starvisor/starvisor/engine/procfs"
)

// Why: a program's descendant that double-forks or calls setsid leaves the
// program's process group, and once its parent exits it is reparented to PID 1:
// supervisord loses it (its issue #1101) and a stop leaves it running. So the
// first Start makes this process a child subreaper (PR_SET_CHILD_SUBREAPER):
// orphans of its descendants are reparented to it instead, where the tree
// signalling of tree_linux.go finds them, and where they must be reaped.
//
// The launcher is only used by the daemon (and by tests), so this changes the
// daemon process as a whole, on purpose; it is done on first use, not at import.
//
// Reaping: the launcher's own children are reaped through their pidfds
// (reap_linux.go); os/exec children of the daemon (exec probes) by their
// exec.Cmd. The orphan reaper must steal neither. On SIGCHLD it peeks with
// waitid(P_ALL, WNOWAIT) and reaps the exited pid only when it is an adopted
// orphan (see adopted). When the queue's head is one of the launcher's own, its
// handle nudges the reaper once it has reaped it, and the peek goes on; when
// it is another fork of the daemon's, the reaper looks past it through a /proc
// scan (about 10 ms per 500 processes, so not on every exit). Start holds
// forks shared and the reaper exclusively, so a child that exits before its pid is recorded is
// never mistaken for an orphan, and tree signalling holds it shared, so an
// adopted orphan's pid cannot be reaped and recycled while it is being signalled.

const (
	prSetChildSubreaper = 36
	pAll                = 0 // P_ALL for waitid(2)
	pPid                = 1 // P_PID
	wNoWait             = 0x1000000
)

var orphans struct {
	once     sync.Once
	active   bool           // this process is a subreaper and the reaper runs
	forks    sync.RWMutex   // Start: shared across fork and record; the reaper: exclusive
	mu       sync.Mutex     // guards own
	own      map[int]bool   // the launcher's children not yet reaped by their handle
	known    map[int]uint64 // a program's descendants a tree signal reached, by pid: their start time
	nudge    chan struct{}  // an own child was reaped: peek again
	reaped   atomic.Int64   // adopted orphans reaped, for tests and reports
	self     int
	selfPgid int
	selfSid  int
	// init: the daemon is a namespace's init (pid 1), or sits in a session outside its
	// namespace (its session reads 0): an orphan cannot be told from its own forks by
	// session or group there, so every child but own and apart is an orphan to reap
	// (they stayed zombies for good under unshare --pid --fork).
	init  atomic.Bool
	apart map[int]bool // the daemon's own forks outside the launcher (os/exec), until waited
}

// ForkedApart marks pid, a child the daemon forked outside the launcher (os/exec: a
// reload's evaluation), as none of the orphans to reap until done is called, after its
// Wait: a namespace's init reaps every other child.
func ForkedApart(pid int) (done func()) {
	orphans.mu.Lock()
	if orphans.apart == nil {
		orphans.apart = map[int]bool{}
	}
	orphans.apart[pid] = true
	orphans.mu.Unlock()
	return func() {
		orphans.mu.Lock()
		delete(orphans.apart, pid)
		orphans.mu.Unlock()
	}
}

// becomeSubreaper makes this process a child subreaper and starts the orphan
// reaper, once. Failure (a kernel before 3.4) leaves things as they were:
// orphans go to init, as under supervisord.
func becomeSubreaper() {
	orphans.once.Do(func() {
		orphans.own = map[int]bool{}
		orphans.known = map[int]uint64{}
		orphans.self = os.Getpid()
		orphans.selfPgid = syscall.Getpgrp()
		sid, _, _ := syscall.RawSyscall(syscall.SYS_GETSID, 0, 0, 0)
		orphans.selfSid = int(sid)
		orphans.init.Store(orphans.self == 1 || orphans.selfSid == 0)
		if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
			return
		}
		orphans.active = true
		orphans.nudge = make(chan struct{}, 1)
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGCHLD)
		go func() {
			for {
				reapOrphans() // first: any that exited before Notify
				select {
				case <-ch:
				case <-orphans.nudge:
				}
			}
		}()
	})
}

// recordOwn and forgetOwn keep the set of the launcher's own unreaped children.
func recordOwn(pid int) {
	orphans.mu.Lock()
	orphans.own[pid] = true
	orphans.mu.Unlock()
}

// forgetOwn is called once the handle has reaped pid; an exited orphan queued
// behind it may now be the head of the wait queue.
func forgetOwn(pid int) {
	orphans.mu.Lock()
	delete(orphans.own, pid)
	orphans.mu.Unlock()
	if orphans.active {
		select {
		case orphans.nudge <- struct{}{}:
		default:
		}
	}
}

func isOwn(pid int) bool {
	orphans.mu.Lock()
	defer orphans.mu.Unlock()
	return orphans.own[pid]
}

// adopted reports whether p, a child of this process, is an orphan it adopted
// rather than a child it forked. The launcher's children are in own. Other
// forks of the daemon (anything of os/exec's, with Setpgid or without) stay in
// its session and lead their own group or share the daemon's. An orphan has
// left the session (setsid), or sits in a group it does not lead (its launched
// ancestor's). Programs run in sessions of their own, so their descendants are never
// in the daemon's; one that made itself a group leader there (setpgid without setsid,
// Python's process_group=0, under a launcher that shared the daemon's session) would
// look like such a fork: it is adopted when it was seen carrying its program's name
// (markAdopted: a tree signal found it so), or, dead, when it died in a program's
// cgroup. Else it is left as a zombie: reaping it could steal an os/exec child's exit.
func adopted(p procfs.Stat) bool {
	if p.Ppid != orphans.self || isOwn(p.Pid) {
		return false
	}
	if orphans.init.Load() {
		orphans.mu.Lock()
		apart := orphans.apart[p.Pid]
		orphans.mu.Unlock()
		return !apart
	}
	if p.Sid != orphans.selfSid || (p.Pgid != p.Pid && p.Pgid != orphans.selfPgid) {
		return true
	}
	orphans.mu.Lock()
	start, known := orphans.known[p.Pid]
	orphans.mu.Unlock()
	return known && start == p.StartTicks || p.State == 'Z' && diedInProgramCgroup(p.Pid)
}

// markAdopted records p, a program's descendant (a tree signal reached it, or found it
// adopted by its program's name): once its parent is gone it is this process's to
// reap, whatever group it leads (a stop killed the program and it, which then died
// adopted, a zombie). By its start time too: a pid reused since is not taken for it.
// Those another parent reaped are forgotten when the table grows.
func markAdopted(p procfs.Stat) {
	orphans.mu.Lock()
	defer orphans.mu.Unlock()
	if len(orphans.known) >= 4096 {
		var buf [procfs.BufSize]byte
		for pid, start := range orphans.known {
			if q, ok := procfs.Read(pid, buf[:]); !ok || q.StartTicks != start {
				delete(orphans.known, pid)
			}
		}
	}
	orphans.known[p.Pid] = p.StartTicks
}

// reapOrphans reaps every exited adopted orphan; see the comment at the top.
func reapOrphans() {
	orphans.forks.Lock()
	defer orphans.forks.Unlock()
	var buf [procfs.BufSize]byte
	vanished := int32(0)
	for {
		var info siginfoChild
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pAll, 0, uintptr(unsafe.Pointer(&info)),
			syscall.WEXITED|syscall.WNOHANG|wNoWait, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 || info.Pid == 0 {
			return // no child has exited
		}
		// Own children first, without reading /proc: every exit of a program comes
		// here, and the read (tens of microseconds) would hold up the restart's fork.
		if isOwn(int(info.Pid)) {
			return // its handle reaps it, then nudges: the peek goes on then
		}
		p, ok := procfs.Read(int(info.Pid), buf[:])
		if ok && adopted(p) {
			reapPid(p.Pid)
			continue
		}
		if !ok && info.Pid != vanished {
			// Reaped between the peek and the read (by its handle, which then
			// forgot it): peek again rather than scan.
			vanished = info.Pid
			continue
		}
		break // another fork of the daemon's (an exec probe): look past it
	}
	for _, p := range procfs.Scan() {
		if p.State == 'Z' && adopted(p) {
			reapPid(p.Pid)
		}
	}
}

// reapPid reaps one exited child, without blocking.
func reapPid(pid int) {
	for {
		var info siginfoChild
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPid, uintptr(pid), uintptr(unsafe.Pointer(&info)),
			syscall.WEXITED|syscall.WNOHANG, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e == 0 && info.Pid != 0 {
			orphans.reaped.Add(1)
			orphans.mu.Lock()
			delete(orphans.known, pid)
			orphans.mu.Unlock()
		}
		return
	}
}
