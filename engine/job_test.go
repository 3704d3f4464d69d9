package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

func job(pr *plan.Program) { pr.Ready = &plan.Probe{Kind: plan.ProbeExited} }

// A job (ready = probe.exited()) is ready once it exited with an expected code: its
// dependent starts after the exit, not when the job runs; a quick success is EXITED,
// not "exited too quickly"; and the dependent can be restarted later while the job
// stays done.
func TestJobGatesItsDependentsUntilDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var ready []string
		r := newRig(t, func(o *Options) {
			o.OnReady = func(name string, err error, _ time.Time) { mu.Lock(); ready = append(ready, name); mu.Unlock() }
		})
		defer r.shutdown()
		r.l.behave["migrate"] = exitAfter(300*time.Millisecond, 0)
		r.apply(planOf(t, prog("migrate", job), prog("app", dependsOn("migrate"))))
		time.Sleep(5 * time.Second)
		eq(t, "spawns", r.l.lines("spawn"), []string{"0s migrate spawn 100", "300ms app spawn 101"})
		eq(t, "migrate", r.eventsOf("migrate"), []string{"0s STOPPED>STARTING", "300ms STARTING>RUNNING", "300ms RUNNING>EXITED"})
		if st := r.status("migrate"); st.State != Exited || !st.Ready {
			t.Errorf("migrate: %v ready %v", st.State, st.Ready)
		}
		mu.Lock()
		eq(t, "OnReady", ready, []string{"migrate"})
		mu.Unlock()
		if err := r.sup.Restart(t.Context(), "app"); err != nil {
			t.Errorf("restart app with its job done: %v", err)
		}
	})
}

// A job that fails is retried as any program (here once), and its dependent does not
// start; a client's start of the dependent says why.
func TestFailedJobBlocksItsDependents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["migrate"] = exitAfter(300*time.Millisecond, 1)
		r.apply(planOf(t, prog("migrate", job, func(pr *plan.Program) { pr.StartRetries = 1 }),
			prog("app", dependsOn("migrate"))))
		time.Sleep(5 * time.Second)
		eq(t, "spawns", r.l.lines("spawn"), []string{"0s migrate spawn 100", "1.3s migrate spawn 101"})
		if st := r.status("migrate"); st.State != Fatal || st.Ready {
			t.Errorf("migrate: %v ready %v", st.State, st.Ready)
		}
		if d := r.status("app").Description; d != "Not started; waiting for migrate (FATAL)" {
			t.Errorf("app: %q", d)
		}
		if err := r.sup.Start(t.Context(), "app"); !errors.Is(err, ErrDependency) {
			t.Errorf("start app: %v", err)
		}
	})
}

// A process that will not start behind a failed dependency is said as it happens (the
// foreground up fell silent after the job's FATAL), once, with the cause further down
// the chain: a dependent of a blocked dependent names the failure it waits on.
func TestBlockedDependentsAreTold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var told []string
		r := newRig(t, func(o *Options) {
			o.OnBlocked = func(process, why string) {
				mu.Lock()
				told = append(told, process+": "+why)
				mu.Unlock()
			}
		})
		defer r.shutdown()
		r.l.behave["migrate"] = exitAfter(300*time.Millisecond, 1)
		r.apply(planOf(t, prog("migrate", job, func(pr *plan.Program) { pr.StartRetries = 0 }),
			prog("api", dependsOn("migrate")), prog("frontend", dependsOn("api"))))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		mu.Lock()
		eq(t, "told", told, []string{"api: waiting for migrate (FATAL)", "frontend: waiting for api (STOPPED, waiting for migrate (FATAL))"})
		mu.Unlock()
		if d := r.status("frontend").Description; d != "Not started; waiting for api (STOPPED, waiting for migrate (FATAL))" {
			t.Errorf("frontend: %q", d)
		}
	})
}

// A start of a process already running answers "already started" even when one of its
// dependencies is down meanwhile (it answered "dependency not ready").
func TestStartOfRunningDependentIsAlreadyStarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("db", startSecs(0)), prog("web", startSecs(0), dependsOn("db"))))
		time.Sleep(time.Second)
		if err := r.sup.Stop(t.Context(), "db"); err != nil {
			t.Fatal(err)
		}
		if err := r.sup.Start(t.Context(), "web"); !errors.Is(err, ErrAlreadyStarted) {
			t.Errorf("start web: %v, want already started", err)
		}
	})
}

