package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

var t0 = time.Date(2025, 11, 25, 18, 7, 0, 0, time.UTC)

func testPolicy() policy {
	pr := plan.Defaults()
	return policyOf(pr) // start_secs 1, start_retries 3, linear, unexpected, [0], TERM, 10s
}

// base is a typical procState in st, at t0 + 500ms for STARTING and later otherwise.
// timerFor is the timer kind a state arms.
// TestStepEveryPair runs every (state, event) pair through step. now is t0+500ms, so a
// STARTING process has not lived start_secs yet and a RUNNING one (started at t0) exits
// after it ran well under minRespawn.
// A timer of the wrong kind for the state is illegal; one from an earlier Gen is ignored.
func (r *run) do(at time.Duration, ev event) []action {
	r.t.Helper()
	if ev.Kind == evTimer {
		ev.Gen = r.s.Gen
	}
	next, acts, err := step(r.s, ev, t0.Add(at))
	if err != nil {
		r.t.Fatalf("at %v %v in %v: %v", at, ev.Kind, r.s.State, err)
	}
	r.s = next
	for _, a := range acts {
		r.log = append(r.log, fmt.Sprintf("%v %v", at, a))
	}
	return acts
}

// timerIn returns the timer action among acts.
func timerIn(acts []action) (action, bool) {
	for _, a := range acts {
		if a.Kind == actTimer {
			return a, true
		}
	}
	return action{}, false
}

// crashLoop starts a process that exits with code 1 the moment it is spawned, and
// follows each retry timer the way the loop would, for at most limit attempts. It
// returns the offsets of the spawns.
func (r *run) crashLoop(limit int) []time.Duration {
	var spawns []time.Duration
	at := time.Duration(0)
	r.do(at, event{Kind: evStart})
	for range limit {
		spawns = append(spawns, at)
		r.do(at, event{Kind: evSpawned, Pid: 1})
		acts := r.do(at, event{Kind: evExit, Exit: Exit{Code: 1}})
		tm, ok := timerIn(acts)
		if !ok {
			return spawns
		}
		at += tm.After
		r.do(at, event{Kind: evTimer, Timer: tm.Timer})
	}
	return spawns
}

func TestStepBackoffLinearToFatal(t *testing.T) {
	r := &run{t: t, s: procState{Pol: testPolicy()}}
	spawns := r.crashLoop(10)
	want := []time.Duration{0, time.Second, 3 * time.Second, 6 * time.Second}
	if !slices.Equal(spawns, want) {
		t.Errorf("spawns at %v, want %v", spawns, want)
	}
	if r.s.State != Fatal || r.s.Err != tooQuickly+"; exit status 1" || r.s.Backoff != 0 {
		t.Errorf("end: %v %q backoff %d", r.s.State, r.s.Err, r.s.Backoff)
	}
	last := r.log[len(r.log)-2:]
	if !slices.Equal(last, []string{"6s STARTING>BACKOFF", "6s BACKOFF>FATAL"}) {
		t.Errorf("last actions %q", last)
	}
}

func TestStepBackoffShapes(t *testing.T) {
	cases := []struct {
		name    string
		pol     func(*policy)
		attempt int
		gaps    []time.Duration
		end     State
	}{
		{"retries 0: FATAL after one attempt", func(p *policy) { p.StartRetries = 0 }, 10, nil, Fatal},
		{"retries 1", func(p *policy) { p.StartRetries = 1 }, 10, []time.Duration{time.Second}, Fatal},
		{"linear capped", func(p *policy) { p.StartRetries, p.BackoffMax = 5, 3*time.Second },
			10, []time.Duration{1, 2, 3, 3, 3}, Fatal},
		{"exponential capped, forever", func(p *policy) {
			p.StartRetries, p.Exponential, p.BackoffMax = -1, true, 10*time.Second
		}, 8, []time.Duration{1, 2, 4, 8, 10, 10, 10}, Starting}, // still retrying
		// Past 2^34 s the doubling overflowed int64: the delay went negative, slipped
		// under the cap and the daemon respawned ~850 times a second.
		{"exponential capped, long after", func(p *policy) {
			p.StartRetries, p.Exponential, p.BackoffMax = -1, true, time.Second
		}, 100, slices.Repeat([]time.Duration{1}, 99), Starting},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &run{t: t, s: procState{Pol: testPolicy()}}
			c.pol(&r.s.Pol)
			spawns := r.crashLoop(c.attempt)
			var gaps []time.Duration
			for i := 1; i < len(spawns); i++ {
				gaps = append(gaps, spawns[i]-spawns[i-1])
			}
			want := slices.Clone(c.gaps)
			for i := range want {
				if want[i] < time.Millisecond {
					want[i] *= time.Second
				}
			}
			if !slices.Equal(gaps, want) {
				t.Errorf("gaps %v, want %v", gaps, want)
			}
			if r.s.State != c.end {
				t.Errorf("ends %v, want %v", r.s.State, c.end)
			}
		})
	}
}

