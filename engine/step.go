package engine

import (
	"cmp"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// tooQuickly is supervisord's description of a process that died before start_secs.
const tooQuickly = "Exited too quickly (process log may have details)"

// minRespawn spaces automatic restarts from EXITED: a process that reached RUNNING and
// exits again is respawned at once, but never sooner than this after its previous spawn,
// so a start_secs=0 program that crashes at once cannot spin (supervisord's 1-s loop gave
// the same spacing by accident).
const minRespawn = time.Second

// policy is the part of a program that the state machine decides by.
type policy struct {
	StartSecs    time.Duration
	StartRetries int // -1: retry forever
	Exponential  bool
	BackoffMax   time.Duration // 0: no cap
	Autorestart  string
	ExitCodes    []int
	StopSignal   syscall.Signal
	StopTimeout  time.Duration
	StopAsGroup  bool
	KillAsGroup  bool
	Job          bool // ready = probe.exited(): an expected exit is its success, even before start_secs
}

func policyOf(pr plan.Program) policy {
	sig, err := ParseSignal(pr.StopSignal)
	if err != nil {
		sig = syscall.SIGTERM // Validate rejects unknown names; a zero plan means TERM
	}
	return policy{
		StartSecs:    time.Duration(pr.StartSecs) * time.Second,
		StartRetries: pr.StartRetries,
		Exponential:  pr.Backoff == plan.BackoffExponential,
		BackoffMax:   pr.BackoffMax.D(),
		Autorestart:  pr.Autorestart,
		ExitCodes:    pr.ExitCodes,
		StopSignal:   sig,
		StopTimeout:  pr.StopTimeout.D(),
		StopAsGroup:  pr.StopAsGroup,
		KillAsGroup:  pr.KillAsGroup || pr.StopAsGroup, // stop_as_group implies kill_as_group
		Job:          pr.IsJob(),
	}
}

// expected says whether an exit is one of the program's exit_codes (a signal never is).
func (p policy) expected(e Exit) bool {
	return e.Signal == 0 && e.Code >= 0 && slices.Contains(p.ExitCodes, e.Code)
}

// delay is the wait before retry n (n >= 1): n seconds (linear, supervisord) or 2^(n-1)
// seconds (exponential), capped at BackoffMax.
func (p policy) delay(n int) time.Duration {
	d := time.Duration(n) * time.Second
	if p.Exponential {
		d = time.Second << min(n-1, 32) // 136 years; one more doubling overflows int64
	}
	if p.BackoffMax > 0 && d > p.BackoffMax {
		d = p.BackoffMax
	}
	return d
}

// procState is everything the state machine knows about one process.
type procState struct {
	State    State
	Pol      policy
	Backoff  int // failed starts in a row (supervisord's backoff counter)
	Gen      int // bumped on every state change; timers of an older Gen are stale
	Pid      int
	Since    time.Time // last state change
	Started  time.Time // last successful spawn
	Stopped  time.Time // last exit; zero when the process never ran
	ExitCode int
	// ExitSignal: the signal that ended the last run, or 0 (ExitCode is -1 then).
	ExitSignal syscall.Signal
	Done       bool // EXITED with one of its exit_codes (a job's success)
	Restarts   int  // spawns the daemon made by itself (autorestart, backoff retries) since the last start asked for
	// RestartWhy and RestartAt: what the last of those Restarts followed (an exit, a
	// failed start, memory_max), and when; status says it of a crash loop.
	RestartWhy string
	RestartAt  time.Time
	LastExit   string // how the last run that lived start_secs ended: a delayed restart's why
	LeftKilled bool   // and it left processes running, killed with it (a daemon it forked)
	// SpawnFailed: the last start attempt could not spawn (a missing or non-executable
	// command): nothing ran, so nothing in the log is about it.
	SpawnFailed bool
	Err         string // why BACKOFF, FATAL or UNKNOWN
	JobFail     bool   // BACKOFF or FATAL because the job ran and exited with an unexpected code
	Hold        bool   // shutting down: no automatic restarts
	// RestartDue: EXITED, and its tRestart timer is armed (the respawn waits out
	// minRespawn). Kept rather than derived from Pol, which an apply may change meanwhile.
	RestartDue bool
	// Respawn: STOPPING for memory_max, to start again once stopped (unless a stop
	// comes meanwhile, or the shutdown).
	Respawn bool
	// KillAfter: STOPPING, the stop_timeout its tKill timer was armed with.
	KillAfter time.Duration
	// StopWhy: STOPPING by the daemon's own decision (memory_max), why; "" for a stop
	// someone asked for.
	StopWhy string
	// PromoteAfter: STARTING, the start_secs its tPromote timer was armed with (an
	// apply may change the policy meanwhile: it is for the next start).
	PromoteAfter time.Duration
}

type evKind int

const (
	evStart        evKind = iota // start requested
	evStop                       // stop requested
	evSpawned                    // the launcher started the process (Pid)
	evSpawnFailed                // the launcher could not start it (Err)
	evExit                       // the process was reaped (Exit)
	evTimer                      // a timer armed by actTimer fired (Timer, Gen)
	evSignal                     // a user signal (Sig)
	evSignalFailed               // sending a signal failed, not with ESRCH (Err)
	evHold                       // shutting down: no automatic starts from now on
	evMemory                     // its tree's RSS is over memory_max (Err: by how much): restart it
	numEvents
)

var evNames = [...]string{"start", "stop", "spawned", "spawn-failed", "exit", "timer", "signal", "signal-failed", "hold", "memory"}

func (k evKind) String() string { return evNames[k] }

type timerKind int

const (
	tPromote timerKind = iota // STARTING → RUNNING after start_secs
	tRetry                    // BACKOFF → STARTING
	tKill                     // STOPPING: SIGKILL after stop_timeout
	tRestart                  // EXITED → STARTING, after minRespawn
)

var timerNames = [...]string{"promote", "retry", "kill", "restart"}

func (k timerKind) String() string { return timerNames[k] }

type event struct {
	Kind  evKind
	Pid   int
	Err   string
	Exit  Exit
	Timer timerKind
	Gen   int
	Sig   syscall.Signal
}

type actKind int

const (
	actChange actKind = iota // a state change to publish (From, To, Reason)
	actSpawn                 // start the process
	actSignal                // send Sig, to the group when Group
	actTimer                 // call back with evTimer{Timer, Gen} after After
)

type action struct {
	Kind     actKind
	From, To State
	Reason   string
	Pid      int // of a change into RUNNING, or out of a live state: the process it is about
	Sig      syscall.Signal
	Group    bool
	Stop     bool // the stop signal: a stopped (SIGSTOP) process is continued after it
	Timer    timerKind
	After    time.Duration
	Gen      int
}

func (a action) String() string {
	switch a.Kind {
	case actChange:
		return fmt.Sprintf("%v>%v", a.From, a.To)
	case actSpawn:
		return "spawn"
	case actSignal:
		if a.Group {
			return "signal " + signalName(a.Sig) + " group"
		}
		return "signal " + signalName(a.Sig)
	}
	return fmt.Sprintf("timer %v %v", a.Timer, a.After)
}

// step is the whole state machine: given a state, an event and the time, it returns the
// next state and what to do. It has no goroutines and does no I/O. An event the state
// does not accept returns an error (ErrAlreadyStarted, ErrNotRunning, ... or ErrIllegal)
// and leaves the state as it was; a stale timer is ignored.
func step(s procState, ev event, now time.Time) (procState, []action, error) {
	switch {
	case ev.Kind == evTimer && ev.Gen != s.Gen:
		return s, nil, nil // stale
	case ev.Kind == evTimer && s.Hold && (ev.Timer == tRetry || ev.Timer == tRestart):
		return s, nil, nil // no automatic starts while shutting down
	case ev.Kind == evHold:
		s.Hold = true
		return s, nil, nil
	case ev.Kind == evMemory && s.State != Running && s.State != Starting:
		return s, nil, ErrNotRunning // stopping, or gone: no restart to make
	}
	var acts []action
	live := s.Pid // the process this event is about, before an exit forgets it
	to := func(st State, reason string) {
		a := action{Kind: actChange, From: s.State, To: st, Reason: reason}
		switch {
		case st == Running:
			a.Pid = s.Pid
		case s.State.Live() && !st.Live():
			a.Pid = live
		}
		acts = append(acts, a)
		s.State, s.Since = st, now
		s.Gen++
		s.RestartDue, s.PromoteAfter = false, 0
	}
	restarted := func(why string) { // an automatic restart: the daemon's own spawn
		s.Restarts++
		s.RestartWhy, s.RestartAt = why, now
	}
	begin := func() {
		to(Starting, "")
		s.Pid, s.Err, s.Done = 0, "", false
		acts = append(acts, action{Kind: actSpawn})
	}
	fail := func(reason string, last bool) { // a start attempt failed; last: no retry
		s.Pid, s.Err, s.JobFail = 0, reason, false
		s.Backoff++
		to(Backoff, reason)
		if last || s.Pol.StartRetries >= 0 && s.Backoff > s.Pol.StartRetries {
			why := "too many start retries too quickly" // supervisord's words
			switch {
			case last:
				why = "not retried (autorestart = False)"
			case s.Pol.Job:
				why = fmt.Sprintf("failed %d times (start_retries = %d)", s.Backoff, s.Pol.StartRetries)
			}
			s.Backoff = 0
			to(Fatal, why)
			return
		}
		acts = append(acts, action{Kind: actTimer, Timer: tRetry, After: s.Pol.delay(s.Backoff), Gen: s.Gen})
	}
	stop := func() {
		to(Stopping, cmp.Or(ev.Err, "stop requested"))
		s.KillAfter, s.StopWhy = s.Pol.StopTimeout, ev.Err
		acts = append(acts,
			action{Kind: actSignal, Sig: s.Pol.StopSignal, Group: s.Pol.StopAsGroup, Stop: true},
			action{Kind: actTimer, Timer: tKill, After: s.Pol.StopTimeout, Gen: s.Gen})
	}
	signal := func() {
		acts = append(acts, action{Kind: actSignal, Sig: ev.Sig})
	}
	exited := func() { // reaped after start_secs
		s.Pid, s.Backoff, s.Stopped, s.ExitCode = 0, 0, now, ev.Exit.Code
		s.ExitSignal = ev.Exit.Signal
		expected := s.Pol.expected(ev.Exit)
		s.Done = expected
		s.LastExit = exitWords(ev.Exit, &expected)
		s.LeftKilled = ev.Exit.LeftKilled
		to(Exited, s.LastExit)
		restart := s.Pol.Autorestart == plan.RestartAlways ||
			s.Pol.Autorestart == plan.RestartUnexpected && !expected
		switch {
		case !restart || s.Hold:
		case now.Sub(s.Started) >= minRespawn:
			restarted(s.LastExit)
			begin()
		default:
			acts = append(acts, action{Kind: actTimer, Timer: tRestart, After: minRespawn - now.Sub(s.Started), Gen: s.Gen})
			s.RestartDue = true
		}
	}
	illegal := func() (procState, []action, error) {
		return s, nil, fmt.Errorf("step: %v in %v: %w", ev.Kind, s.State, ErrIllegal)
	}

	switch s.State {
	case Stopped, Exited, Fatal:
		switch {
		case ev.Kind == evStart && s.Hold:
			return s, nil, ErrShutdown
		case ev.Kind == evStart:
			s.Restarts, s.RestartWhy = 0, ""
			begin()
		case ev.Kind == evTimer && s.State == Exited && ev.Timer == tRestart:
			s.RestartDue = false
			if !s.Pol.restarts(s.ExitCode) {
				break // an apply changed the policy meanwhile: it no longer restarts
			}
			restarted(s.LastExit)
			begin()
		case ev.Kind == evTimer && s.State == Stopped && ev.Timer == tRestart && s.RestartDue:
			restarted(s.StopWhy) // memory_max's, a second after its last start
			begin()
		case ev.Kind == evStop && s.pendingRestart():
			to(Stopped, "stop requested") // cancels the pending restart
		case ev.Kind == evStop || ev.Kind == evSignal:
			return s, nil, ErrNotRunning
		default:
			return illegal()
		}
	case Starting:
		switch ev.Kind {
		case evStart:
			return s, nil, ErrAlreadyStarted
		case evStop:
			stop()
		case evMemory:
			stop() // Err: why
			s.Respawn = !s.Hold
		case evSpawned:
			s.Pid, s.Started, s.SpawnFailed = ev.Pid, now, false
			if s.Pol.Job {
				// Stays STARTING until it exits: its exit is its success or its failure,
				// however long it ran, so a failing job backs off and ends FATAL.
			} else if s.Pol.StartSecs <= 0 {
				s.Backoff = 0
				to(Running, "")
			} else {
				s.PromoteAfter = s.Pol.StartSecs
				acts = append(acts, action{Kind: actTimer, Timer: tPromote, After: s.PromoteAfter, Gen: s.Gen})
			}
		case evSpawnFailed:
			fail(ev.Err, false)
			s.SpawnFailed = true
		case evExit:
			expected := s.Pol.expected(ev.Exit)
			if s.Pol.Job && !expected {
				s.Stopped, s.ExitCode = now, ev.Exit.Code
				s.ExitSignal = ev.Exit.Signal
				// A job's autorestart = False means one run, as for a service.
				fail(exitWords(ev.Exit, &expected), s.Pol.Autorestart == plan.RestartNever)
				s.JobFail = true
				break
			}
			if now.Sub(s.Started) < cmp.Or(s.PromoteAfter, s.Pol.StartSecs) && !s.Pol.Job {
				s.Stopped, s.ExitCode = now, ev.Exit.Code
				s.ExitSignal = ev.Exit.Signal
				// supervisord's words, then how it ended (an OOM kill is SIGKILL): its log
				// may well hold no details.
				words := tooQuickly + "; " + exitWords(ev.Exit, nil)
				if ev.Exit.LeftKilled && !ev.Exit.GroupKilled {
					// nginx, redis with daemonize yes: the hint EXITED gives (describe), here
					// where the default start_secs makes it end, FATAL.
					words += " (a program that forks a daemon wants its foreground mode)"
				}
				fail(words, false)
				break
			}
			// Lived start_secs, the promote timer lost the race; or a job done. Through
			// RUNNING, as supervisord's states go.
			to(Running, "")
			exited()
		case evTimer:
			if ev.Timer != tPromote {
				return illegal()
			}
			s.Backoff = 0
			to(Running, fmt.Sprintf("process has stayed up for > than %v (start_secs)", cmp.Or(s.PromoteAfter, s.Pol.StartSecs)))
		case evSignal:
			signal()
		case evSignalFailed:
			s.Err = ev.Err
			to(Unknown, ev.Err)
		default:
			return illegal()
		}
	case Running:
		switch ev.Kind {
		case evStart:
			return s, nil, ErrAlreadyStarted
		case evStop:
			stop()
		case evMemory:
			stop() // Err: why
			s.Respawn = !s.Hold
		case evExit:
			exited()
		case evSignal:
			signal()
		case evSignalFailed:
			s.Err = ev.Err
			to(Unknown, ev.Err)
		default:
			return illegal()
		}
	case Backoff:
		switch ev.Kind {
		case evStart:
			return s, nil, ErrAlreadyStarted
		case evStop:
			to(Stopped, "stop requested") // no process to signal; keeps the backoff count
		case evTimer:
			if ev.Timer != tRetry {
				return illegal()
			}
			restarted(s.Err)
			begin()
		case evSignal:
			return s, nil, ErrNotRunning
		default:
			return illegal()
		}
	case Stopping:
		switch ev.Kind {
		case evStart:
			return s, nil, ErrStopping
		case evStop: // already on its way
			s.Respawn = false // and stays down: the stop asked for comes last
		case evExit:
			s.Pid, s.Stopped, s.ExitCode = 0, now, ev.Exit.Code
			s.ExitSignal = ev.Exit.Signal
			to(Stopped, exitWords(ev.Exit, nil))
			if s.Respawn && !s.Hold {
				if wait := minRespawn - now.Sub(s.Started); wait > 0 {
					// At most once a second, as any automatic restart: a start-up over
					// its memory_max, killed STARTING, was spawned again at once, three
					// times in 0.7 s while a dashboard polled status.
					acts = append(acts, action{Kind: actTimer, Timer: tRestart, After: wait, Gen: s.Gen})
					s.RestartDue = true
				} else {
					restarted(s.StopWhy)
					begin()
				}
			}
			s.Respawn = false
		case evTimer:
			if ev.Timer != tKill {
				return illegal()
			}
			acts = append(acts, action{Kind: actSignal, Sig: syscall.SIGKILL, Group: s.Pol.KillAsGroup})
		case evSignal:
			signal()
		case evSignalFailed:
			s.Err = ev.Err
			to(Unknown, ev.Err)
		default:
			return illegal()
		}
	case Unknown:
		switch ev.Kind {
		case evStart:
			return s, nil, ErrUnknownState
		case evStop:
			stop() // try again
		case evExit:
			s.Pid, s.Stopped, s.ExitCode = 0, now, ev.Exit.Code
			s.ExitSignal = ev.Exit.Signal
			to(Stopped, exitWords(ev.Exit, nil))
		case evSignal:
			signal()
		default:
			return illegal()
		}
	default:
		return illegal()
	}
	return s, acts, nil
}

// pendingRestart reports whether an EXITED process (or one STOPPED by memory_max) waits
// for its tRestart timer: it would be restarted by policy (by memory_max) and the only
// reason it is not yet is minRespawn.
func (s procState) pendingRestart() bool {
	return (s.State == Exited || s.State == Stopped) && !s.Hold && s.RestartDue
}

// restarts says whether the policy restarts a process that exited with code (-1: killed
// by a signal) after start_secs.
func (p policy) restarts(code int) bool {
	switch p.Autorestart {
	case plan.RestartAlways:
		return true
	case plan.RestartUnexpected:
		return code < 0 || !slices.Contains(p.ExitCodes, code)
	}
	return false
}

// exitWords describes an exit as supervisord logs it: "exit status 1; not expected",
// "terminated by SIGKILL". expected nil leaves out the verdict (stops).
func exitWords(e Exit, expected *bool) string {
	w := fmt.Sprintf("exit status %d", e.Code)
	if e.Signal != 0 {
		w = "terminated by " + signalName(e.Signal)
		if e.Core {
			w += " (core dumped)" // supervisord's words
		}
	}
	if e.GroupKilled && e.Signal != syscall.SIGKILL {
		w += "; the rest of its group by SIGKILL"
	} else if e.LeftKilled {
		w += "; what it left running killed with it"
	}
	if expected != nil {
		if *expected {
			return w + "; expected"
		}
		return w + "; not expected"
	}
	return w
}
