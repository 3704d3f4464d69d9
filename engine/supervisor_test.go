package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// Supervisor-level behaviour on fakes, in synctest bubbles: ordering, dependencies,
// Apply, Shutdown, logs, recorder, env and usage.

func TestLoopPriorityAndShutdownOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.l.ignore["d"] = []syscall.Signal{syscall.SIGTERM}
		r.apply(planOf(t, prog("c", priority(20)), prog("d", priority(30), stopTimeout(2*time.Second)),
			prog("a", priority(10)), prog("b", priority(20))))
		spawns := r.l.lines("spawn")
		if len(spawns) != 4 || !strings.Contains(spawns[0], " a ") || !strings.Contains(spawns[3], " d ") {
			t.Errorf("spawn order %q", spawns)
		}
		var names []string
		for _, s := range r.sup.Status() {
			names = append(names, s.Name)
		}
		eq(t, "status order", names, []string{"a", "b", "c", "d"})
		time.Sleep(2 * time.Second)
		r.shutdown()
		sigs := r.l.lines("SIG")
		eq(t, "d first", sigs[:2], []string{"2s d SIGTERM", "4s d SIGKILL"})
		mid := slices.Sorted(slices.Values(sigs[2:4]))
		eq(t, "then b and c together", mid, []string{"4s b SIGTERM", "4s c SIGTERM"})
		eq(t, "a last", sigs[4:], []string{"4s a SIGTERM"})
		for _, s := range r.sup.Status() {
			if s.State != Stopped {
				t.Errorf("%s is %v after shutdown", s.Name, s.State)
			}
		}
		if err := r.sup.Start(t.Context(), "a"); !errors.Is(err, ErrShutdown) {
			t.Errorf("start after shutdown: %v", err)
		}
	})
}

func TestLoopShutdownHoldsRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.l.behave["crash"] = exitAfter(0, 1)
		r.l.behave["spin"] = exitAfter(0, 1)
		r.apply(planOf(t, prog("crash"), prog("spin", startSecs(0))))
		time.Sleep(100 * time.Millisecond)
		r.shutdown()
		time.Sleep(time.Minute)
		eq(t, "spawns", r.l.spawned(), []string{"0s crash", "0s spin"})
	})
}

func TestLoopDependsOnWaitsForReadyProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.l.ignore["web"] = []syscall.Signal{syscall.SIGTERM}
		r.apply(planOf(t, prog("db", withProbe, priority(1)),
			prog("web", dependsOn("db"), stopTimeout(2*time.Second)), prog("other", priority(500))))
		time.Sleep(3 * time.Second)
		eq(t, "before the probe", r.l.lines("spawn"), []string{"0s db spawn 100", "0s other spawn 101"})
		if st := r.status("web"); st.State != Stopped {
			t.Errorf("web is %v", st.State)
		}
		close(r.probes.gate("db"))
		synctest.Wait()
		eq(t, "after", r.l.lines("web spawn"), []string{"3s web spawn 102"})
		time.Sleep(2 * time.Second)
		r.shutdown()
		eq(t, "stop order", r.l.lines("SIG"), []string{"5s web SIGTERM", "7s web SIGKILL", "7s other SIGTERM", "7s db SIGTERM"})
	})
}

// A stop while a start waits for its dependencies wins (supervisord S27): the stop
// answers stopped, the start abnormal termination, and the process never starts.
func TestLoopStopCancelsAWaitingStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("db", withProbe), prog("web", dependsOn("db")), prog("api", manual, dependsOn("db"))))
		started := make(chan error, 1)
		go func() { started <- r.sup.Start(t.Context(), "api") }()
		synctest.Wait()
		if err := r.sup.Stop(t.Context(), "web", "api"); err != nil {
			t.Errorf("stop of waiting starts: %v", err)
		}
		if err := <-started; !errors.Is(err, ErrAbnormalTermination) {
			t.Errorf("the stopped start answered %v", err)
		}
		close(r.probes.gate("db"))
		time.Sleep(5 * time.Second)
		eq(t, "spawns", r.l.lines("spawn"), []string{"0s db spawn 100"})
		if err := r.sup.Stop(t.Context(), "web"); !errors.Is(err, ErrNotRunning) {
			t.Errorf("a second stop: %v", err)
		}
		if err := r.sup.Start(t.Context(), "web"); err != nil {
			t.Errorf("a later start: %v", err)
		}
	})
}

func TestLoopDependsOnRunningWithoutProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.l.ignore["web"] = []syscall.Signal{syscall.SIGTERM}
		r.apply(planOf(t, prog("db", startSecs(2)), prog("web", dependsOn("db"), stopTimeout(2*time.Second))))
		time.Sleep(5 * time.Second)
		eq(t, "spawns", r.l.lines("spawn"), []string{"0s db spawn 100", "2s web spawn 101"})
		// Same priority: the dependent still stops (here: is killed) before db is signalled.
		r.shutdown()
		eq(t, "stop order", r.l.lines("SIG"), []string{"5s web SIGTERM", "7s web SIGKILL", "7s db SIGTERM"})
	})
}

func TestLoopDependencyFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["db"] = exitAfter(0, 1)
		r.apply(planOf(t, prog("db", manual, func(pr *plan.Program) { pr.StartRetries = 0 }),
			prog("web", manual, dependsOn("db"))))
		pes := ProcessErrors(r.sup.Start(t.Context(), "web", "db"))
		if len(pes) != 2 || pes[0].Name != "db" || !errors.Is(pes[0], ErrSpawn) ||
			pes[1].Name != "web" || !errors.Is(pes[1], ErrDependency) {
			t.Errorf("errors %v", pes)
		}
		eq(t, "spawns", r.l.lines("spawn"), []string{"0s db spawn 100"})
	})
}

// A dependent the daemon starts (at boot, on apply) waits on while its dependency is
// down for good, says so in status, and starts once the dependency is fixed and
// started; a client's start of it fails at once instead.
func TestLoopDependentWaitsForAFailedDependency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["db"] = exitAfter(0, 1)
		r.apply(planOf(t, prog("db", func(pr *plan.Program) { pr.StartRetries = 0 }), prog("web", dependsOn("db")),
			prog("api", dependsOn("web"))))
		time.Sleep(time.Second)
		if st := r.status("db"); st.State != Fatal {
			t.Fatalf("db is %v", st.State)
		}
		if d := r.status("web").Description; d != "Not started; waiting for db (FATAL)" {
			t.Errorf("web: %q", d)
		}
		if d := r.status("api").Description; d != "Not started; waiting for web (STOPPED, waiting for db (FATAL))" { // the cause, further down
			t.Errorf("api: %q", d)
		}
		if err := r.sup.Start(t.Context(), "api"); !errors.Is(err, ErrDependency) || !strings.Contains(err.Error(), "web is STOPPED, waiting for db (FATAL)") {
			t.Errorf("client start: %v", err)
		}
		synctest.Wait()
		delete(r.l.behave, "db") // fixed
		if err := r.sup.Start(t.Context(), "db"); err != nil {
			t.Fatalf("start db: %v", err)
		}
		time.Sleep(5 * time.Second)
		for _, n := range []string{"db", "web", "api"} {
			if st := r.status(n); st.State != Running || strings.Contains(st.Description, "waiting") {
				t.Errorf("%s: %v %q", n, st.State, st.Description)
			}
		}
	})
}

// A restart does not take down a process whose dependency will not get ready: its start
// would fail, leaving it stopped. It answers the dependency's error and runs on.
func TestLoopRestartKeepsAProcessWhoseDependencyFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("db", startSecs(0)), prog("web", dependsOn("db"), startSecs(0))))
		synctest.Wait()
		pid := r.status("web").Pid
		r.l.behave["db"] = exitAfter(0, 1)
		if err := r.sup.Stop(t.Context(), "db"); err != nil {
			t.Fatal(err)
		}
		if err := r.sup.Restart(t.Context(), "web"); !errors.Is(err, ErrDependency) {
			t.Errorf("restart: %v", err)
		}
		if st := r.status("web"); st.State != Running || st.Pid != pid {
			t.Errorf("web: %v pid %d, want still running as %d", st.State, st.Pid, pid)
		}
		synctest.Wait()
		delete(r.l.behave, "db")
		if err := r.sup.Restart(t.Context(), "web", "db"); err != nil {
			t.Errorf("restart with its dependency: %v", err) // both go: db first
		}
	})
}

// A restart that took a process down while its dependency was on its way, and then
// failed because the dependency failed, leaves it waiting for the dependency: it comes
// back once the dependency is fixed and started, instead of staying stopped for good.
func TestLoopRestartWaitsOnForAFailedDependency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("db", startSecs(2), func(pr *plan.Program) { pr.StartRetries = 0 }), prog("web", dependsOn("db"), startSecs(0))))
		time.Sleep(3 * time.Second)
		synctest.Wait()                              // the launcher is idle: its behaviours may change
		r.l.behave["db"] = exitAfter(time.Second, 1) // fails its next start
		go r.sup.Restart(t.Context(), "db")
		synctest.Wait() // db is STARTING: on its way
		if err := r.sup.Restart(t.Context(), "web"); !errors.Is(err, ErrDependency) {
			t.Errorf("restart web: %v", err)
		}
		synctest.Wait()
		if d := r.status("web").Description; !strings.HasSuffix(d, "waiting for db (FATAL)") {
			t.Errorf("web: %q", d)
		}
		synctest.Wait()
		delete(r.l.behave, "db")
		if err := r.sup.Start(t.Context(), "db"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if st := r.status("web"); st.State != Running {
			t.Errorf("web is %v: %q", st.State, st.Description)
		}
	})
}

