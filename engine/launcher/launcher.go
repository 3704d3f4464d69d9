// Package launcher starts real processes for the engine: one process group per
// child (and, as root on cgroup v2, one cgroup: cgroup_linux.go), output through
// pipes into the engine's writers, exits from wait(2).
package launcher

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/procfs"
)

// Launcher forks and execs programs. It holds no lock across starts.
type Launcher struct {
	mu     sync.Mutex
	cgs    *cgroups // nil: process groups only
	why    error    // why not cgroups
	closed bool     // Close ran: a cgroup is removed when its process exits, not kept
	kept   *cgroups // where this launcher kept cgroups for restarts: Close empties it
}

// New returns the real launcher. Its first Start makes this process a child
// subreaper and starts the orphan reaper (subreaper_linux.go): the launcher is
// meant for the daemon, which then owns every descendant of its programs. As root
// on cgroup v2 it also puts each spawn in a cgroup of its own (cgroup_linux.go).
func New() engine.Launcher {
	cgs, why := systemCgroups()
	return &Launcher{cgs: cgs, why: why}
}

// NewProcessGroups returns a launcher that owns its processes as New's does where
// cgroups are not available: process groups, and the subreaper following orphans.
func NewProcessGroups() engine.Launcher {
	return &Launcher{why: errors.New("process groups asked for")}
}

// KillLeftovers kills what the dead daemon pid left in its cgroups (cgroup mode; see
// cgroups.killLeftovers) and returns how many processes that was.
func (l *Launcher) KillLeftovers(pid int) int {
	if cgs := l.cgroups(); cgs != nil && pid > 0 {
		return cgs.killLeftovers(pid)
	}
	return 0
}

// Describe says how the launcher owns its processes, for a debug line.
func (l *Launcher) Describe() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cgs != nil {
		return "cgroup v2: one cgroup per process (kept across its restarts) under " + l.cgs.parent()
	}
	return fmt.Sprintf("process groups and subreaper (no cgroups: %v)", l.why)
}

func (l *Launcher) cgroups() *cgroups {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cgs
}

// fallBack leaves cgroups for process groups, for good.
func (l *Launcher) fallBack(why error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cgs != nil {
		l.cgs, l.why = nil, why
	}
}

// keep makes g, empty once its spawn is over, available to the next spawn of name.
// One that cannot be kept is removed: off the exit's path, unless the launcher is
// closed (then nothing would wait for the removal).
func (l *Launcher) keep(name string, g *cgroup) {
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.kept = g.cgs
		if g.cgs.keep(name, g) { // under l.mu: Close cannot miss it
			l.mu.Unlock()
			return
		}
		g.cgs.removeLater(g) // counted under l.mu too: Close waits for it
	}
	l.mu.Unlock()
	if closed {
		g.dispose()
	}
}

// Forget removes the cgroups kept for the restarts of the named processes (the
// engine calls it for processes removed from the plan, once they have stopped).
func (l *Launcher) Forget(names ...string) {
	l.mu.Lock()
	cgs := l.kept
	l.mu.Unlock()
	if cgs != nil && len(names) > 0 {
		cgs.removeIdle(names)
	}
}

// Close removes every cgroup kept for restarts, and with the last one the daemon's
// parent cgroup; a process still running has its cgroup removed when it exits. The
// engine calls it at the end of Shutdown, when every process has exited. The launcher
// still works afterwards, without keeping cgroups.
func (l *Launcher) Close() {
	l.mu.Lock()
	l.closed = true
	cgs := l.kept
	l.mu.Unlock()
	if cgs != nil {
		cgs.removeIdle(nil)
	}
}

