package engine

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

func base(st State) procState {
	s := procState{State: st, Pol: testPolicy(), Gen: 7}
	switch st {
	case Starting, Running, Stopping, Unknown:
		s.Pid, s.Started = 100, t0
	case Backoff:
		s.Backoff = 1
	case Exited:
		s.ExitCode = 1 // not expected: its policy restarts it
	}
	return s
}

func timerFor(st State) timerKind {
	switch st {
	case Backoff:
		return tRetry
	case Stopping:
		return tKill
	case Exited:
		return tRestart
	}
	return tPromote
}

func eventOf(k evKind, st State) event {
	switch k {
	case evSpawned:
		return event{Kind: k, Pid: 101}
	case evSpawnFailed:
		return event{Kind: k, Err: "can't find command '/x'"}
	case evExit:
		return event{Kind: k, Exit: Exit{Code: 1}}
	case evTimer:
		return event{Kind: k, Timer: timerFor(st), Gen: 7}
	case evSignal:
		return event{Kind: k, Sig: syscall.SIGHUP}
	case evSignalFailed:
		return event{Kind: k, Err: "operation not permitted"}
	case evMemory:
		return event{Kind: k, Err: "memory_max: 530 MiB of RSS, over 512 MiB"}
	}
	return event{Kind: k}
}

func actStrings(acts []action) []string {
	out := []string{}
	for _, a := range acts {
		out = append(out, a.String())
	}
	return out
}

type want struct {
	state State
	acts  string // actions joined with ", "
	err   error
}