// A group() stops as one: its members are signalled together, whatever their own
// priorities, so one slow to stop does not hold the others up (supervisord: "inside a
// group all members are signalled together"); groups still stop one at a time.
func TestGroupMembersStopTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.l.ignore["web"] = []syscall.Signal{syscall.SIGTERM}
		r.l.ignore["cache"] = []syscall.Signal{syscall.SIGTERM}
		member := func(g string) func(*plan.Program) { return func(pr *plan.Program) { pr.Group = g } }
		p := &plan.Plan{Root: "/srv", Entry: "deploy.star", Programs: []plan.Program{
			prog("cache", priority(900), stopTimeout(time.Second)),
			prog("web", member("site"), stopTimeout(2*time.Second)),
			prog("api", member("site"), priority(100)),
			prog("db", priority(100)),
		}, Groups: []plan.Group{{Name: "site", Programs: []string{"web", "api"}, Priority: 500}}}
		if err := p.Finish(); err != nil {
			t.Fatal(err)
		}
		r.apply(p)
		time.Sleep(5 * time.Second)
		r.shutdown()
		// Sorted: signals of one instant come in any order.
		eq(t, "stop order", slices.Sorted(slices.Values(r.l.lines("SIG"))), []string{
			"5s cache SIGTERM", "6s api SIGTERM", "6s cache SIGKILL", "6s web SIGTERM", "8s db SIGTERM", "8s web SIGKILL"})
	})
}

// Status counts the spawns the daemon made by itself since the last start asked for:
// a program crashing every 2 s shows 4 after 9 s; a restart asked for counts anew.
func TestStatusCountsRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["flaky"] = exitAfter(2*time.Second, 1)
		r.apply(planOf(t, prog("flaky")))
		time.Sleep(9 * time.Second)
		if n := r.status("flaky").Restarts; n != 4 {
			t.Errorf("restarts %d after 9 s, want 4", n)
		}
		if err := r.sup.Restart(t.Context(), "flaky"); err != nil {
			t.Fatal(err)
		}
		if n := r.status("flaky").Restarts; n != 0 {
			t.Errorf("restarts %d after a restart asked for, want 0", n)
		}
	})
}

// A job run again (restart of it and its dependent, restart all) gates its dependent
// anew: the dependent started at once, on the last run's success.
func TestJobRunAgainGatesItsDependents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["migrate"] = exitAfter(2*time.Second, 0)
		r.apply(planOf(t, prog("migrate", job), prog("app", dependsOn("migrate"), startSecs(0))))
		time.Sleep(5 * time.Second)
		if err := r.sup.Restart(t.Context(), "migrate", "app"); err != nil {
			t.Fatalf("restart: %v", err)
		}
		time.Sleep(5 * time.Second)
		eq(t, "spawns", r.l.lines("spawn"), []string{"0s migrate spawn 100", "2s app spawn 101", "5s migrate spawn 102", "7s app spawn 103"})
	})
}

// A job running says it is not done yet: its dependents wait for its exit, and status
// showed nothing where a program with a pending probe says "not ready yet".
func TestRunningJobSaysNotDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["migrate"] = exitAfter(5*time.Second, 0)
		r.apply(planOf(t, prog("migrate", job, startSecs(0))))
		time.Sleep(time.Second)
		// STARTING until it exits: its exit is its success.
		if st := r.status("migrate"); st.State != Starting || st.Description != "pid 100, uptime 0:00:01; a job, not done yet" {
			t.Errorf("migrate: %v %q", st.State, st.Description)
		}
		time.Sleep(5 * time.Second)
		if st := r.status("migrate"); st.State != Exited || !strings.HasSuffix(st.Description, "; done") {
			t.Errorf("migrate: %v %q", st.State, st.Description)
		}
		// Done with another of its exit_codes: which is said.
		r.l.behave["again"] = exitAfter(time.Second, 2)
		r.apply(planOf(t, prog("migrate", job, startSecs(0)), prog("again", job, startSecs(0), func(pr *plan.Program) { pr.ExitCodes = []int{0, 2} })))
		time.Sleep(2 * time.Second)
		if st := r.status("again"); st.State != Exited || !strings.HasSuffix(st.Description, "; done (exit status 2)") {
			t.Errorf("again: %v %q", st.State, st.Description)
		}
	})
}