// An Apply that replaces a process a client's start is waiting for (its dependency is
// not ready yet) starts the successor, and the client's start follows it.
func TestLoopApplyReplacesAWaitingStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("db", withProbe), prog("api", manual, dependsOn("db"))))
		started := make(chan error, 1)
		go func() { started <- r.sup.Start(t.Context(), "api") }()
		synctest.Wait()
		r.apply(planOf(t, prog("db", withProbe), prog("api", manual, dependsOn("db"), func(pr *plan.Program) { pr.Command = []string{"/opt/api2"} })))
		close(r.probes.gate("db"))
		if err := <-started; err != nil && !errors.Is(err, ErrAlreadyStarted) {
			t.Errorf("the client's start: %v", err)
		}
		time.Sleep(2 * time.Second)
		if st := r.status("api"); st.State != Running {
			t.Errorf("api is %v", st.State)
		}
		if cmd := r.l.last("api").spec.Program.Command[0]; cmd != "/opt/api2" {
			t.Errorf("api runs %s", cmd)
		}
		if n := len(r.l.lines("api spawn")); n != 1 {
			t.Errorf("%d api spawns, want 1", n)
		}
	})
}

// A client's stop that meets an apply replacing the same process wins: the process ends
// stopped, and the apply, which found it running, leaves its successor stopped.
func TestLoopStopDuringApplyReplacingIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.ignore["web"] = []syscall.Signal{syscall.SIGTERM} // its stops take stop_timeout
		r.apply(planOf(t, prog("web", startSecs(0))))
		synctest.Wait()
		applied := make(chan error, 1)
		go func() {
			_, err := r.sup.Apply(t.Context(), planOf(t, prog("web", startSecs(0), envV("2"))))
			applied <- err
		}()
		synctest.Wait() // the apply waits for web's stop
		stopped := make(chan error, 1)
		go func() { stopped <- r.sup.Stop(t.Context(), "web") }()
		synctest.Wait()
		time.Sleep(11 * time.Second) // past stop_timeout: SIGKILL
		if err := <-applied; err != nil {
			t.Fatalf("apply: %v", err)
		}
		if err := <-stopped; err != nil {
			t.Errorf("stop: %v", err)
		}
		synctest.Wait()
		if st := r.status("web"); st.State != Stopped {
			t.Errorf("web is %v after the stop", st.State)
		}
		// Its successor was not spawned only to be stopped (a second stop_timeout).
		if n := len(r.l.lines("web spawn")); n != 1 {
			t.Errorf("%d web spawns, want 1", n)
		}
	})
}

// A stop, signal or restart that began on the table an apply replaced follows each
// process to its successor, where it used to fail with "no such process".
func TestLoopCallsFollowReplacedProcesses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("web", startSecs(0))))
		synctest.Wait()
		old := r.sup.tab.Load()
		r.apply(planOf(t, prog("web", startSecs(0), envV("2"))))
		synctest.Wait()
		if errs := r.sup.signal(t.Context(), syscall.SIGUSR1, old, []int{0}); len(errs) != 0 {
			t.Errorf("signal: %v", errs)
		}
		if got := r.l.lines("web SIGUSR1"); len(got) != 1 {
			t.Errorf("signals: %q", got)
		}
		if errs := r.sup.stopFollowing(t.Context(), old, []int{0}); len(errs) != 0 {
			t.Errorf("stop: %v", errs)
		}
		if st := r.status("web"); st.State != Stopped {
			t.Errorf("web is %v after the stop", st.State)
		}
	})
}

// An apply that removes a process slow to stop and changes another stops the removed one
// first, while the changed one still runs: its restart comes late, but it is not down
// the whole stop_timeout, as when both were stopped together.
func TestLoopApplyStopsRemovedBeforeChanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.ignore["stuck"] = []syscall.Signal{syscall.SIGTERM}
		r.apply(planOf(t, prog("stuck", startSecs(0), stopTimeout(time.Hour)), prog("web", startSecs(0))))
		synctest.Wait()
		pid := r.status("web").Pid
		applied := make(chan error, 1)
		go func() {
			_, err := r.sup.Apply(t.Context(), planOf(t, prog("web", startSecs(0), envV("2"))))
			applied <- err
		}()
		time.Sleep(time.Minute)
		if st := r.status("web"); st.State != Running || st.Pid != pid {
			t.Errorf("web during the removed one's stop: %v pid %d (was %d)", st.State, st.Pid, pid)
		}
		time.Sleep(time.Hour) // stuck's stop_timeout: SIGKILL
		if err := <-applied; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := r.status("web"); st.State != Running || st.Pid == pid {
			t.Errorf("web after the apply: %v pid %d", st.State, st.Pid)
		}
	})
}

