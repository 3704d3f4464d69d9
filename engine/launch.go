package engine

import (
	"context"
	"io"
	"syscall"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// Spec is everything a Launcher needs to start one process.
type Spec struct {
	Program plan.Program
	Env     []string  // the final environment, KEY=VALUE
	Stdout  io.Writer // nil discards
	Stderr  io.Writer // nil discards; the same writer as Stdout with redirect_stderr
}

// Exit says how a process ended.
type Exit struct {
	Code   int            // exit status, or -1 when killed by a signal
	Signal syscall.Signal // the signal that killed it, or 0
	Core   bool           // killed by Signal, it dumped core
	// GroupKilled: the process went, but the rest of its group outlived the stop signal
	// and got SIGKILL (after stop_timeout).
	GroupKilled bool
	// LeftKilled: processes it left running when it went (a child in the background, an
	// orphan it made) were killed with it, as its cgroup or process group is emptied:
	// under supervisord they ran on, and nothing said where they went.
	LeftKilled bool
	Time       time.Time
}

// Handle is one started process.
type Handle interface {
	Pid() int
	// Signal sends sig to the process, or to its whole process group when group is true.
	Signal(sig syscall.Signal, group bool) error
	// Done delivers exactly one Exit when the process has been reaped, unless the
	// handle is also an exitNotifier and NotifyExit took it.
	Done() <-chan Exit
}

// exitNotifier is a Handle that can call fn with its exit instead of sending it on
// Done, so that nothing has to wait on Done. fn is called once and must not block.
type exitNotifier interface {
	NotifyExit(fn func(Exit))
}

// startTimer is a Handle that knows its process's start time as /proc/PID/stat shows
// it (clock ticks after boot), so the Recorder need not read it.
type startTimer interface {
	StartTicks() (uint64, bool)
}

// Launcher starts processes. The real one forks; tests use a fake.
type Launcher interface {
	Start(spec Spec) (Handle, error)
}

// LauncherCloser is a Launcher that keeps something for a process across its restarts
// (the real one: the process's empty cgroup). The Supervisor calls Forget with the
// processes that Apply removed, once they have stopped, and Close when Shutdown has
// stopped every process, before it returns.
type LauncherCloser interface {
	Launcher
	Forget(processes ...string)
	Close()
}

// Clock is the engine's view of time, so state-machine tests can run on a fake clock.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a stoppable pending call.
type Timer interface {
	Stop() bool
}

// Prober waits for a program's ready probe.
type Prober interface {
	// Ready blocks until pr.Ready passes (nil when pr.Ready is nil) or ctx ends. It
	// tells ProbeAttempts(ctx) each failed attempt.
	Ready(ctx context.Context, pr plan.Program) error
}

type attemptsKey struct{}

// WithProbeAttempts returns ctx carrying tell, which a Prober calls with each failed
// attempt's error: while a probe waits out its timeout, status shows why so far.
func WithProbeAttempts(ctx context.Context, tell func(error)) context.Context {
	return context.WithValue(ctx, attemptsKey{}, tell)
}

// ProbeAttempts is the tell WithProbeAttempts put in ctx, or one that does nothing.
func ProbeAttempts(ctx context.Context) func(error) {
	if tell, ok := ctx.Value(attemptsKey{}).(func(error)); ok {
		return tell
	}
	return func(error) {}
}

// LogOpener opens the writer for one log stream. The engine keeps a process's writers
// across restarts and closes them when the process is removed.
type LogOpener interface {
	Open(l *plan.Log) (io.WriteCloser, error)
}

// Usage is one monitoring sample of a process and of its whole tree.
type Usage struct {
	CPUPercent     float64
	RSSBytes       uint64
	TreeCPUPercent float64
	TreeRSSBytes   uint64
}

// Sampler measures running processes (gopsutil in production).
type Sampler interface {
	Sample(pid int) (Usage, error)
}

// MemberLister is a Handle that knows every process its program runs, those that left
// its tree included (a daemonizing double fork, re-parented away): its cgroup's.
type MemberLister interface {
	Members() []int
}

// GroupSampler is a BatchSampler that also adds to the tree of each pid of members the
// processes given for it (and their descendants): what memory_max weighs.
type GroupSampler interface {
	SampleGroups(pids []int, members map[int][]int) map[int]Usage
}

// BatchSampler is a Sampler that measures many processes in one pass over the
// system's process table, where Sample per pid would repeat that pass for each.
// The engine uses SampleAll when its Sampler has it: one call per round.
type BatchSampler interface {
	Sampler
	// SampleAll measures each pid and its tree; a pid that is gone is absent.
	SampleAll(pids []int) map[int]Usage
}

// Recorder is told of every pid the engine starts and reaps, so a later daemon can find
// processes left behind by one that died (the state file). Started is called before
// the process shows as started; Exited shortly after the exit, on a goroutine of its
// own (a respawn does not wait for it), all made before Shutdown returns. Calls are
// concurrent.
type Recorder interface {
	// Started's startTicks is the process's start time in /proc/PID/stat's terms, or
	// 0 when the launcher does not know it.
	Started(process string, pid int, startTicks uint64)
	Exited(process string, pid int)
}