func TestStepSpawnErrorIsAFailedStart(t *testing.T) {
	r := &run{t: t, s: procState{Pol: testPolicy()}}
	r.s.Pol.StartRetries = 1
	r.do(0, event{Kind: evStart})
	r.do(0, event{Kind: evSpawnFailed, Err: "can't find command '/x'"})
	r.do(time.Second, event{Kind: evTimer, Timer: tRetry})
	r.do(time.Second, event{Kind: evSpawnFailed, Err: "can't find command '/x'"})
	want := []string{"0s STOPPED>STARTING", "0s spawn", "0s STARTING>BACKOFF", "0s timer retry 1s",
		"1s BACKOFF>STARTING", "1s spawn", "1s STARTING>BACKOFF", "1s BACKOFF>FATAL"}
	if !slices.Equal(r.log, want) {
		t.Errorf("log\n%q\nwant\n%q", r.log, want)
	}
	if r.s.Err != "can't find command '/x'" {
		t.Errorf("Err = %q", r.s.Err)
	}
}

// start_secs is a boundary: a process that dies before it is a failed start whatever its
// code; one that dies at it has started (and is RUNNING then EXITED).
func TestStepStartSecsBoundary(t *testing.T) {
	for _, c := range []struct {
		exitAt time.Duration
		want   []string
	}{
		{time.Second - time.Nanosecond, []string{"STARTING>BACKOFF", "timer retry 1s"}},
		{time.Second, []string{"STARTING>RUNNING", "RUNNING>EXITED"}},
	} {
		s := procState{Pol: testPolicy(), State: Starting}
		s, _, _ = step(s, event{Kind: evSpawned, Pid: 5}, t0)
		s, acts, err := step(s, event{Kind: evExit, Exit: Exit{Code: 0}}, t0.Add(c.exitAt))
		if err != nil || !slices.Equal(actStrings(acts), c.want) {
			t.Errorf("exit at %v: %q %v, want %q", c.exitAt, actStrings(acts), err, c.want)
		}
	}
	// The promote timer arms for exactly start_secs.
	s := procState{Pol: testPolicy(), State: Starting}
	s.Pol.StartSecs = 4 * time.Second
	_, acts, _ := step(s, event{Kind: evSpawned, Pid: 5}, t0)
	if got := actStrings(acts); !slices.Equal(got, []string{"timer promote 4s"}) {
		t.Errorf("spawned: %q", got)
	}
}

// start_secs 0: RUNNING at once, so a crash is an exit, never BACKOFF; the restart is
// spaced minRespawn after the previous spawn.
func TestStepStartSecsZero(t *testing.T) {
	r := &run{t: t, s: procState{Pol: testPolicy()}}
	r.s.Pol.StartSecs = 0
	r.do(0, event{Kind: evStart})
	r.do(0, event{Kind: evSpawned, Pid: 1})
	r.do(200*time.Millisecond, event{Kind: evExit, Exit: Exit{Code: 1}})
	r.do(time.Second, event{Kind: evTimer, Timer: tRestart})
	want := []string{"0s STOPPED>STARTING", "0s spawn", "0s STARTING>RUNNING",
		"200ms RUNNING>EXITED", "200ms timer restart 800ms", "1s EXITED>STARTING", "1s spawn"}
	if !slices.Equal(r.log, want) {
		t.Errorf("log\n%q\nwant\n%q", r.log, want)
	}
}