// stopStuck runs "stuck", which ignores SIGTERM, with stop_timeout d, and stops it: it
// stays STOPPING until the SIGKILL.
func stopStuck(t *testing.T, r *rig, d time.Duration) {
	r.l.ignore["stuck"] = []syscall.Signal{syscall.SIGTERM}
	r.apply(planOf(t, prog("stuck", startSecs(0), stopTimeout(d))))
	synctest.Wait()
	go r.sup.Stop(t.Context(), "stuck")
	synctest.Wait()
}

// Its two figures add up to the stop_timeout, whatever the fraction of a second: a 2 s
// one said "2s ago; SIGKILL in 1s" as the SIGKILL went.
func TestStoppingFiguresAddUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		stopStuck(t, r, 3*time.Second)
		// Whole seconds gone: 0.2 s after the stop read "1s ago; SIGKILL in 2s".
		time.Sleep(200 * time.Millisecond)
		if d := r.status("stuck").Description; d != "stop requested just now; SIGKILL in 3s" {
			t.Errorf("at 0.2s: %q", d)
		}
		time.Sleep(1400 * time.Millisecond) // 1.6 s
		if d := r.status("stuck").Description; d != "stop requested 1s ago; SIGKILL in 2s" {
			t.Errorf("at 1.6s: %q", d)
		}
		time.Sleep(900 * time.Millisecond) // 2.5 s
		if d := r.status("stuck").Description; d != "stop requested 2s ago; SIGKILL in 1s" {
			t.Errorf("at 2.5s: %q", d)
		}
		time.Sleep(time.Second)
	})
}

// A process stuck in STOPPING says since when, and when the SIGKILL comes.
func TestStoppingSaysWhenTheKillComes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		stopStuck(t, r, time.Minute)
		time.Sleep(12 * time.Second)
		if d := r.status("stuck").Description; d != "stop requested 12s ago; SIGKILL in 48s" {
			t.Errorf("description %q", d)
		}
		// A stop_timeout changed meanwhile (in place) is for the next stop: this one's
		// SIGKILL comes as armed, and the description says so.
		r.apply(planOf(t, prog("stuck", startSecs(0), stopTimeout(time.Hour))))
		time.Sleep(time.Second)
		if d := r.status("stuck").Description; d != "stop requested 13s ago; SIGKILL in 47s" {
			t.Errorf("description after the change %q", d)
		}
	})
}

// proberFunc is a Prober answering at once.
type proberFunc func(pr plan.Program) error

func (f proberFunc) Ready(_ context.Context, pr plan.Program) error { return f(pr) }

// An apply that changes only the ready probe of a running process runs the new probe:
// one that fixes a probe which gave up lets the waiting dependents start, no restart.
func TestLoopApplyRerunsAChangedProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, func(o *Options) {
			o.Prober = proberFunc(func(pr plan.Program) error {
				if pr.Ready.Port == 1 {
					return errors.New("connection refused")
				}
				return nil
			})
		})
		defer r.shutdown()
		probe := func(port int) func(*plan.Program) {
			return func(pr *plan.Program) { pr.Ready = &plan.Probe{Kind: plan.ProbeTCP, Host: "127.0.0.1", Port: port} }
		}
		r.apply(planOf(t, prog("db", probe(1), startSecs(0)), prog("web", dependsOn("db"), startSecs(0))))
		synctest.Wait()
		if st := r.status("web"); st.State != Stopped || st.Blocked == "" {
			t.Fatalf("web: %v %q", st.State, st.Blocked)
		}
		pid := r.status("db").Pid
		d := r.apply(planOf(t, prog("db", probe(2), startSecs(0)), prog("web", dependsOn("db"), startSecs(0))))
		if len(d.Updated) != 1 || d.Updated[0].Name != "db" || len(d.Changed) != 0 {
			t.Errorf("delta %+v", d)
		}
		synctest.Wait()
		if st := r.status("db"); !st.Ready || st.Pid != pid {
			t.Errorf("db: ready %v pid %d (was %d)", st.Ready, st.Pid, pid)
		}
		if st := r.status("web"); st.State != Running {
			t.Errorf("web is %v", st.State)
		}
	})
}