// A job that fails after start_secs is a failed attempt all the same: it backs off and
// ends FATAL after start_retries, saying how it exited, where it was run again at once,
// for ever, as a service that had been RUNNING. A start by hand says the job failed.
func TestLongFailingJobEndsFatal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["migrate"] = exitAfter(1500*time.Millisecond, 3)
		r.apply(planOf(t, prog("migrate", job, func(pr *plan.Program) { pr.StartRetries = 2 })))
		time.Sleep(time.Minute)
		eq(t, "spawns", r.l.lines("spawn"), []string{"0s migrate spawn 100", "2.5s migrate spawn 101", "6s migrate spawn 102"})
		st := r.status("migrate")
		if st.State != Fatal || st.Description != "exit status 3; not expected" {
			t.Errorf("migrate: %v %q", st.State, st.Description)
		}
		if err := r.sup.Start(t.Context(), "migrate"); !errors.Is(err, ErrJobFailed) || !strings.HasSuffix(err.Error(), "job failed: exit status 3; not expected") {
			t.Errorf("start: %v", err)
		}
	})
}

// A job with autorestart = False runs once: a failure is FATAL at once, no retry.
func TestJobWithoutAutorestartRunsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["migrate"] = exitAfter(100*time.Millisecond, 1)
		r.apply(planOf(t, prog("migrate", job, autorestart(plan.RestartNever))))
		time.Sleep(time.Minute)
		eq(t, "spawns", r.l.lines("spawn"), []string{"0s migrate spawn 100"})
		eq(t, "migrate", r.eventsOf("migrate"), []string{"0s STOPPED>STARTING", "100ms STARTING>BACKOFF", "100ms BACKOFF>FATAL"})
	})
}

// An apply that restarts a program together with a job it now depends on (a migration
// for its new version) runs the job first, on its own, while the program runs on in its
// current version; the program restarts once the job is done. Done by the engine, so a
// client that goes away, or a SIGHUP reload, gets it too.
func TestApplyRunsTheJobFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("app", startSecs(0))))
		time.Sleep(time.Second)
		r.l.behave["migrate"] = exitAfter(2*time.Second, 0)
		d := r.apply(planOf(t, prog("migrate", job), prog("app", startSecs(0), dependsOn("migrate"),
			func(pr *plan.Program) { pr.Command = []string{"/opt/bin/app", "--v2"} })))
		eq(t, "delta added", d.Added, []string{"migrate"})
		eq(t, "delta changed", []string{d.Changed[0].Name}, []string{"app"})
		time.Sleep(time.Second)
		eq(t, "spawns", r.l.lines("spawn"), []string{"0s app spawn 100", "1s migrate spawn 101", "3s app spawn 102"})
		eq(t, "app", r.eventsOf("app"), []string{"0s STOPPED>STARTING", "0s STARTING>RUNNING", "3s RUNNING>STOPPING", "3s STOPPING>STOPPED",
			"3s STOPPED>STARTING", "3s STARTING>RUNNING"})
	})
}

// An apply changing a program whose job is running (an earlier apply restarted it alone)
// waits for that run first, the program on its version meanwhile, as for a job it runs
// first: it stopped the program at once, which then waited for the job, down.
func TestApplyWaitsForARunningJobFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["migrate"] = exitAfter(time.Second, 0)
		base := planOf(t, prog("migrate", job), prog("app", startSecs(0), dependsOn("migrate")))
		r.apply(base)
		time.Sleep(2 * time.Second) // migrate done, app up
		r.l.behave["migrate"] = exitAfter(5*time.Second, 0)
		r.apply(planOf(t, prog("migrate", job, func(pr *plan.Program) { pr.Command = []string{"/opt/bin/migrate", "--v2"} }),
			prog("app", startSecs(0), dependsOn("migrate")))) // the job alone: it runs, 5 s
		time.Sleep(time.Second)
		r.apply(planOf(t, prog("migrate", job, func(pr *plan.Program) { pr.Command = []string{"/opt/bin/migrate", "--v2"} }),
			prog("app", startSecs(0), dependsOn("migrate"), func(pr *plan.Program) { pr.Command = []string{"/opt/bin/app", "--v2"} })))
		time.Sleep(time.Second)
		// app was stopped only once the job was done (at 7 s), not at once (3 s).
		eq(t, "app", r.eventsOf("app"), []string{"1s STOPPED>STARTING", "1s STARTING>RUNNING", "7s RUNNING>STOPPING", "7s STOPPING>STOPPED",
			"7s STOPPED>STARTING", "7s STARTING>RUNNING"})
	})
}