func TestStepAutorestart(t *testing.T) {
	cases := []struct {
		policy string
		codes  []int
		exit   Exit
		reason string
		again  bool
	}{
		{plan.RestartAlways, []int{0}, Exit{Code: 0}, "exit status 0; expected", true},
		{plan.RestartNever, []int{0}, Exit{Code: 1}, "exit status 1; not expected", false},
		{plan.RestartUnexpected, []int{0}, Exit{Code: 0}, "exit status 0; expected", false},
		{plan.RestartUnexpected, []int{0}, Exit{Code: 3}, "exit status 3; not expected", true},
		{plan.RestartUnexpected, []int{0, 5}, Exit{Code: 5}, "exit status 5; expected", false},
		{plan.RestartUnexpected, []int{0}, Exit{Code: -1, Signal: syscall.SIGKILL}, "terminated by SIGKILL; not expected", true},
	}
	for _, c := range cases {
		s := base(Running)
		s.Pol.Autorestart, s.Pol.ExitCodes, s.Backoff = c.policy, c.codes, 2
		got, acts, err := step(s, event{Kind: evExit, Exit: c.exit}, t0.Add(time.Hour))
		want := []string{"RUNNING>EXITED"}
		if c.again {
			want = append(want, "EXITED>STARTING", "spawn")
		}
		if err != nil || !slices.Equal(actStrings(acts), want) || acts[0].Reason != c.reason {
			t.Errorf("%s %v %+v: %q (%q) %v, want %q (%q)", c.policy, c.codes, c.exit, actStrings(acts), acts[0].Reason, err, want, c.reason)
		}
		if got.Backoff != 0 || got.ExitCode != c.exit.Code || !got.Stopped.Equal(t0.Add(time.Hour)) {
			t.Errorf("%s: backoff %d exit %d stopped %v", c.policy, got.Backoff, got.ExitCode, got.Stopped)
		}
		// Shutting down: no restart whatever the policy.
		s.Hold = true
		_, acts, _ = step(s, event{Kind: evExit, Exit: c.exit}, t0.Add(time.Hour))
		if !slices.Equal(actStrings(acts), []string{"RUNNING>EXITED"}) {
			t.Errorf("%s while holding: %q", c.policy, actStrings(acts))
		}
	}
}

func TestStepBackoffCounter(t *testing.T) {
	// Promotion to RUNNING resets it.
	s := base(Starting)
	s.Backoff = 2
	s, _, _ = step(s, event{Kind: evTimer, Timer: tPromote, Gen: s.Gen}, t0.Add(time.Second))
	if s.Backoff != 0 {
		t.Errorf("after RUNNING: backoff %d", s.Backoff)
	}
	// Stop in BACKOFF keeps it (supervisord): the next start continues the count.
	s = base(Backoff)
	s.Backoff = 3
	s, _, _ = step(s, event{Kind: evStop}, t0)
	if s.State != Stopped || s.Backoff != 3 {
		t.Errorf("stop in BACKOFF: %v backoff %d", s.State, s.Backoff)
	}
	s, _, _ = step(s, event{Kind: evStart}, t0)
	s, _, _ = step(s, event{Kind: evSpawned, Pid: 1}, t0)
	s, _, _ = step(s, event{Kind: evExit, Exit: Exit{Code: 1}}, t0)
	if s.State != Fatal {
		t.Errorf("4th failure: %v, want FATAL", s.State)
	}
}

func TestStepStopSignals(t *testing.T) {
	cases := []struct {
		stopGroup, killGroup bool
		want                 []string
	}{
		{false, false, []string{"signal SIGINT", "signal SIGKILL"}},
		{false, true, []string{"signal SIGINT", "signal SIGKILL group"}},
		{true, false, []string{"signal SIGINT group", "signal SIGKILL group"}}, // stop implies kill
		{true, true, []string{"signal SIGINT group", "signal SIGKILL group"}},
	}
	for _, c := range cases {
		pr := plan.Defaults()
		pr.StopSignal, pr.StopTimeout = "INT", plan.Duration(3*time.Second)
		pr.StopAsGroup, pr.KillAsGroup = c.stopGroup, c.killGroup
		s := base(Running)
		s.Pol = policyOf(pr)
		var got []string
		s, acts, _ := step(s, event{Kind: evStop}, t0)
		tm, _ := timerIn(acts)
		if tm.After != 3*time.Second {
			t.Errorf("kill after %v", tm.After)
		}
		got = append(got, actStrings(acts)[1])
		_, acts, _ = step(s, event{Kind: evTimer, Timer: tKill, Gen: tm.Gen}, t0.Add(3*time.Second))
		got = append(got, actStrings(acts)...)
		if !slices.Equal(got, c.want) {
			t.Errorf("stop_as_group=%v kill_as_group=%v: %q, want %q", c.stopGroup, c.killGroup, got, c.want)
		}
	}
}