func TestLoopApply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		logTo := func(path string) func(*plan.Program) {
			return func(pr *plan.Program) { pr.Stdout = plan.DefaultLog(path) }
		}
		r.apply(planOf(t, prog("a"), prog("b", logTo("/srv/log/b.log")), prog("c", logTo("/srv/log/c.log")),
			prog("m", manual)))
		time.Sleep(2 * time.Second)
		pidA := r.status("a").Pid
		p2 := planOf(t,
			prog("a", priority(5)), // ordering only: untouched
			prog("b", logTo("/srv/log/b.log"), func(pr *plan.Program) { pr.Command = []string{"/opt/bin/b2"} }),
			prog("d"), prog("m", manual))
		d := r.apply(p2)
		eq(t, "added", d.Added, []string{"d"})
		eq(t, "removed", d.Removed, []string{"c"})
		eq(t, "unchanged", d.Unchanged, []string{"a", "m"})
		if len(d.Changed) != 1 || d.Changed[0].Name != "b" {
			t.Errorf("changed %+v", d.Changed)
		}
		synctest.Wait()
		eq(t, "signals", slices.Sorted(slices.Values(r.l.lines("SIG"))), []string{"2s b SIGTERM", "2s c SIGTERM"})
		eq(t, "spawns", r.l.spawned(), []string{"0s a", "0s b", "0s c", "2s b", "2s d"})
		if a := r.status("a"); a.Pid != pidA || a.State != Running {
			t.Errorf("a: pid %d %v, want the first pid, still running", a.Pid, a.State)
		}
		if cmd := r.l.last("b").spec.Program.Command[0]; cmd != "/opt/bin/b2" {
			t.Errorf("b runs %s", cmd)
		}
		if o, c := r.logs.counts("/srv/log/c.log"); o != 1 || c != 1 {
			t.Errorf("c.log opened %d closed %d", o, c)
		}
		if o, c := r.logs.counts("/srv/log/b.log"); o != 2 || c != 1 {
			t.Errorf("b.log opened %d closed %d", o, c)
		}
		var names []string
		for _, s := range r.sup.Status() {
			names = append(names, s.Name)
		}
		eq(t, "status", names, []string{"a", "b", "d", "m"})
		if r.sup.Plan() != p2 {
			t.Error("Plan() is not the applied plan")
		}
		if d := r.apply(p2); !d.Empty() {
			t.Errorf("re-apply: %+v", d)
		}
		if st := r.status("m"); st.State != Stopped {
			t.Errorf("manual program %v", st.State)
		}
		// A log's rotation settings alone: taken by the open writer, no restart.
		bigger := func(pr *plan.Program) { pr.Stdout = plan.DefaultLog("/srv/log/b.log"); pr.Stdout.MaxBytes = 1 << 30 }
		d = r.apply(planOf(t, prog("a", priority(5)), prog("b", bigger, func(pr *plan.Program) { pr.Command = []string{"/opt/bin/b2"} }),
			prog("d"), prog("m", manual)))
		if len(d.Changed) != 0 || len(d.Updated) != 1 || d.Updated[0].Name != "b" {
			t.Errorf("rotation delta %+v", d)
		}
		synctest.Wait()
		r.logs.mu.Lock()
		if got := r.logs.tuned["/srv/log/b.log"]; got.MaxBytes != 1<<30 {
			t.Errorf("b.log retuned to %+v", got)
		}
		r.logs.mu.Unlock()
		// autostart alone restarts nothing: a, turned off, runs on; m, turned on, starts.
		b2 := func(pr *plan.Program) { pr.Command = []string{"/opt/bin/b2"} }
		d = r.apply(planOf(t, prog("a", priority(5), manual), prog("b", bigger, b2), prog("d"), prog("m")))
		if len(d.Changed) != 0 || len(d.Updated) != 2 {
			t.Errorf("autostart delta %+v", d)
		}
		synctest.Wait()
		eq(t, "spawns after autostart", r.l.spawned(), []string{"0s a", "0s b", "0s c", "2s b", "2s d", "2s m"})
		if a := r.status("a"); a.Pid != pidA || a.State != Running {
			t.Errorf("a: pid %d %v, want the first pid, still running", a.Pid, a.State)
		}
	})
}