// Start spawns spec.Program. Spawn errors use supervisord's words ("can't find
// command 'x'", "couldn't chdir to /x: ENOENT", ...) so status shows them as is.
func (l *Launcher) Start(spec engine.Spec) (engine.Handle, error) {
	pr := spec.Program
	if len(pr.Command) == 0 {
		return nil, errors.New("no command")
	}
	cred, env, err := Credential(pr.User, pr.Env, spec.Env)
	if err != nil {
		return nil, err
	}
	path, err := resolve(pr.Command[0], pr.Directory, env)
	if err != nil {
		return nil, err
	}
	if err := checkDir(pr.Directory); err != nil {
		return nil, err
	}
	umask, err := parseUmask(pr.Umask)
	if err != nil {
		return nil, err
	}
	out, err := newOutputs(spec.Stdout, spec.Stderr)
	if err != nil {
		return nil, err
	}
	name, _ := lookupEnv(env, engine.EnvProcessName)
	sys := &syscall.SysProcAttr{
		// A session of its own, so its own process group too (stop_as_group reaches its
		// descendants), and no controlling terminal: under a foreground up, a program
		// run as another user could open root's terminal and type into its shell
		// (TIOCSTI), as su and sudo keep a command from doing.
		Setsid:     true,
		Credential: cred,
	}
	attr := &syscall.ProcAttr{Dir: pr.Directory, Env: env, Files: out.childFds(), Sys: sys}
	var cg *cgroup
	if cgs := l.cgroups(); cgs != nil {
		g, fd, err := cgs.take(name)
		if err != nil {
			l.fallBack(err)
		} else {
			defer syscall.Close(fd)
			cg, sys.UseCgroupFD, sys.CgroupFD = g, true, fd // born in it: never runs outside
		}
	}
	becomeSubreaper()
	orphans.forks.RLock()        // the pid is recorded before the orphan reaper can see it exit
	before := procfs.BootNanos() // brackets the clone: see handle.StartTicks
	pid, pidfd, err := startProcess(path, pr.Command, attr, umask)
	if err != nil && cg != nil {
		// The clone into the cgroup (an old kernel, EBUSY) and the exec cannot be told
		// apart by the error: a spawn that works without the cgroup blames the cgroup.
		cgErr := err
		sys.UseCgroupFD, sys.CgroupFD = false, 0
		pid, pidfd, err = startProcess(path, pr.Command, attr, umask)
		if err == nil {
			l.fallBack(fmt.Errorf("spawn into a cgroup: %w", cgErr))
			cg.discard()
		} else if empty, _ := cg.drain(); empty {
			l.keep(name, cg) // the exec failed, not the cgroup: a retry may use it
		}
		cg = nil
	}
	after := procfs.BootNanos()
	if err == nil {
		recordOwn(pid)
	}
	orphans.forks.RUnlock()
	out.closeChildEnds() // the child holds its copies; EOF comes when it (and its heirs) exit
	if err != nil {
		out.closeAll()
		if interp, ok := MissingInterpreter(path); ok && errors.Is(err, syscall.ENOENT) {
			// The file is there; what exec did not find is what its #! line names.
			return nil, fmt.Errorf("couldn't exec %s: ENOENT: its #! interpreter %s does not exist (a virtualenv moved since it was made? run the tool as python -m)", path, interp)
		}
		if why := deniedWhy(cred, pr.User, pr.Directory, path); why != "" && errors.Is(err, syscall.EACCES) {
			return nil, errors.New(why)
		}
		return nil, fmt.Errorf("couldn't exec %s: %s", path, errnoName(err))
	}
	out.copy()
	h := &handle{l: l, pid: pid, pidfd: pidfd, name: name, cg: cg, done: make(chan engine.Exit, 1),
		finished: make(chan struct{})}
	h.startTicks, _ = procfs.StartTicksBetween(before, after)
	if pidfd >= 0 {
		h.watch(out)
	} else {
		go h.wait(out)
	}
	return h, nil
}

