package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// Inside each synctest bubble time is fake: it moves only when every goroutine is
// blocked, so the offsets below are exact.

func manual(pr *plan.Program) { pr.Autostart = false }

func TestLoopBackoffToFatal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["crash"] = exitAfter(0, 1)
		r.apply(planOf(t, prog("crash")))
		time.Sleep(time.Minute)
		synctest.Wait()
		eq(t, "spawns", r.l.lines("spawn"), []string{
			"0s crash spawn 100", "1s crash spawn 101", "3s crash spawn 102", "6s crash spawn 103"})
		eq(t, "events", r.eventsOf("crash"), []string{
			"0s STOPPED>STARTING", "0s STARTING>BACKOFF",
			"1s BACKOFF>STARTING", "1s STARTING>BACKOFF",
			"3s BACKOFF>STARTING", "3s STARTING>BACKOFF",
			"6s BACKOFF>STARTING", "6s STARTING>BACKOFF", "6s BACKOFF>FATAL"})
		st := r.status("crash")
		if st.State != Fatal || st.Description != tooQuickly+"; exit status 1" || st.Pid != 0 || st.ExitCode != 1 {
			t.Errorf("status %+v", st)
		}
	})
}

func TestLoopStartWaitsForStartSecs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("web", manual)))
		if d := r.status("web").Description; d != "Not started" {
			t.Errorf("before start: %q", d)
		}
		if err := r.sup.Start(t.Context(), "web"); err != nil {
			t.Fatal(err)
		}
		if r.since() != time.Second {
			t.Errorf("Start returned at %v, want 1s (start_secs)", r.since())
		}
		time.Sleep(62 * time.Second)
		if st := r.status("web"); st.State != Running || st.Description != "pid 100, uptime 0:01:03" {
			t.Errorf("status %v %q", st.State, st.Description)
		}
		err := r.sup.Start(t.Context(), "web")
		if !errors.Is(err, ErrAlreadyStarted) || len(ProcessErrors(err)) != 1 || ProcessErrors(err)[0].Name != "web" {
			t.Errorf("second start: %v", err)
		}
		if err := r.sup.Start(t.Context(), "nosuch"); !errors.Is(err, ErrNoSuchProcess) {
			t.Errorf("start nosuch: %v", err)
		}
	})
}

func TestLoopStartSecsBoundary(t *testing.T) {
	for _, c := range []struct {
		dies  time.Duration
		want  error
		state State
	}{
		{3*time.Second - time.Millisecond, ErrSpawn, Backoff},
		{3 * time.Second, nil, Exited},
	} {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t)
			defer r.shutdown()
			r.l.behave["slow"] = exitAfter(c.dies, 0)
			r.apply(planOf(t, prog("slow", manual, startSecs(3), autorestart(plan.RestartNever))))
			err := r.sup.Start(t.Context(), "slow")
			if !errors.Is(err, c.want) && (err != nil || c.want != nil) {
				t.Errorf("dies at %v: Start = %v, want %v", c.dies, err, c.want)
			}
			synctest.Wait()
			if st := r.status("slow"); st.State != c.state {
				t.Errorf("dies at %v: %v, want %v", c.dies, st.State, c.state)
			}
		})
	}
}

func TestLoopAutorestart(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		codes  []int
		code   int
		again  bool
	}{
		{"true restarts on 0", plan.RestartAlways, []int{0}, 0, true},
		{"false never", plan.RestartNever, []int{0}, 1, false},
		{"unexpected restarts on 3", plan.RestartUnexpected, []int{0}, 3, true},
		{"unexpected keeps 5 in exit_codes", plan.RestartUnexpected, []int{0, 5}, 5, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t)
				defer r.shutdown()
				r.l.behave["job"] = exitAfter(5*time.Second, c.code)
				r.apply(planOf(t, prog("job", autorestart(c.policy), func(pr *plan.Program) { pr.ExitCodes = c.codes })))
				time.Sleep(7 * time.Second)
				want := []string{"0s STOPPED>STARTING", "1s STARTING>RUNNING", "5s RUNNING>EXITED"}
				if c.again {
					want = append(want, "5s EXITED>STARTING", "6s STARTING>RUNNING")
				}
				eq(t, "events", r.eventsOf("job"), want)
				desc := stopTime(r.t0.Add(5 * time.Second))
				if !slices.Contains(c.codes, c.code) {
					desc += fmt.Sprintf("; exit status %d; not expected", c.code) // a crash says so
				}
				if st := r.status("job"); !c.again && st.Description != desc {
					t.Errorf("description %q, want %q", st.Description, desc)
				}
			})
		})
	}
}

// A signal death is never expected: killed from outside, the process comes back.
func TestLoopKilledFromOutsideRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("victim")))
		time.Sleep(3 * time.Second)
		r.l.last("victim").Signal(syscall.SIGKILL, false)
		synctest.Wait()
		eq(t, "events", r.eventsOf("victim"), []string{"0s STOPPED>STARTING", "1s STARTING>RUNNING",
			"3s RUNNING>EXITED", "3s EXITED>STARTING"})
		if st := r.status("victim"); st.State != Starting || st.Pid != 101 {
			t.Errorf("status %v pid %d", st.State, st.Pid)
		}
	})
}

// A process killed by a signal, left EXITED, says which: "terminated by a signal" did not.
func TestLoopSignalDeathNamed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("victim", autorestart(plan.RestartNever))))
		time.Sleep(3 * time.Second)
		r.l.last("victim").Signal(syscall.SIGSEGV, false)
		synctest.Wait()
		if d := r.status("victim").Description; !strings.HasSuffix(d, "; terminated by SIGSEGV; not expected") {
			t.Errorf("description %q", d)
		}
	})
}

