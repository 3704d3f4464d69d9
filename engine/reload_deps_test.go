package engine

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// A reload that restarts a dependency while a dependent waits for it: the dependent
// waits for the new process instead of giving up.
func TestLoopApplyKeepsPendingDependents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("a", startSecs(2), envV("1")), prog("b", dependsOn("a"))))
		time.Sleep(time.Second)
		d := r.apply(planOf(t, prog("a", startSecs(2), envV("2")), prog("b", dependsOn("a"))))
		if len(d.Changed) != 1 || d.Changed[0].Name != "a" {
			t.Fatalf("changed %+v", d.Changed)
		}
		time.Sleep(5 * time.Second)
		eq(t, "spawns", r.l.spawned(), []string{"0s a", "1s a", "3s b"})
		if st := r.status("b"); st.State != Running {
			t.Errorf("b is %v", st.State)
		}
		if v := r.l.last("a").spec.Program.Env["V"]; v != "2" {
			t.Errorf("a runs with V=%s", v)
		}
	})
}

// The same when the dependency is restarted by Restart while a Start of the dependent
// waits: Start targets whatever process the dependency is by then.
func TestLoopDependentWaitsAcrossRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("a", startSecs(2)), prog("b", manual, dependsOn("a"))))
		res := make(chan error, 1)
		go func() { res <- r.sup.Start(t.Context(), "b") }()
		time.Sleep(time.Second)
		if err := r.sup.Restart(t.Context(), "a"); err != nil {
			t.Fatal(err)
		}
		if err := <-res; err != nil {
			t.Errorf("start b: %v", err)
		}
		eq(t, "spawns", r.l.spawned(), []string{"0s a", "1s a", "3s b"})
	})
}

// A dependent whose own program is replaced by the reload drops its old wait: the new
// process (a new goroutine) is started by the reload instead, exactly once.
func TestLoopApplyReplacesWaitingDependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("a", startSecs(2)), prog("b", dependsOn("a"))))
		time.Sleep(time.Second)
		r.apply(planOf(t, prog("a", startSecs(2)), prog("b", dependsOn("a"), func(pr *plan.Program) {
			pr.Command = []string{"/opt/bin/b2"}
		})))
		time.Sleep(5 * time.Second)
		eq(t, "spawns", r.l.spawned(), []string{"0s a", "2s b"})
		if cmd := r.l.last("b").spec.Program.Command[0]; cmd != "/opt/bin/b2" {
			t.Errorf("b runs %s", cmd)
		}
	})
}

// A dependency that is stopped (not replaced) still fails its waiting dependents.
func TestLoopStoppedDependencyFailsDependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("a", startSecs(2)), prog("b", manual, dependsOn("a"))))
		res := make(chan error, 1)
		go func() { res <- r.sup.Start(t.Context(), "b") }()
		time.Sleep(time.Second)
		if err := r.sup.Stop(t.Context(), "a"); err != nil {
			t.Fatal(err)
		}
		if err := <-res; !errors.Is(err, ErrDependency) {
			t.Errorf("start b: %v, want ErrDependency", err)
		}
	})
}

// A reload that removes a dependent and changes its dependency stops the dependent
// first, then the dependency, and returns: the stop list is removed processes, then
// changed ones, not start order, and taken as such the two waited for each other.
func TestApplyRemovesDependentChangesDependency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("db", priority(1), envV("1")), prog("worker", priority(2), dependsOn("db"))))
		time.Sleep(2 * time.Second)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		d, err := r.sup.Apply(ctx, planOf(t, prog("db", priority(1), envV("2"))))
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		if len(d.Removed) != 1 || len(d.Changed) != 1 {
			t.Fatalf("delta %+v", d)
		}
		eq(t, "signals", r.l.lines("SIGTERM"), []string{"2s worker SIGTERM", "2s db SIGTERM"})
	})
}

// A dependent waiting for its dependency, both replaced by a reload: the dependent's
// stop finds it not started, and its dependency becomes ready while the reload still
// stops another program. The old dependent's start must not go ahead then: it would
// leave a child that nobody supervises next to its successor's.
func TestApplyRetiredDependentNeverStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.ignore["slow"] = []syscall.Signal{syscall.SIGTERM} // its stop takes stop_timeout
		progs := func(n string) *plan.Plan {
			return planOf(t, prog("db", priority(100), startSecs(1), envV(n)),
				prog("slow", priority(150), stopTimeout(2*time.Second), envV(n)),
				prog("worker", priority(200), dependsOn("db"), envV(n)))
		}
		r.apply(progs("1")) // db STARTING until 1 s; worker waits for it
		time.Sleep(500 * time.Millisecond)
		r.apply(progs("2")) // worker (not started), then slow (2 s), then db
		time.Sleep(10 * time.Second)
		var alive []int
		for _, h := range r.l.handles("worker") {
			h.mu.Lock()
			if !h.exited {
				alive = append(alive, h.pid)
			}
			h.mu.Unlock()
		}
		if len(alive) != 1 || r.status("worker").Pid != alive[0] || r.status("worker").State != Running {
			t.Errorf("worker children alive %v, status %+v", alive, r.status("worker"))
		}
		if v := r.l.last("worker").spec.Program.Env["V"]; v != "2" || len(r.l.handles("worker")) != 1 {
			t.Errorf("worker spawned %d times, last with V=%s", len(r.l.handles("worker")), v)
		}
	})
}

// A restart of a dependent and its dependency, while someone else stops the dependency
// after it started again (its probe not passed yet): the dependent's wait fails, and the
// restart returns. The restart's own "on its way" mark on the dependency used to last
// until the restart ended, which was waiting for the dependent: a hang.
func TestRestartWithDependencyStoppedMeanwhile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("db", withProbe), prog("web", dependsOn("db"))))
		time.Sleep(2 * time.Second) // db RUNNING, not ready: web waits
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		res := make(chan error, 1)
		go func() { res <- r.sup.Restart(ctx, "web", "db") }()
		time.Sleep(3 * time.Second) // db started again, web waiting for it
		if err := r.sup.Stop(t.Context(), "db"); err != nil {
			t.Fatalf("stop db: %v", err)
		}
		err := <-res
		if !errors.Is(err, ErrDependency) {
			t.Errorf("restart: %v, want a dependency error", err)
		}
	})
}