type handle struct {
	l    *Launcher
	pid  int
	name string  // STARVISOR_PROCESS_NAME in its environment: finds its adopted orphans
	cg   *cgroup // nil: process group mode
	done chan engine.Exit
	// pidfd is the child's, from the clone; -1 without pidfds, or once it is closed
	// (under mu, after the reap). See reap_linux.go.
	pidfd int

	finished chan struct{} // closed after the exit is sent: the cgroup is empty by then

	startTicks uint64 // as /proc/PID/stat will show it; 0 when the spawn straddled a tick

	exitMu sync.Mutex
	onExit func(engine.Exit) // set by NotifyExit: the exit goes there instead of done

	mu     sync.RWMutex // Signal holds it shared; reap and wait exclusively
	reaped bool
	// drained: the cgroup is empty and handed back for the next spawn of the name, whose
	// processes a late group signal to this handle must not reach.
	drained bool

	// groupSig is the last signal sent to the whole group (a stop_as_group stop, or
	// the kill_as_group SIGKILL after stop_timeout): 0 when none. A child reaped after
	// one has its exit reported only once the rest of its group is gone (awaitGroup).
	groupSig atomic.Int32
	// stopSig and stopBy: the stop's signal, sent to the process alone, and when its
	// stop_timeout ends (see StopSent); killSent: a SIGKILL went (the stop is over).
	stopSig  atomic.Int32
	stopBy   atomic.Int64 // unix ns
	killSent atomic.Bool
	// sentMu guards sent: the tree members the last group signal reached (process
	// group mode), so that the pass after the reap signals only those forked since.
	sentMu sync.Mutex
	sent   map[member]bool
}

// member names a process for good: its pid and its start time.
type member struct {
	pid   int
	ticks uint64
}

// StartTicks is the process's start time as /proc/PID/stat shows it, known without
// reading it when the spawn fell clearly inside one 10 ms clock tick: most lone spawns,
// about half of those in a burst of 200 (the window includes the exec).
func (h *handle) StartTicks() (uint64, bool) { return h.startTicks, h.startTicks != 0 }

func (h *handle) Pid() int { return h.pid }

// Members lists the processes of the child's cgroup (engine.MemberLister). In process
// group mode, where the sampler finds the child's tree by parent links, it lists what
// left that tree: the orphans of this program the daemon adopted (a worker that
// daemonized), found by its name (tree_linux.go).
func (h *handle) Members() []int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.cg == nil {
		return h.adopted()
	}
	if h.drained {
		return nil
	}
	pids, _ := h.cg.procs()
	return pids
}

func (h *handle) Done() <-chan engine.Exit { return h.done }

// NotifyExit has fn called with the exit instead of sending it on Done (at once if
// it was sent already), so the engine keeps no goroutine waiting per process.
func (h *handle) NotifyExit(fn func(engine.Exit)) {
	h.exitMu.Lock()
	select {
	case e := <-h.done:
		h.exitMu.Unlock()
		fn(e)
		return
	default:
	}
	h.onExit = fn
	h.exitMu.Unlock()
}

// Signal sends sig to the process, or with group to every process of its cgroup
// or, without one, to its process group (-pgid) and its whole tree, escaped
// descendants included (tree_linux.go). A process or group already gone is not
// an error.
func (h *handle) Signal(sig syscall.Signal, group bool) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if sig == syscall.SIGKILL {
		h.killSent.Store(true)
	}
	if !group && sig == syscall.SIGKILL && h.groupSig.Load() != 0 {
		group = true // a group stop's kill is for the whole group (stop_as_group implies kill_as_group)
	}
	if group && h.drained {
		return nil // gone, cgroup and all
	}
	if group {
		h.groupSig.Store(int32(sig))
	}
	if group && h.cg != nil {
		if err := h.cg.signal(h, sig); err != nil {
			return fmt.Errorf("signal cgroup of %d: %w", h.pid, err)
		}
		return nil
	}
	if group {
		if err := h.signalTree(sig, false); err != nil {
			return fmt.Errorf("signal group %d: %w", h.pid, err)
		}
		return nil
	}
	if err := h.signalSelf(sig); err != nil {
		return fmt.Errorf("signal %d: %w", h.pid, err)
	}
	return nil
}

