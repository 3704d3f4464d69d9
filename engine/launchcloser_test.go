package engine

import (
	"context"
	"errors"
	"slices"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// closingLauncher records the LauncherCloser calls, and whether every process it
// started had exited by then (what a launcher that keeps per-process resources needs).
type closingLauncher struct {
	*fakeLauncher
	mu    sync.Mutex
	calls []string
}

func (l *closingLauncher) Forget(names ...string) {
	l.record("forget", names...)
}

func (l *closingLauncher) Close() { l.record("close") }

func (l *closingLauncher) record(what string, names ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	call := what
	for _, n := range names {
		call += " " + n
	}
	for _, n := range names {
		for _, h := range l.handles(n) {
			if h.mu.Lock(); !h.exited {
				call += " (" + n + " alive)"
			}
			h.mu.Unlock()
		}
	}
	if what == "close" {
		l.fakeLauncher.mu.Lock()
		all := slices.Clone(l.all)
		l.fakeLauncher.mu.Unlock()
		for _, h := range all {
			if h.mu.Lock(); !h.exited {
				call += " (" + h.name + " alive)"
			}
			h.mu.Unlock()
		}
	}
	l.calls = append(l.calls, call)
}

// closingRig is a rig whose launcher records the LauncherCloser calls.
func closingRig(t *testing.T) (*rig, *closingLauncher) {
	var cl *closingLauncher
	r := newRig(t, func(o *Options) {
		cl = &closingLauncher{fakeLauncher: o.Launcher.(*fakeLauncher)}
		o.Launcher = cl
	})
	return r, cl
}

func (l *closingLauncher) log() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// Apply tells the launcher which processes it removed, once they stopped (a changed
// process keeps its name and is not forgotten); Shutdown closes it once, after every
// exit, and not when it gives up early.
func TestLauncherCloserCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, cl := closingRig(t)
		r.l.ignore["stubborn"] = []syscall.Signal{syscall.SIGTERM}
		r.apply(planOf(t, prog("a"), prog("b"), prog("c"), prog("stubborn", stopTimeout(10*time.Second))))
		time.Sleep(2 * time.Second)
		r.apply(planOf(t, prog("a"), prog("b", func(pr *plan.Program) { pr.Command = []string{"/bin/b2"} }),
			prog("stubborn", stopTimeout(10*time.Second))))
		eq(t, "after the reload", cl.log(), []string{"forget c"})
		r.apply(planOf(t, prog("a"), prog("b", func(pr *plan.Program) { pr.Command = []string{"/bin/b2"} }),
			prog("stubborn", stopTimeout(10*time.Second))))
		eq(t, "after a reload that removes nothing", cl.log(), []string{"forget c"})

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := r.sup.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("first shutdown: %v", err)
		}
		eq(t, "after a shutdown that gave up", cl.log(), []string{"forget c"})
		r.shutdown()
		r.shutdown()
		eq(t, "after shutdown", cl.log(), []string{"forget c", "close"})
	})
}

// A removed program's exec probe ran its commands under ProbeName: the launcher
// forgets that name too (its kept cgroup); other probes start no process.
func TestLauncherForgetsExecProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, cl := closingRig(t)
		execProbe := func(pr *plan.Program) {
			pr.Ready = &plan.Probe{Kind: plan.ProbeExec, Command: []string{"/bin/check"},
				Interval: plan.Duration(time.Second), Timeout: plan.Duration(time.Minute)}
		}
		r.apply(planOf(t, prog("a"), prog("x", execProbe), prog("y", withProbe)))
		r.apply(planOf(t, prog("a")))
		eq(t, "after the removal", cl.log(), []string{"forget x y x/ready"})
		r.shutdown()
	})
}