// A restart of a program while an apply runs its new version's job first ends with the
// program up in its new version, and says so: the restart's start, cut short by the
// apply's stop 1 ms later, answered "abnormal termination" (exit 1) though the process
// came up at once in the version the apply started.
func TestRestartDuringAnApplysJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["migrate"] = exitAfter(100*time.Millisecond, 0)
		r.apply(planOf(t, prog("migrate", job), prog("app", startSecs(1), dependsOn("migrate"))))
		time.Sleep(time.Second)
		r.l.behave["migrate"] = exitAfter(2*time.Second, 0)
		v2 := func(pr *plan.Program) { pr.Command = []string{pr.Command[0] + "-v2"} }
		applied := make(chan error, 1)
		go func() {
			_, err := r.sup.Apply(t.Context(), planOf(t, prog("migrate", job, v2), prog("app", startSecs(1), dependsOn("migrate"), v2)))
			applied <- err
		}()
		time.Sleep(500 * time.Millisecond) // the job runs
		restarted := make(chan error, 1)
		go func() { restarted <- r.sup.Restart(t.Context(), "app") }()
		if err := <-restarted; err != nil {
			t.Errorf("restart: %v", err)
		}
		if st := r.status("app"); st.State != Running { // "started" means RUNNING
			t.Errorf("app is %v once restarted", st.State)
		}
		if err := <-applied; err != nil {
			t.Fatalf("apply: %v", err)
		}
		if cmd := r.l.last("app").spec.Program.Command; !strings.HasSuffix(cmd[0], "-v2") {
			t.Errorf("app runs %q", cmd)
		}
	})
}

// A job that fails leaves everything else as it was: the apply fails (ErrJobFailed), the
// program that depends on it runs on in its current version, and the next apply of the
// same plan runs the failed job again first rather than take the program down to wait
// for it.
func TestApplyWithAFailingJobChangesNothingElse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("app", startSecs(0))))
		time.Sleep(time.Second)
		r.l.behave["migrate"] = exitAfter(time.Second, 3)
		v2 := planOf(t, prog("migrate", job, func(pr *plan.Program) { pr.Autorestart = plan.RestartNever }),
			prog("app", startSecs(0), dependsOn("migrate"), func(pr *plan.Program) { pr.Command = []string{"/opt/bin/app", "--v2"} }))
		_, err := r.sup.Apply(t.Context(), v2)
		if !errors.Is(err, ErrJobFailed) || !strings.Contains(err.Error(), "nothing else applied") {
			t.Fatalf("apply: %v", err)
		}
		if st := r.status("app"); st.State != Running || st.Pid != 100 {
			t.Errorf("app: %v pid %d, want RUNNING pid 100", st.State, st.Pid)
		}
		if pr, _ := r.sup.Plan().Lookup("app"); len(pr.Command) != 1 {
			t.Errorf("app's command %v: the new version was applied", pr.Command)
		}
		time.Sleep(time.Second)
		r.l.behave["migrate"] = exitAfter(time.Second, 0) // fixed, say, by hand
		r.apply(v2)
		time.Sleep(time.Second)
		eq(t, "spawns", r.l.lines("spawn"), []string{"0s app spawn 100", "1s migrate spawn 101", "3s migrate spawn 102", "4s app spawn 103"})
	})
}

// A failed jobs-first phase puts the job it changed back as it was, done, not run again:
// the plan is the one before, a restart of its dependent needs no job, and the retry of
// the same apply runs the new job first again (it had found it applied, and restarted
// the program to wait for a job that never ran). Chained jobs run in their order first,
// and one with autostart = False is run too: its dependent needs it.
func TestFailedJobIsPutBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		v := func(ver string, mods ...func(*plan.Program)) *plan.Plan {
			cmd := func(pr *plan.Program) { pr.Command = []string{"/opt/bin/" + pr.Name, ver} }
			return planOf(t,
				prog("schema", job, cmd, func(pr *plan.Program) { pr.Autostart = false }),
				prog("migrate", job, cmd, dependsOn("schema"), func(pr *plan.Program) { pr.Autorestart = plan.RestartNever }),
				prog("app", startSecs(0), dependsOn("migrate"), cmd))
		}
		r.l.behave["schema"] = exitAfter(time.Second, 0)
		r.l.behave["migrate"] = exitAfter(time.Second, 0)
		r.apply(v("1"))
		if err := r.sup.Start(t.Context(), "schema"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		eq(t, "v1", r.l.lines("spawn"), []string{"0s schema spawn 100", "1s migrate spawn 101", "2s app spawn 102"})

		r.l.behave["migrate"] = exitAfter(time.Second, 3)
		if _, err := r.sup.Apply(t.Context(), v("2")); !errors.Is(err, ErrJobFailed) {
			t.Fatalf("v2: %v", err)
		}
		eq(t, "v2 runs schema, then migrate, which fails", r.l.lines("spawn")[3:], []string{"6s schema spawn 103", "7s migrate spawn 104"})
		if pr, _ := r.sup.Plan().Lookup("migrate"); pr.Command[1] != "1" {
			t.Errorf("migrate in the plan: %v, want v1 put back", pr.Command)
		}
		if st := r.status("migrate"); st.State != Exited || !st.Ready {
			t.Errorf("migrate put back: %v ready %v, want EXITED and done", st.State, st.Ready)
		}
		if err := r.sup.Restart(t.Context(), "app"); err != nil {
			t.Errorf("restart app after the failed apply: %v", err)
		}
		r.l.behave["migrate"] = exitAfter(time.Second, 0)
		r.apply(v("2"))
		time.Sleep(time.Second)
		eq(t, "v2 again", r.l.lines("spawn")[6:], []string{"8s schema spawn 106", "9s migrate spawn 107", "10s app spawn 108"})
	})
}