// StopSent marks sig, about to be sent to the process alone, as its stop's, ending in a
// SIGKILL after timeout (engine's stopMarker).
func (h *handle) StopSent(sig syscall.Signal, timeout time.Duration) {
	if sig != syscall.SIGKILL && h.stopSig.CompareAndSwap(0, int32(sig)) {
		h.stopBy.Store(time.Now().Add(timeout).UnixNano())
	}
}

// leftBehind says whether the reaped child left processes running: its cgroup holds
// some, or (process group mode) its tree does.
func (h *handle) leftBehind() bool {
	if h.cg != nil {
		return populated(filepath.Join(h.cg.dir, "cgroup.events")) != 0
	}
	if syscall.Kill(-h.pid, 0) == nil { // its process group (the pid is its id till it empties)
		return true
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.tree(freshScan())) > 0
}

// Continue sends SIGCONT after a stop signal (see engine's continuer), to the process or
// its group as the stop signal went. It leaves groupSig alone: the stop is what it was.
func (h *handle) Continue(group bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	switch {
	case group && h.drained:
		return
	case group && h.cg != nil:
		h.cg.signal(h, syscall.SIGCONT)
	case group:
		h.continueTree()
	}
	h.signalSelf(syscall.SIGCONT)
}

// signalSelf sends sig to the child itself, unless it is reaped (then it is gone,
// which is no error). The caller holds mu, shared: until the reap neither the pidfd
// nor the pid can stand for another process.
func (h *handle) signalSelf(sig syscall.Signal) error {
	if h.reaped {
		return nil
	}
	var err error
	if h.pidfd >= 0 {
		if _, _, e := syscall.Syscall6(sysPidfdSendSignal, uintptr(h.pidfd), uintptr(sig), 0, 0, 0, 0); e != 0 {
			err = e
		}
	} else {
		err = syscall.Kill(h.pid, sig)
	}
	if err == syscall.ESRCH { // exited, not yet reaped
		return nil
	}
	return err
}

// awaitGroup waits, once the child is reaped during a group stop, until the rest of
// its group (its cgroup, or its process group and tree) is gone too. A wrapper (sh -c
// "... && worker") dies at once on SIGTERM, while the worker it started finishes its
// task: the stop gives it stop_timeout, as it would the program itself, and the
// engine's SIGKILL at the end of that (kill_as_group) ends the wait; after a SIGKILL
// the wait lasts drainSync at most (a process stuck in D state).
func (h *handle) awaitGroup() { h.awaitGroupUntil(time.Time{}) }

// awaitGroupUntil is awaitGroup that, should no SIGKILL have come by deadline (not zero),
// sends it to the group itself.
func (h *handle) awaitGroupUntil(deadline time.Time) {
	var killed time.Time
	for pause := time.Millisecond; ; pause = min(2*pause, groupPoll) {
		if h.cg != nil {
			if waitEmpty(filepath.Join(h.cg.dir, "cgroup.events"), time.Now().Add(pause)) {
				return
			}
		} else {
			h.mu.RLock()
			left := len(h.tree(freshScan()))
			h.mu.RUnlock()
			// Its process group too: members the reap orphaned are no longer in its tree.
			if left == 0 && syscall.Kill(-h.pid, 0) != nil {
				return
			}
			time.Sleep(pause)
		}
		if !deadline.IsZero() && time.Now().After(deadline) && syscall.Signal(h.groupSig.Load()) != syscall.SIGKILL {
			h.Signal(syscall.SIGKILL, true) // the engine's never came (its stop cancelled)
		}
		if syscall.Signal(h.groupSig.Load()) == syscall.SIGKILL {
			if killed.IsZero() {
				killed = time.Now()
			} else if time.Since(killed) > drainSync {
				return
			}
		}
	}
}

// groupPoll bounds the pause between two looks at a stopping group: in process group
// mode each is a /proc scan, and a graceful stop may last minutes.
const groupPoll = 500 * time.Millisecond

// watch waits for the exit on the shared epoll waiter (reap_linux.go).
func (h *handle) watch(out *outputs) {
	logs.OnReadable(h.pidfd, func() { go h.exited(out) })
}