func TestLoopLogsAndRecorder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.l.behave["w"] = exitAfter(2*time.Second, 0)
		r.apply(planOf(t,
			prog("w", autorestart(plan.RestartAlways), func(pr *plan.Program) {
				pr.Stdout, pr.Stderr = plan.DefaultLog("/srv/log/w.log"), plan.DefaultLog("/srv/log/w.err")
			}),
			prog("r", func(pr *plan.Program) {
				pr.Stdout, pr.RedirectStderr = plan.DefaultLog("/srv/log/r.log"), true
			}),
			prog("quiet")))
		time.Sleep(5 * time.Second)
		for _, p := range []string{"/srv/log/w.log", "/srv/log/w.err", "/srv/log/r.log"} {
			if o, c := r.logs.counts(p); o != 1 || c != 0 {
				t.Errorf("%s: opened %d closed %d", p, o, c)
			}
		}
		w, rr, q := r.l.last("w").spec, r.l.last("r").spec, r.l.last("quiet").spec
		if w.Stdout == nil || w.Stderr == nil || w.Stdout == w.Stderr {
			t.Error("w: want separate stdout and stderr writers")
		}
		if rr.Stdout == nil || rr.Stdout != rr.Stderr {
			t.Error("r: redirect_stderr wants one writer for both")
		}
		if q.Stdout != nil || q.Stderr != nil {
			t.Error("quiet: no log means discard (nil)")
		}
		r.shutdown()
		if o, c := r.logs.counts("/srv/log/r.log"); o != 1 || c != 1 {
			t.Errorf("r.log after shutdown: opened %d closed %d", o, c)
		}
		var got, want []string
		for _, s := range r.rec.log {
			if strings.Fields(s)[1] == "w" {
				got = append(got, s)
			}
		}
		for _, h := range r.l.handles("w") {
			want = append(want, fmt.Sprintf("started w %d @%d", h.pid, h.pid*10), fmt.Sprintf("exited w %d", h.pid))
		}
		if len(want) != 6 {
			t.Errorf("w spawned %d times by 5s, want 3 (at 0s, 2s, 4s)", len(want)/2)
		}
		// Every start and exit recorded; an exit after its start, starts in order (exits
		// are recorded from a goroutine of their own, so they may trail the next start).
		eq(t, "recorder", slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want)))
		for i := 0; i+1 < len(want); i += 2 {
			if slices.Index(got, want[i]) > slices.Index(got, want[i+1]) {
				t.Errorf("%q recorded after %q: %q", want[i+1], want[i], got)
			}
			if i+2 < len(want) && slices.Index(got, want[i]) > slices.Index(got, want[i+2]) {
				t.Errorf("starts out of order: %q", got)
			}
		}
	})
}

func TestLoopSpecEnv(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("e", func(pr *plan.Program) {
			pr.InheritEnv, pr.Env = false, map[string]string{"A": "1"}
		})))
		// The daemon's PATH, which found the command: sh -c "python3 ..." found nothing.
		eq(t, "env", r.l.last("e").spec.Env, []string{"PATH=" + cmp.Or(os.Getenv("PATH"), DefaultPath), "A=1", "STARVISOR_PROCESS_NAME=e",
			"STARVISOR_PROCESS_NUM=0", "STARVISOR_GROUP_NAME=e"})
		r.apply(planOf(t, prog("e", func(pr *plan.Program) {
			pr.InheritEnv, pr.Env = false, map[string]string{"PATH": "/opt/bin"} // its own
		})))
		eq(t, "env", r.l.last("e").spec.Env, []string{"PATH=/opt/bin", "STARVISOR_PROCESS_NAME=e",
			"STARVISOR_PROCESS_NUM=0", "STARVISOR_GROUP_NAME=e"})
	})
}

func TestLoopUsage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, func(o *Options) { o.Sampler = fakeSampler{} })
		defer r.shutdown()
		r.apply(planOf(t, prog("a"), prog("b", manual)))
		time.Sleep(2500 * time.Millisecond)
		r.sup.Status()  // nothing sampled yet: this asks for a sample
		synctest.Wait() // and the sampler takes it
		if u := r.status("a").Usage; u.CPUPercent != 100 || u.RSSBytes != 100<<20 {
			t.Errorf("a usage %+v", u)
		}
		if u := r.status("b").Usage; u != (Usage{}) {
			t.Errorf("b (stopped) usage %+v", u)
		}
	})
}

func TestLoopRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("a"), prog("b", manual)))
		time.Sleep(2 * time.Second)
		if err := r.sup.Restart(t.Context(), "a", "b"); err != nil {
			t.Fatal(err)
		}
		eq(t, "spawns", r.l.spawned(), []string{"0s a", "2s a", "2s b"})
		if a, b := r.status("a"), r.status("b"); a.State != Running || b.State != Running || r.since() != 3*time.Second {
			t.Errorf("at %v: a %v b %v", r.since(), a.State, b.State)
		}
	})
}