// preparingProber records which way each probe was made: Prepare (before the spawn,
// which fails a tcp or http probe whose port answers already) or Ready.
type preparingProber struct {
	mu  sync.Mutex
	log []string
}

func (p *preparingProber) Ready(ctx context.Context, pr plan.Program) error {
	p.mu.Lock()
	p.log = append(p.log, "ready "+pr.ProcessName)
	p.mu.Unlock()
	return nil
}

func (p *preparingProber) Prepare(pr plan.Program) func(context.Context) error {
	p.mu.Lock()
	p.log = append(p.log, "prepare "+pr.ProcessName)
	p.mu.Unlock()
	return func(context.Context) error { return nil }
}

// A pool member restarted while a sibling runs may share its port (SO_REUSEPORT): its
// tcp probe is not prepared (the port answering before the spawn is no sign of another
// program there); a process alone is.
func TestPoolMemberProbeNotPreparedWhileSiblingsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pb := &preparingProber{}
		r := newRig(t, func(o *Options) { o.Prober = pb })
		defer r.shutdown()
		pool := prog("w", startSecs(0), withProbe, func(pr *plan.Program) { pr.Numprocs, pr.ProcessName = 2, "w_0" })
		w1 := pool
		w1.ProcessName, w1.ProcessNum = "w_1", 1
		r.apply(planOf(t, prog("solo", startSecs(0), withProbe), pool, w1))
		time.Sleep(time.Second)
		pb.mu.Lock()
		pb.log = nil
		pb.mu.Unlock()
		for _, n := range []string{"w_0", "solo"} {
			if err := r.sup.Restart(t.Context(), n); err != nil {
				t.Fatal(err)
			}
		}
		pb.mu.Lock()
		defer pb.mu.Unlock()
		eq(t, "probes", pb.log, []string{"ready w_0", "prepare solo"})
	})
}

// A numprocs job (its group its own, declared by no group(), as the script builds it)
// runs first like a single one; so does a job that depends on a program the apply adds,
// which runs first with it; and should the job fail, that program goes again with the
// rest of the apply.
func TestPoolJobAndItsNewDependencyRunFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		v := func(ver string, db bool) *plan.Plan {
			cmd := func(pr *plan.Program) { pr.Command = []string{"/opt/bin/" + pr.Name, ver} }
			d0 := prog("data", job, cmd, func(pr *plan.Program) {
				pr.Numprocs, pr.ProcessName, pr.Group, pr.Autorestart = 2, "data_0", "data", plan.RestartNever
			})
			if db {
				d0.DependsOn = []string{"db"}
			}
			d1 := d0
			d1.ProcessName, d1.ProcessNum = "data_1", 1
			progs := []plan.Program{d0, d1, prog("web", startSecs(0), dependsOn("data"), cmd)}
			if db {
				progs = append(progs, prog("db", startSecs(0)))
			}
			return planOf(t, progs...)
		}
		for _, n := range []string{"data_0", "data_1"} {
			r.l.behave[n] = exitAfter(time.Second, 0)
		}
		r.apply(v("1", false))
		time.Sleep(3 * time.Second)
		r.apply(v("2", true))
		time.Sleep(time.Second)
		got := r.l.lines("spawn")[3:]
		for i := range got {
			got[i] = strings.Join(strings.Fields(got[i])[:2], " ") // the pool's two start together, either first
		}
		slices.Sort(got[1:3])
		eq(t, "v2", got, []string{"3s db", "3s data_0", "3s data_1", "4s web"})
		r.l.behave["data_1"] = exitAfter(time.Second, 3)
		if _, err := r.sup.Apply(t.Context(), v("3", true)); !errors.Is(err, ErrJobFailed) {
			t.Fatalf("v3: %v", err)
		}
		if st := r.status("web"); st.State != Running || st.Pid != 106 {
			t.Errorf("web after the failed v3: %v pid %d, want v2's running on", st.State, st.Pid)
		}
		if st := r.status("db"); st.State != Running {
			t.Errorf("db: %v", st.State)
		}
	})
}