// start_secs 0 and an instant crash: RUNNING, EXITED, restarted a second apart, forever.
func TestLoopRespawnIsSpaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["spin"] = exitAfter(0, 1)
		r.apply(planOf(t, prog("spin", startSecs(0))))
		time.Sleep(3500 * time.Millisecond)
		eq(t, "spawns", r.l.lines("spawn"), []string{"0s spin spawn 100", "1s spin spawn 101",
			"2s spin spawn 102", "3s spin spawn 103"})
	})
}

func TestLoopStopEscalates(t *testing.T) {
	for _, c := range []struct {
		stopGroup, killGroup bool
		want                 []string
	}{
		{false, true, []string{"2s stubborn SIGTERM", "5s stubborn SIGKILL group"}},
		{true, false, []string{"2s stubborn SIGTERM group", "5s stubborn SIGKILL group"}},
		{false, false, []string{"2s stubborn SIGTERM", "5s stubborn SIGKILL"}},
	} {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t)
			defer r.shutdown()
			r.l.ignore["stubborn"] = []syscall.Signal{syscall.SIGTERM}
			r.apply(planOf(t, prog("stubborn", stopTimeout(3*time.Second), func(pr *plan.Program) {
				pr.StopAsGroup, pr.KillAsGroup = c.stopGroup, c.killGroup
			})))
			time.Sleep(2 * time.Second)
			if err := r.sup.Stop(t.Context(), "stubborn"); err != nil {
				t.Fatal(err)
			}
			if r.since() != 5*time.Second {
				t.Errorf("Stop returned at %v, want 5s", r.since())
			}
			eq(t, "signals", r.l.lines("SIG"), c.want)
			synctest.Wait()
			eq(t, "events", r.eventsOf("stubborn")[2:], []string{"2s RUNNING>STOPPING", "5s STOPPING>STOPPED"})
			st := r.status("stubborn")
			if st.State != Stopped || st.Description != stopTime(r.t0.Add(5*time.Second)) || st.ExitCode != -1 {
				t.Errorf("status %+v", st)
			}
			if err := r.sup.Stop(t.Context(), "stubborn"); !errors.Is(err, ErrNotRunning) {
				t.Errorf("second stop: %v", err)
			}
		})
	}
}

func TestLoopStopInBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.behave["crash"] = exitAfter(0, 1)
		r.apply(planOf(t, prog("crash")))
		time.Sleep(500 * time.Millisecond)
		if err := r.sup.Stop(t.Context(), "crash"); err != nil {
			t.Fatal(err)
		}
		if r.since() != 500*time.Millisecond {
			t.Errorf("Stop took until %v", r.since())
		}
		time.Sleep(time.Minute)
		eq(t, "signals", r.l.lines("SIG"), nil)
		eq(t, "spawns", r.l.lines("spawn"), []string{"0s crash spawn 100"})
		if st := r.status("crash"); st.State != Stopped {
			t.Errorf("state %v", st.State)
		}
	})
}

// S27: a stop during a pending start ends that start with "abnormal termination".
func TestLoopStopDuringStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.apply(planOf(t, prog("slow", manual, startSecs(10))))
		started := make(chan error, 1)
		go func() { started <- r.sup.Start(context.Background(), "slow") }()
		time.Sleep(1500 * time.Millisecond)
		if err := r.sup.Stop(t.Context(), "slow"); err != nil {
			t.Fatal(err)
		}
		if err := <-started; !errors.Is(err, ErrAbnormalTermination) {
			t.Errorf("start: %v", err)
		}
	})
}

func TestLoopSignal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.ignore["a"] = []syscall.Signal{syscall.SIGUSR1}
		r.apply(planOf(t, prog("a", stopTimeout(time.Second)), prog("b", manual)))
		err := r.sup.Signal(t.Context(), syscall.SIGUSR1, "a", "b", "nosuch")
		eq(t, "signals", r.l.lines("SIG"), []string{"0s a SIGUSR1"})
		pes := ProcessErrors(err)
		if len(pes) != 2 || pes[0].Name != "nosuch" || !errors.Is(pes[0], ErrNoSuchProcess) ||
			pes[1].Name != "b" || !errors.Is(pes[1], ErrNotRunning) {
			t.Errorf("errors %v", err)
		}
	})
}

// The daemon shuts down while a crashing program waits in BACKOFF and another waits for
// its restart: neither starts again.
// A signal that fails with anything but ESRCH leaves the process UNKNOWN; its exit still
// brings it to STOPPED.
func TestLoopSignalFailureIsUnknown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.shutdown()
		r.l.sigErr = map[string]error{"root": syscall.EPERM}
		r.apply(planOf(t, prog("root")))
		time.Sleep(2 * time.Second)
		err := r.sup.Stop(t.Context(), "root")
		if !errors.Is(err, ErrUnknownState) || !strings.Contains(err.Error(), "operation not permitted") {
			t.Errorf("stop: %v", err)
		}
		if st := r.status("root"); st.State != Unknown || st.Pid == 0 {
			t.Errorf("status %v pid %d", st.State, st.Pid)
		}
		if err := r.sup.Start(t.Context(), "root"); !errors.Is(err, ErrUnknownState) {
			t.Errorf("start in UNKNOWN: %v", err)
		}
		r.l.last("root").exit(0)
		synctest.Wait()
		eq(t, "events", r.eventsOf("root")[2:], []string{"2s RUNNING>STOPPING", "2s STOPPING>UNKNOWN", "2s UNKNOWN>STOPPED"})
	})
}