// A stop cancels a restart armed for minRespawn, also when an apply changed the
// policy in place meanwhile (autorestart turned off: the restart fired, and a removed
// program ran on out of the plan); not stopped, it happens only if the new policy
// restarts.
func TestStepStopCancelsPendingRestart(t *testing.T) {
	exited := func(now string) procState {
		s := base(Running)
		s.Pol.Autorestart = plan.RestartAlways
		s, acts, _ := step(s, event{Kind: evExit, Exit: Exit{Code: 0}}, t0.Add(100*time.Millisecond))
		if tm, ok := timerIn(acts); !ok || tm.Timer != tRestart {
			t.Fatalf("want a restart timer, got %q", actStrings(acts))
		}
		s.Pol.Autorestart = now // the apply's update, if any
		return s
	}
	for _, now := range []string{plan.RestartAlways, plan.RestartNever} {
		s := exited(now)
		gen := s.Gen
		s, acts, err := step(s, event{Kind: evStop}, t0.Add(200*time.Millisecond))
		if err != nil || s.State != Stopped || !slices.Equal(actStrings(acts), []string{"EXITED>STOPPED"}) {
			t.Fatalf("autorestart now %s: stop: %v %q %v", now, s.State, actStrings(acts), err)
		}
		s, acts, _ = step(s, event{Kind: evTimer, Timer: tRestart, Gen: gen}, t0.Add(time.Second))
		if s.State != Stopped || len(acts) != 0 {
			t.Errorf("autorestart now %s: the cancelled restart fired: %v %q", now, s.State, actStrings(acts))
		}
	}
	s := exited(plan.RestartNever)
	s, acts, _ := step(s, event{Kind: evTimer, Timer: tRestart, Gen: s.Gen}, t0.Add(time.Second))
	if s.State != Exited || len(acts) != 0 {
		t.Errorf("restarted against its new policy: %v %q", s.State, actStrings(acts))
	}
}

func TestStepHold(t *testing.T) {
	s := base(Backoff)
	s, _, _ = step(s, event{Kind: evHold}, t0)
	got, acts, err := step(s, event{Kind: evTimer, Timer: tRetry, Gen: s.Gen}, t0)
	if err != nil || got.State != Backoff || len(acts) != 0 {
		t.Errorf("retry while holding: %v %q %v", got.State, actStrings(acts), err)
	}
	s = base(Stopped)
	s.Hold = true
	if _, _, err := step(s, event{Kind: evStart}, t0); !errors.Is(err, ErrShutdown) {
		t.Errorf("start while holding: %v", err)
	}
}