// exited runs when the pidfd is readable: it reaps the child and reports the exit.
// Only this goroutine closes the pidfd, under mu, so a Signal never uses a closed one.
func (h *handle) exited(out *outputs) {
	ws, exited, ok := reapNow(h.pidfd)
	if ok && !exited {
		h.watch(out)
		return
	}
	h.mu.Lock()
	syscall.Close(h.pidfd)
	h.pidfd = -1
	h.reaped = exited
	h.mu.Unlock()
	if !ok { // no waitid(P_PIDFD) (Linux 5.3): wait the ordinary way
		h.wait(out)
		return
	}
	h.report(ws, true, out)
}

// wait reaps the child in a thread blocked in wait4(2), where the kernel has no
// pollable pidfd. The exit is reported from wait, not from pipe EOF.
func (h *handle) wait(out *outputs) {
	var ws syscall.WaitStatus
	_, err := syscall.Wait4(h.pid, &ws, 0, nil)
	for err == syscall.EINTR {
		_, err = syscall.Wait4(h.pid, &ws, 0, nil)
	}
	h.mu.Lock()
	h.reaped = true
	h.mu.Unlock()
	h.report(ws, err == nil, out)
}

// report tells the engine of the exit once what the child left behind is dealt with.
func (h *handle) report(ws syscall.WaitStatus, ok bool, out *outputs) {
	forgetOwn(h.pid) // reaped: the pid may now be recycled
	groupKilled := false
	if sig := syscall.Signal(h.groupSig.Load()); sig != 0 {
		if h.cg == nil {
			// A descendant forked between the stop's /proc scan and the child's death
			// got nothing yet; those signalled already are not signalled twice (a
			// second SIGTERM or SIGINT cuts many programs' graceful exit short).
			h.mu.RLock()
			_ = h.signalTree(sig, true)
			h.mu.RUnlock()
		}
		h.awaitGroup()
		groupKilled = sig != syscall.SIGKILL && syscall.Signal(h.groupSig.Load()) == syscall.SIGKILL
	} else if sig := syscall.Signal(h.stopSig.Load()); sig != 0 && !h.killSent.Load() && h.leftBehind() {
		// Its stop's signal reached it alone, and it died of it leaving processes (a
		// wrapper that does not exec): they get that signal and the rest of
		// stop_timeout, as a group stop gives them, where they were SIGKILLed at once,
		// a server's drain cut short. The engine's SIGKILL at the end is then the
		// group's, as after a group stop.
		h.groupSig.Store(int32(sig))
		h.mu.RLock()
		if h.cg != nil {
			h.cg.signal(h, sig)
		} else {
			h.signalTree(sig, false) // its process group, and those of its tree that left it
		}
		h.mu.RUnlock()
		h.awaitGroupUntil(time.Unix(0, h.stopBy.Load()).Add(drainSync))
		groupKilled = syscall.Signal(h.groupSig.Load()) == syscall.SIGKILL
	}
	leftKilled := false
	if h.cg != nil { // what the program left behind dies with it
		empty, killed := h.cg.drain()
		if empty {
			h.mu.Lock()
			h.drained = true
			h.mu.Unlock()
			h.l.keep(h.name, h.cg)
		}
		leftKilled = killed
	}
	if h.cg == nil && h.groupSig.Load() == 0 {
		leftKilled = h.killLeftovers()
	}
	exit := engine.Exit{Code: -1, Time: time.Now(), GroupKilled: groupKilled, LeftKilled: leftKilled && !groupKilled}
	if ok {
		if ws.Signaled() {
			exit.Signal, exit.Core = ws.Signal(), ws.CoreDump()
		} else {
			exit.Code = ws.ExitStatus()
		}
	}
	out.settle()
	h.exitMu.Lock()
	fn := h.onExit
	if fn == nil {
		h.done <- exit // buffered: never blocks
	}
	h.exitMu.Unlock()
	if fn != nil {
		fn(exit)
	}
	close(h.finished)
}