// A job that moves to another group with the apply still runs first (the first phase's
// plan listed it in both, and was no plan: the apply ran all at once).
func TestJobMovingGroupRunsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		v := func(ver, group string) *plan.Plan {
			cmd := func(pr *plan.Program) { pr.Command = []string{"/opt/bin/" + pr.Name, ver} }
			p := &plan.Plan{Root: "/srv", Entry: "deploy.star", Programs: []plan.Program{
				prog("migrate", job, cmd, func(pr *plan.Program) { pr.Group = group }), prog("web", startSecs(0), dependsOn("migrate"), cmd)},
				Groups: []plan.Group{{Name: group, Programs: []string{"migrate"}, Priority: 999}}}
			if err := p.Finish(); err != nil {
				t.Fatal(err)
			}
			return p
		}
		r.l.behave["migrate"] = exitAfter(time.Second, 0)
		r.apply(v("1", "db"))
		time.Sleep(3 * time.Second)
		r.apply(v("2", "schema"))
		time.Sleep(time.Second)
		eq(t, "v2", r.l.lines("spawn")[2:], []string{"3s migrate spawn 102", "4s web spawn 103"})
	})
}

// A restart whose start an apply cut short by removing the program says so: it said
// "abnormal termination", the words of a process that died by itself.
func TestRestartOfAProgramAnApplyRemoves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("app", startSecs(2)), prog("other", startSecs(0))))
		time.Sleep(3 * time.Second)
		restarted := make(chan error, 1)
		go func() { restarted <- r.sup.Restart(t.Context(), "app") }()
		time.Sleep(500 * time.Millisecond) // the restart's start: STARTING
		if st := r.status("app"); st.State != Starting {
			t.Fatalf("app is %v during its restart", st.State)
		}
		r.apply(planOf(t, prog("other", startSecs(0))))
		err := <-restarted
		if !errors.Is(err, ErrRemoved) || !strings.Contains(err.Error(), "app: no such process: an apply removed it") {
			t.Errorf("restart: %v", err)
		}
	})
}

// A program that exits after forking a daemon, killed with it, says so in status: only
// the daemon's log did (nginx or redis left in their daemon mode).
func TestExitThatLeftADaemonSaysSo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["nginx"] = func(h *fakeHandle) {
			go func() {
				time.Sleep(2 * time.Second)
				h.mu.Lock()
				defer h.mu.Unlock()
				h.exitLocked(Exit{Code: 0, LeftKilled: true})
			}()
		}
		r.apply(planOf(t, prog("nginx", startSecs(1), func(pr *plan.Program) { pr.Autorestart = plan.RestartNever })))
		time.Sleep(3 * time.Second)
		st := r.status("nginx")
		if st.State != Exited || !strings.Contains(st.Description, "; what it left running was killed with it") {
			t.Errorf("nginx: %v %q", st.State, st.Description)
		}
	})
}

// A crash loop between two runs (EXITED, its restart armed for minRespawn) resumes by
// itself, and says so: a stop of all skipped it as already down, and it restarted on.
func TestExitedWithRestartDueIsResuming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["crashy"] = exitAfter(100*time.Millisecond, 1)
		r.apply(planOf(t, prog("crashy", startSecs(0))))
		time.Sleep(200 * time.Millisecond)
		st := r.status("crashy")
		if st.State != Exited || !st.Resuming {
			t.Fatalf("crashy: %v resuming %v, want EXITED and resuming", st.State, st.Resuming)
		}
		if err := r.sup.Stop(t.Context(), "crashy"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		if st := r.status("crashy"); st.State != Stopped || st.Resuming {
			t.Errorf("crashy after a stop: %v resuming %v", st.State, st.Resuming)
		}
	})
}
