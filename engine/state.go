// Package engine runs a plan: one state machine per process with supervisord's states and
// rules, start and stop ordering by priority and depends_on, and the Supervisor that the
// daemon and control API drive. Processes, time, probes, logs and sampling sit behind the
// small interfaces of launch.go, so the state machine is tested without real processes.
package engine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/starvisor/starvisor/engine/plan"
)

// State is a process state, with supervisord's names and codes.
type State int

// The process states (supervisord's states.py).
const (
	Stopped  State = 0    // never started, or stopped by request
	Starting State = 10   // spawned, not yet up for start_secs
	Running  State = 20   // up for start_secs
	Backoff  State = 30   // failed to start; waiting to retry
	Stopping State = 40   // stop signal sent, waiting for the exit
	Exited   State = 100  // exited from RUNNING, expectedly or not
	Fatal    State = 200  // gave up after start_retries
	Unknown  State = 1000 // signalling failed unexpectedly (for example EPERM)
)

// States lists every state in code order.
var States = []State{Stopped, Starting, Running, Backoff, Stopping, Exited, Fatal, Unknown}

func (s State) String() string {
	switch s {
	case Stopped:
		return "STOPPED"
	case Starting:
		return "STARTING"
	case Running:
		return "RUNNING"
	case Backoff:
		return "BACKOFF"
	case Stopping:
		return "STOPPING"
	case Exited:
		return "EXITED"
	case Fatal:
		return "FATAL"
	case Unknown:
		return "UNKNOWN"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// ParseState is the inverse of State.String.
func ParseState(name string) (State, error) {
	for _, s := range States {
		if s.String() == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("parsestate: unknown state %q", name)
}

// Live reports whether a process may exist in state s (it has a pid).
func (s State) Live() bool {
	return s == Starting || s == Running || s == Stopping || s == Unknown
}

// Active reports whether s counts as started: start on it is "already started"
// (supervisord's RUNNING_STATES).
func (s State) Active() bool { return s == Starting || s == Running || s == Backoff }

// Errors a per-process action can end with, in supervisorctl's words. They arrive wrapped
// in a *ProcessError naming the process; test them with errors.Is.
var (
	ErrNoSuchProcess       = errors.New("no such process")
	ErrAlreadyStarted      = errors.New("already started")
	ErrNotRunning          = errors.New("not running")
	ErrSpawn               = errors.New("spawn error")
	ErrJobFailed           = errors.New("job failed") // ready = probe.exited(), and it exited with an unexpected code
	ErrAbnormalTermination = errors.New("abnormal termination")
	ErrUnknownState        = errors.New("is in an unknown process state")
	ErrStopping            = errors.New("is stopping")
	ErrDependency          = errors.New("dependency not ready")
	ErrShutdown            = errors.New("supervisor is shutting down")
	ErrIllegal             = errors.New("illegal transition")
	// ErrRemoved: an apply removed the process while an action waited for it.
	ErrRemoved = fmt.Errorf("%w: an apply removed it", ErrNoSuchProcess)
)

// ProcessError is the outcome of an action on one process. Supervisor methods acting on
// several processes return errors.Join of these, one per failed process, in start order.
type ProcessError struct {
	Name string
	Err  error
}

func (e *ProcessError) Error() string { return e.Name + ": " + e.Err.Error() }

func (e *ProcessError) Unwrap() error { return e.Err }

// ProcessErrors flattens an error returned by Start, Stop, Restart or Signal into its
// per-process parts (nil when err is nil).
func ProcessErrors(err error) []*ProcessError {
	var out []*ProcessError
	var walk func(error)
	walk = func(e error) {
		if pe, ok := e.(*ProcessError); ok {
			out = append(out, pe)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// ParseSignal reads a signal as supervisord does: a name with or without "SIG", any
// case, or a number.
func ParseSignal(name string) (syscall.Signal, error) {
	n := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(name)), "SIG")
	if sig := plan.SignalNum(n); sig != 0 {
		return sig, nil
	}
	if v, err := strconv.Atoi(n); err == nil && v > 0 && v < 65 {
		return syscall.Signal(v), nil
	} else if err == nil {
		if v == 0 {
			return 0, fmt.Errorf("bad signal %q: 0 sends nothing (kill -0 only checks a process exists; `starvisor pid NAME` says whether it runs)", name)
		}
		return 0, fmt.Errorf("bad signal %q: want a name (TERM, HUP, USR1, ...) or a number from 1 to 64", name)
	}
	return 0, fmt.Errorf("bad signal name %q: want a name such as TERM, HUP, INT, QUIT, KILL, USR1, USR2, ABRT (SIG optional, any case) or a number from 1 to 64", name)
}

// signalName gives the name supervisord logs ("SIGTERM", "SIGSEGV").
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(sig))
}
