package engine

import (
	"errors"
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
		env := func(v string) func(*plan.Program) {
			return func(pr *plan.Program) { pr.Env = map[string]string{"V": v} }
		}
		r.apply(planOf(t, prog("a", startSecs(2), env("1")), prog("b", dependsOn("a"))))
		time.Sleep(time.Second)
		d := r.apply(planOf(t, prog("a", startSecs(2), env("2")), prog("b", dependsOn("a"))))
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
