// Package probe waits for a program to be ready: a TCP port accepts, an HTTP URL
// answers the wanted status, a command exits 0, or its log shows a line.
package probe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/launcher"
	"github.com/starvisor/starvisor/engine/plan"
)

// DefaultInterval is the pause between attempts when the probe names none.
const DefaultInterval = time.Second

// firstPause is the pause after the first attempt; it doubles after each until it
// reaches the probe's interval. A service is often ready a fraction of a second after
// its spawn, when an attempt right at the spawn was too early: its dependents should
// not wait a whole interval for the next one.
const firstPause = 25 * time.Millisecond

var errTimedOut = errors.New("probe timed out")

// Prober runs ready probes; the zero value is ready to use.
type Prober struct {
	Client *http.Client // nil: a client that does not follow redirects (the redirect's status counts)
	// Launcher starts exec probes' commands; nil: one of the package's own. The daemon
	// passes its own: the commands share its cgroups (see execCheck).
	Launcher engine.Launcher
	// Daemon is the STARVISOR_DAEMON an exec probe's command carries, as the programs do:
	// the next daemon finds by it an attempt this one left running when it was killed.
	Daemon string
}

// New returns a Prober whose exec probes start through l (nil: see Prober).
func New(l engine.Launcher) engine.Prober { return &Prober{Launcher: l} }

// ownLauncher serves Probers given no launcher.
var ownLauncher = sync.OnceValue(launcher.New)

// check is one attempt; it may keep state between attempts (the log follower).
type check func(ctx context.Context) error

// Ready retries pr.Ready every Interval until it passes, Timeout passes (error
// "ready probe tcp 127.0.0.1:8080: timed out after 1m0s: <last error>") or ctx ends.
func (p *Prober) Ready(ctx context.Context, pr plan.Program) error {
	return p.prepare(pr, false)(ctx)
}

// Prepare does what Ready does before its first attempt, and returns the rest. The
// engine calls it just before it spawns the process: a log probe then reads only
// what is written after that point, not an earlier run's lines still in the file.
//
// A tcp or http probe whose address already answers then fails at once: another process
// listens there (a forgotten server, another bundle's), and would pass the probe while
// this one fails to bind, its dependents started against the other.
func (p *Prober) Prepare(pr plan.Program) func(ctx context.Context) error {
	return p.prepare(pr, true)
}

func (p *Prober) prepare(pr plan.Program, beforeSpawn bool) func(ctx context.Context) error {
	if pr.Ready == nil {
		return func(context.Context) error { return nil }
	}
	attempt, what, done, err := p.build(pr)
	if err != nil {
		return func(context.Context) error { return fmt.Errorf("ready probe %s: %w", what, err) }
	}
	if addr := listenAddr(pr.Ready); beforeSpawn && addr != "" && answers(addr) {
		if done != nil {
			done()
		}
		return func(context.Context) error {
			return fmt.Errorf("ready probe %s: %s answered before %s started: another process listens there", what, addr, pr.ProcessName)
		}
	}
	return func(ctx context.Context) error {
		if done != nil {
			defer done()
		}
		return retry(ctx, pr.Ready, attempt, what)
	}
}

// retry runs attempt until it passes, pb.Timeout passes or ctx ends: at once, then
// after pauses doubling from firstPause up to pb.Interval.
func retry(ctx context.Context, pb *plan.Probe, attempt check, what string) error {
	interval := pb.Interval.D()
	if interval <= 0 {
		interval = DefaultInterval
	}
	pause := min(firstPause, interval)
	if t := pb.Timeout.D(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, t, errTimedOut)
		defer cancel()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	tell := engine.ProbeAttempts(ctx)
	var last error
	for {
		select {
		case <-ctx.Done():
			if context.Cause(ctx) == errTimedOut {
				return fmt.Errorf("ready probe %s: timed out after %s: %w", what, pb.Timeout.D(), lastOr(last))
			}
			return fmt.Errorf("ready probe %s: %w (last attempt: %v)", what, ctx.Err(), lastOr(last))
		case <-timer.C:
		}
		err := attempt(ctx)
		if err == nil {
			return nil
		}
		// An attempt the deadline cut short says only that ("operation was canceled"):
		// the error worth reporting is the one before it.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		if ctx.Err() == nil {
			tell(err)
		}
		timer.Reset(pause)
		pause = min(2*pause, interval)
	}
}

func lastOr(err error) error {
	if err == nil {
		return errors.New("no attempt finished")
	}
	return err
}

// build turns the probe into an attempt function, a short description and what
// to release afterwards (may be nil).
func (p *Prober) build(pr plan.Program) (attempt check, what string, done func(), err error) {
	pb := pr.Ready
	switch pb.Kind {
	case plan.ProbeTCP:
		attempt, what, err = tcpCheck(pb)
	case plan.ProbeHTTP:
		attempt, what, err = p.httpCheck(pb)
	case plan.ProbeExec:
		l := p.Launcher
		if l == nil {
			l = ownLauncher()
		}
		attempt, what, err = execCheck(pr, l, p.Daemon)
	case plan.ProbeLog:
		var fl *follower
		fl, what, err = logCheck(pr)
		if err == nil {
			attempt, done = fl.check, fl.close
		}
	default:
		what, err = pb.Kind, fmt.Errorf("unknown kind %q", pb.Kind)
	}
	return attempt, what, done, err
}

// listenAddr is the host:port a tcp or http probe connects to; "" for the other kinds.
func listenAddr(pb *plan.Probe) string {
	switch pb.Kind {
	case plan.ProbeTCP:
		return net.JoinHostPort(cmp.Or(pb.Host, "127.0.0.1"), strconv.Itoa(pb.Port))
	case plan.ProbeHTTP:
		u, err := url.Parse(pb.URL)
		if err != nil || u.Hostname() == "" {
			return ""
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		return net.JoinHostPort(u.Hostname(), port)
	}
	return ""
}

// answers says whether something accepts connections at addr now.
// Taken says which address of pr's tcp or http probe already answers ("" when none, or
// the probe is of another kind): another process listens there, and the probe would
// pass for it while pr fails to bind (check says so before up).
func Taken(pr plan.Program) string {
	if pr.Ready == nil {
		return ""
	}
	if addr := listenAddr(pr.Ready); addr != "" && answers(addr) {
		return addr
	}
	return ""
}

func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