func TestStepEveryPair(t *testing.T) {
	ill := want{err: ErrIllegal}
	table := map[State]map[evKind]want{
		Stopped: {
			evStart: {Starting, "STOPPED>STARTING, spawn", nil}, evStop: {err: ErrNotRunning},
			evSpawned: ill, evSpawnFailed: ill, evExit: ill, evTimer: ill,
			evSignal: {err: ErrNotRunning}, evSignalFailed: ill, evHold: {Stopped, "", nil}, evMemory: {err: ErrNotRunning},
		},
		Starting: {
			evStart:        {err: ErrAlreadyStarted},
			evStop:         {Stopping, "STARTING>STOPPING, signal SIGTERM, timer kill 10s", nil},
			evSpawned:      {Starting, "timer promote 1s", nil},
			evSpawnFailed:  {Backoff, "STARTING>BACKOFF, timer retry 1s", nil},
			evExit:         {Backoff, "STARTING>BACKOFF, timer retry 1s", nil},
			evTimer:        {Running, "STARTING>RUNNING", nil},
			evSignal:       {Starting, "signal SIGHUP", nil},
			evSignalFailed: {Unknown, "STARTING>UNKNOWN", nil},
			evHold:         {Starting, "", nil},
			evMemory:       {Stopping, "STARTING>STOPPING, signal SIGTERM, timer kill 10s", nil},
		},
		Running: {
			evStart:   {err: ErrAlreadyStarted},
			evStop:    {Stopping, "RUNNING>STOPPING, signal SIGTERM, timer kill 10s", nil},
			evSpawned: ill, evSpawnFailed: ill,
			evExit:         {Exited, "RUNNING>EXITED, timer restart 500ms", nil},
			evTimer:        ill,
			evSignal:       {Running, "signal SIGHUP", nil},
			evSignalFailed: {Unknown, "RUNNING>UNKNOWN", nil},
			evHold:         {Running, "", nil},
			evMemory:       {Stopping, "RUNNING>STOPPING, signal SIGTERM, timer kill 10s", nil},
		},
		Backoff: {
			evStart: {err: ErrAlreadyStarted}, evStop: {Stopped, "BACKOFF>STOPPED", nil},
			evSpawned: ill, evSpawnFailed: ill, evExit: ill,
			evTimer:  {Starting, "BACKOFF>STARTING, spawn", nil},
			evSignal: {err: ErrNotRunning}, evSignalFailed: ill, evHold: {Backoff, "", nil}, evMemory: {err: ErrNotRunning},
		},
		Stopping: {
			evStart: {err: ErrStopping}, evStop: {Stopping, "", nil},
			evSpawned: ill, evSpawnFailed: ill,
			evExit:         {Stopped, "STOPPING>STOPPED", nil},
			evTimer:        {Stopping, "signal SIGKILL", nil},
			evSignal:       {Stopping, "signal SIGHUP", nil},
			evSignalFailed: {Unknown, "STOPPING>UNKNOWN", nil},
			evHold:         {Stopping, "", nil}, evMemory: {err: ErrNotRunning},
		},
		Exited: {
			evStart: {Starting, "EXITED>STARTING, spawn", nil}, evStop: {err: ErrNotRunning},
			evSpawned: ill, evSpawnFailed: ill, evExit: ill,
			evTimer:  {Starting, "EXITED>STARTING, spawn", nil},
			evSignal: {err: ErrNotRunning}, evSignalFailed: ill, evHold: {Exited, "", nil}, evMemory: {err: ErrNotRunning},
		},
		Fatal: {
			evStart: {Starting, "FATAL>STARTING, spawn", nil}, evStop: {err: ErrNotRunning},
			evSpawned: ill, evSpawnFailed: ill, evExit: ill, evTimer: ill,
			evSignal: {err: ErrNotRunning}, evSignalFailed: ill, evHold: {Fatal, "", nil}, evMemory: {err: ErrNotRunning},
		},
		Unknown: {
			evStart:   {err: ErrUnknownState},
			evStop:    {Stopping, "UNKNOWN>STOPPING, signal SIGTERM, timer kill 10s", nil},
			evSpawned: ill, evSpawnFailed: ill,
			evExit:  {Stopped, "UNKNOWN>STOPPED", nil},
			evTimer: ill, evSignal: {Unknown, "signal SIGHUP", nil}, evSignalFailed: ill,
			evHold: {Unknown, "", nil}, evMemory: {err: ErrNotRunning},
		},
	}
	now := t0.Add(500 * time.Millisecond)
	for _, st := range States {
		for k := range numEvents {
			t.Run(fmt.Sprintf("%v/%v", st, k), func(t *testing.T) {
				w, ok := table[st][k]
				if !ok {
					t.Fatalf("no expectation for (%v, %v)", st, k)
				}
				s := base(st)
				got, acts, err := step(s, eventOf(k, st), now)
				if w.err != nil {
					if !errors.Is(err, w.err) {
						t.Fatalf("err = %v, want %v", err, w.err)
					}
					if got.State != st || got.Gen != s.Gen || len(acts) != 0 {
						t.Fatalf("a refused event changed the state: %v gen %d, %v", got.State, got.Gen, acts)
					}
					return
				}
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if got.State != w.state {
					t.Errorf("state = %v, want %v", got.State, w.state)
				}
				if a := strings.Join(actStrings(acts), ", "); a != w.acts {
					t.Errorf("actions = %q, want %q", a, w.acts)
				}
				if (got.State != st) != (got.Gen != s.Gen) {
					t.Errorf("Gen %d -> %d while state %v -> %v", s.Gen, got.Gen, st, got.State)
				}
				if got.State != st && !got.Since.Equal(now) {
					t.Errorf("Since = %v, want now", got.Since)
				}
			})
		}
	}
}

func TestStepTimers(t *testing.T) {
	for _, st := range []State{Starting, Backoff, Stopping, Exited} {
		for _, k := range []timerKind{tPromote, tRetry, tKill, tRestart} {
			if k == timerFor(st) {
				continue
			}
			_, _, err := step(base(st), event{Kind: evTimer, Timer: k, Gen: 7}, t0)
			if !errors.Is(err, ErrIllegal) {
				t.Errorf("%v timer %v: err = %v, want illegal", st, k, err)
			}
		}
		s := base(st)
		got, acts, err := step(s, event{Kind: evTimer, Timer: timerFor(st), Gen: 6}, t0)
		if err != nil || len(acts) != 0 || got.State != s.State || got.Gen != s.Gen {
			t.Errorf("%v stale timer: %v %v %v", st, got.State, acts, err)
		}
	}
}

// run drives a procState through events at given offsets from t0, collecting every
// action as "offset action".
type run struct {
	t   *testing.T
	s   procState
	log []string
}