// A Shutdown whose context ends first reports it and leaves the process supervised; the
// next call finishes the job.
func TestShutdownResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.l.ignore["stubborn"] = []syscall.Signal{syscall.SIGTERM}
		r.apply(planOf(t, prog("stubborn", stopTimeout(10*time.Second))))
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		if err := r.sup.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("first shutdown: %v", err)
		}
		if st := r.status("stubborn"); st.State != Stopping {
			t.Errorf("after the first shutdown: %v", st.State)
		}
		r.shutdown()
		if r.since() != 10*time.Second {
			t.Errorf("second shutdown returned at %v, want 10s (SIGKILL)", r.since())
		}
		eq(t, "signals", r.l.lines("SIG"), []string{"0s stubborn SIGTERM", "10s stubborn SIGKILL"})
		r.shutdown() // a no-op now
	})
}

// A shutdown asked while an apply stops the old versions starts none of the new ones
// (they were spawned only to be stopped again, each stop waited out twice); the apply
// says the daemon is shutting down.
func TestShutdownDuringApplyStartsNothingNew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.l.ignore["slow"] = []syscall.Signal{syscall.SIGTERM}
		r.apply(planOf(t, prog("slow", stopTimeout(2*time.Second), startSecs(0)), prog("app", startSecs(0))))
		applied := make(chan error, 1)
		go func() {
			_, err := r.sup.Apply(t.Context(), planOf(t, prog("slow", stopTimeout(2*time.Second), startSecs(0), envV("2")), prog("app", startSecs(0), envV("2"))))
			applied <- err
		}()
		time.Sleep(500 * time.Millisecond) // slow is stopping: 1.5 s to its SIGKILL
		// What Shutdown does first, before it waits for the apply's lock (a goroutine
		// blocked on a mutex would stop this bubble's clock).
		r.sup.close()
		if err := <-applied; !errors.Is(err, ErrShutdown) {
			t.Errorf("apply: %v, want ErrShutdown", err)
		}
		if r.since() != 2*time.Second {
			t.Errorf("apply returned at %v, want 2s: once slow was stopped", r.since())
		}
		r.shutdown()
		eq(t, "spawns", slices.Sorted(slices.Values(r.l.spawned())), []string{"0s app", "0s slow"}) // none at 2s
	})
}

// Kill SIGKILLs every live process's group at once, counts them, and holds them: no
// restart follows, and a stopped process is neither signalled nor counted.
func TestKillSignalsEveryLiveGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.apply(planOf(t, prog("a"), prog("b"), prog("c")))
		time.Sleep(2 * time.Second) // past start_secs: RUNNING
		if err := r.sup.Stop(t.Context(), "c"); err != nil {
			t.Fatal(err)
		}
		if n := r.sup.Kill(t.Context()); n != 2 {
			t.Errorf("Kill signalled %d, want 2", n)
		}
		time.Sleep(time.Minute)
		kills := slices.Sorted(slices.Values(r.l.lines("SIGKILL")))
		eq(t, "kills", kills, []string{"2s a SIGKILL group", "2s b SIGKILL group"})
		eq(t, "spawns", r.l.spawned(), []string{"0s a", "0s b", "0s c"})
		r.shutdown()
	})
}

// A RUNNING process whose ready probe has not passed says so in its description (why its
// dependents wait), and OnReady hears each result: passed, or given up with why.
func TestReadinessInStatusAndOnReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		probes := &timedProber{fakeProber{gates: map[string]chan struct{}{}, fails: map[string]string{"cache": "connection refused"}}}
		var mu sync.Mutex
		var heard []string
		r := newRig(t, func(o *Options) {
			o.Prober = probes
			o.OnReady = func(process string, err error, _ time.Time) {
				mu.Lock()
				defer mu.Unlock()
				heard = append(heard, fmt.Sprintf("%s %v", process, err))
			}
		})
		slow := func(pr *plan.Program) { pr.Ready.Timeout = plan.Duration(10 * time.Second) }
		r.apply(planOf(t, prog("db", withProbe, slow, startSecs(0)), prog("cache", withProbe, slow, startSecs(0)), prog("plain", startSecs(0)),
			prog("warm", withProbe, slow, startSecs(2))))
		probes.open("warm") // passes while STARTING: told once RUNNING, 2s later
		synctest.Wait()
		// While probing, with the last failed attempt once there is one: why it waits.
		for name, want := range map[string]string{"db": "; not ready yet", "cache": "; not ready yet (last try: connection refused)"} {
			if d := r.status(name).Description; !strings.HasSuffix(d, want) {
				t.Errorf("%s while probing: %q, want it to end with %q", name, d, want)
			}
		}
		if st := r.status("plain"); strings.Contains(st.Description, "ready") || !st.Ready {
			t.Errorf("plain has no probe, is RUNNING: %q, ready %v", st.Description, st.Ready)
		}
		if r.status("db").Ready {
			t.Error("db ready before its probe passed")
		}
		probes.open("db")
		synctest.Wait()
		if st := r.status("db"); strings.Contains(st.Description, "ready") || !st.Ready {
			t.Errorf("db once ready: %q, ready %v", st.Description, st.Ready)
		}
		time.Sleep(11 * time.Second) // cache's probe gives up
		synctest.Wait()
		if d := r.status("cache").Description; !strings.HasSuffix(d, "; not ready: timed out") {
			t.Errorf("cache after its probe gave up: %q", d)
		}
		r.shutdown()
		mu.Lock()
		defer mu.Unlock()
		eq(t, "heard", heard, []string{"db <nil>", "warm <nil>", "cache timed out"})
	})
}