func TestExitWords(t *testing.T) {
	yes, no := true, false
	for _, c := range []struct {
		e    Exit
		exp  *bool
		want string
	}{
		{Exit{Code: 0}, &yes, "exit status 0; expected"},
		{Exit{Code: 2}, &no, "exit status 2; not expected"},
		{Exit{Code: -1, Signal: syscall.SIGTERM}, nil, "terminated by SIGTERM"},
		{Exit{Code: 0}, nil, "exit status 0"},
		// Any signal by the name supervisord gives it, and its core dump.
		{Exit{Code: -1, Signal: syscall.SIGSEGV, Core: true}, &no, "terminated by SIGSEGV (core dumped); not expected"},
		{Exit{Code: -1, Signal: syscall.SIGABRT}, nil, "terminated by SIGABRT"},
		{Exit{Code: -1, Signal: syscall.Signal(40)}, nil, "terminated by signal 40"},
		// What it left running was killed with it: said (under supervisord it ran on).
		{Exit{Code: 0, LeftKilled: true}, &yes, "exit status 0; what it left running killed with it; expected"},
		{Exit{Code: -1, Signal: syscall.SIGTERM, GroupKilled: true, LeftKilled: true}, nil, "terminated by SIGTERM; the rest of its group by SIGKILL"},
	} {
		if got := exitWords(c.e, c.exp); got != c.want {
			t.Errorf("%+v: %q, want %q", c.e, got, c.want)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"TERM": syscall.SIGTERM, "sigusr1": syscall.SIGUSR1, "HUP": syscall.SIGHUP, "9": syscall.SIGKILL} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ParseSignal("BOGUS"); err == nil {
		t.Error("BOGUS parsed")
	}
	// A number out of range says which are, and 0 what it would have done.
	for in, want := range map[string]string{"0": "0 sends nothing (kill -0 only checks a process exists", "65": "a number from 1 to 64", "TERMM": "bad signal name \"TERMM\": want a name such as TERM"} {
		if _, err := ParseSignal(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want it to say %q", in, err, want)
		}
	}
}

// The exponential delay never overflows: it stays positive and growing without a cap.
func TestExponentialDelayNeverOverflows(t *testing.T) {
	p := policy{Exponential: true}
	last := time.Duration(0)
	for n := 1; n < 200; n++ {
		d := p.delay(n)
		if d <= 0 || d < last {
			t.Fatalf("delay(%d) = %v after %v", n, d, last)
		}
		last = d
	}
}

// Over memory_max, a RUNNING process is stopped (its stop_signal, then SIGKILL after
// stop_timeout) and started again once it exited, an automatic restart; a stop asked
// for meanwhile, or the shutdown, leaves it stopped.
func TestStepMemoryRestart(t *testing.T) {
	over := event{Kind: evMemory, Err: "memory_max: 530 MiB of RSS, over 512 MiB"}
	s, acts, err := step(base(Running), over, t0)
	if err != nil || s.State != Stopping || actStrings(acts)[0] != "RUNNING>STOPPING" || acts[0].Reason != over.Err || s.StopWhy != over.Err {
		t.Fatalf("over: %v %q %v (stop why %q: status says it, not 'stop requested')", s.State, actStrings(acts), err, s.StopWhy)
	}
	got, acts, _ := step(s, event{Kind: evExit, Exit: Exit{Code: -1, Signal: syscall.SIGTERM}}, t0.Add(time.Second))
	if got.State != Starting || !slices.Equal(actStrings(acts), []string{"STOPPING>STOPPED", "STOPPED>STARTING", "spawn"}) || got.Restarts != 1 {
		t.Errorf("exit: %v %q restarts %d", got.State, actStrings(acts), got.Restarts)
	}
	for _, then := range []event{{Kind: evStop}, {Kind: evHold}} {
		s2, _, _ := step(s, then, t0)
		got, acts, _ := step(s2, event{Kind: evExit, Exit: Exit{Code: 0}}, t0.Add(time.Second))
		if got.State != Stopped || !slices.Equal(actStrings(acts), []string{"STOPPING>STOPPED"}) {
			t.Errorf("after %v: %v %q", then.Kind, got.State, actStrings(acts))
		}
	}
	if _, _, err := step(base(Backoff), over, t0); !errors.Is(err, ErrNotRunning) {
		t.Errorf("in BACKOFF: %v", err)
	}

	// Within a second of its start (a start-up over the limit): spawned again a second
	// after that start, as any automatic restart, not at once; a stop meanwhile cancels.
	s, _, _ = step(base(Starting), over, t0.Add(300*time.Millisecond))
	got, acts, _ = step(s, event{Kind: evExit, Exit: Exit{Code: -1, Signal: syscall.SIGTERM}}, t0.Add(400*time.Millisecond))
	if got.State != Stopped || !got.RestartDue || !slices.Equal(actStrings(acts), []string{"STOPPING>STOPPED", "timer restart 600ms"}) {
		t.Fatalf("exit within a second of the start: %v due %v %q", got.State, got.RestartDue, actStrings(acts))
	}
	later, acts, _ := step(got, event{Kind: evTimer, Timer: tRestart, Gen: got.Gen}, t0.Add(time.Second))
	if later.State != Starting || later.Restarts != 1 || later.RestartWhy != over.Err || !slices.Equal(actStrings(acts), []string{"STOPPED>STARTING", "spawn"}) {
		t.Errorf("its timer: %v restarts %d why %q %q", later.State, later.Restarts, later.RestartWhy, actStrings(acts))
	}
	stopped, _, err := step(got, event{Kind: evStop}, t0.Add(500*time.Millisecond))
	if err != nil || stopped.RestartDue {
		t.Errorf("a stop meanwhile: due %v, %v", stopped.RestartDue, err)
	}
	if s, acts, _ := step(stopped, event{Kind: evTimer, Timer: tRestart, Gen: got.Gen}, t0.Add(time.Second)); s.State != Stopped || len(acts) != 0 {
		t.Errorf("the cancelled timer: %v %q", s.State, actStrings(acts))
	}
}

// A server that daemonizes exits 0 within start_secs and its daemon is killed with it:
// FATAL (the default start_secs) says what EXITED said, the foreground-mode hint.
func TestStepDaemonizerHintedWhenTooQuick(t *testing.T) {
	r := &run{t: t, s: procState{Pol: testPolicy()}}
	r.do(0, event{Kind: evStart})
	r.do(0, event{Kind: evSpawned, Pid: 1})
	r.do(10*time.Millisecond, event{Kind: evExit, Exit: Exit{Code: 0, LeftKilled: true}})
	want := tooQuickly + "; exit status 0; what it left running killed with it (a program that forks a daemon wants its foreground mode)"
	if r.s.Err != want {
		t.Errorf("err %q, want %q", r.s.Err, want)
	}
}