// ReopenLogs asks every process's log writers to open their files again by name
// (SIGUSR2): each writer once, a shared stdout/stderr writer included.
func TestReopenLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.apply(planOf(t,
			prog("w", func(pr *plan.Program) {
				pr.Stdout, pr.Stderr = plan.DefaultLog("/srv/log/w.log"), plan.DefaultLog("/srv/log/w.err")
			}),
			prog("r", func(pr *plan.Program) {
				pr.Stdout, pr.RedirectStderr = plan.DefaultLog("/srv/log/r.log"), true
			}),
			prog("quiet")))
		time.Sleep(2 * time.Second)
		r.sup.ReopenLogs()
		synctest.Wait()
		r.logs.mu.Lock()
		got := maps.Clone(r.logs.reopens)
		r.logs.mu.Unlock()
		want := map[string]int{"/srv/log/w.log": 1, "/srv/log/w.err": 1, "/srv/log/r.log": 1}
		if !maps.Equal(got, want) {
			t.Errorf("reopens %v, want %v", got, want)
		}
		r.shutdown()
	})
}

// A start_secs changed in place while a process is STARTING is for the next start: this
// one is judged by the start_secs its timer was armed with (an exit at 3 s of 5 is a
// failed start, though the new value is 1 s).
func TestStartSecsChangedWhileStartingIsForTheNextStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["slow"] = exitAfter(3*time.Second, 1)
		r.apply(planOf(t, prog("slow", startSecs(5), func(pr *plan.Program) { pr.StartRetries = 0 })))
		time.Sleep(time.Second)
		r.apply(planOf(t, prog("slow", startSecs(1), func(pr *plan.Program) { pr.StartRetries = 0 })))
		time.Sleep(3 * time.Second)
		if st := r.status("slow"); st.State != Fatal || !strings.HasPrefix(st.Description, "Exited too quickly") {
			t.Errorf("slow: %v %q, want FATAL: exited too quickly", st.State, st.Description)
		}
	})
}

// A STARTING process shows its pid and how far into start_secs it is (supervisord
// leaves it empty).
func TestStartingSaysItsPid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("web", startSecs(5))))
		synctest.Wait()
		time.Sleep(2 * time.Second)
		st := r.status("web")
		if want := fmt.Sprintf("pid %d, up 2s of start_secs 5s", st.Pid); st.State != Starting || st.Description != want {
			t.Errorf("%v %q, want STARTING %q", st.State, st.Description, want)
		}
	})
}

// A start waiting for STARTING to end, cut short by someone else's restart, is answered
// as the restart's start is (supervisorctl's waiting start says "started"): it said
// "abnormal termination" of a process that came back RUNNING. A stop's cut stands.
func TestStartFollowsARestartOfItsProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("slow", manual, startSecs(5))))
		started := make(chan error, 1)
		go func() { started <- r.sup.Start(t.Context(), "slow") }()
		time.Sleep(1500 * time.Millisecond)
		if err := r.sup.Restart(t.Context(), "slow"); err != nil {
			t.Fatalf("restart: %v", err)
		}
		if err := <-started; err != nil {
			t.Errorf("the start cut short by a restart answered %v", err)
		}
		if st := r.status("slow"); st.State != Running {
			t.Errorf("slow is %v", st.State)
		}
		r.sup.Stop(t.Context(), "slow")
		go func() { started <- r.sup.Start(t.Context(), "slow") }()
		time.Sleep(time.Second)
		r.sup.Stop(t.Context(), "slow")
		if err := <-started; !errors.Is(err, ErrAbnormalTermination) {
			t.Errorf("the start cut short by a stop answered %v", err)
		}
	})
}
