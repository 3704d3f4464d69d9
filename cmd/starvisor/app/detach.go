package app

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/starvisor/starvisor/engine/api"
	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/plan"
)

// daemonLog is the detached daemon's own output (state changes, warnings), in log_dir.
const daemonLog = plan.DaemonLog

// tailLines is how much of the daemon's log is shown when it died during start-up.
const tailLines = 20

// detach re-runs this binary as `up -f <abs script>` in a session of its own, with its
// output appended to <log_dir>/starvisor.log, and returns once it answers on its socket
// and its autostart programs have left STOPPED and STARTING.
func (c *UpCmd) detach(d *Deps, p *plan.Plan) error {
	// Ctrl-C ends the wait, not the daemon (its own session): said, as it looked like an
	// aborted start. From the start: one in the first moments was lost.
	waiting, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c.waiting = waiting
	sock := p.Supervisor.Socket
	if api.Answers(sock) {
		return c.joinUp(d, p, nil)
	}
	if f, ok := errors.AsType[*api.ForeignDaemonError](api.Reach(sock)); ok {
		// Another user's daemon of this bundle, its socket out of reach: the refusal
		// said only that a log file or folder was not ours.
		return fmt.Errorf("up: this bundle's daemon already runs, as %s, not you (its socket: %s); or it ran so and left that folder behind, which only that user can look into: remove it, as that user or root, to run the bundle as yourself", f.Owner(), sock)
	}
	if err := lockedAlready(p); err != nil {
		return c.joinUp(d, p, err) // said here: the daemon's refusal would go into the other's log
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("up: detach: %w", err)
	}
	script, err := filepath.Abs(c.File)
	if err != nil {
		return fmt.Errorf("up: detach: %w", err)
	}
	if err := os.MkdirAll(p.Supervisor.LogDir, 0o755); err != nil {
		return fmt.Errorf("up: detach: %w", err)
	}
	logPath := filepath.Join(p.Supervisor.LogDir, daemonLog)
	args := []string{"up", "-f", script, "--own-log", logPath}
	for _, l := range c.Lib {
		args = append(args, "--lib", l)
	}
	// Refused before the log is written: root refusing a user's socket folder appended
	// the refusal through a symlink that user planted in log/.
	if err := safeSocketDir(filepath.Dir(sock)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("up: %w", err)
	}
	if err := safeStateDir(p.Supervisor.StateDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("up: %w", err)
	}
	logf, err := logs.OpenAppend(logPath, scriptOwner(p)...)
	if err != nil {
		return fmt.Errorf("up: detach: %w", err)
	}
	defer logf.Close()
	// The daemon holds its log locked (the child inherits this open file, lock and all):
	// two daemons of one folder's scripts, each with its own state_dir, wrote and rotated
	// one log/starvisor.log.
	// Another up --detach of this bundle at the same moment holds it too, for the
	// daemon it starts: that one is joined, once it holds the bundle's lock.
	for until := time.Now().Add(2 * time.Second); ; { // its daemon takes the lock in moments
		err := unix.Flock(int(logf.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) {
			break
		}
		if locked := lockedAlready(p); locked != nil || api.Answers(sock) {
			return c.joinUp(d, p, locked)
		}
		if time.Now().After(until) {
			return fmt.Errorf("up: %s is the log of another running daemon (another script of this folder?): give this one a log_dir of its own, supervisor(log_dir = ...)", logPath)
		}
		time.Sleep(pollEvery)
	}
	start, _ := logf.Seek(0, io.SeekEnd) // only this run's lines are shown if it dies
	cmd := exec.Command(exe, args...)
	cmd.Args[0] = os.Args[0]            // the name it was run by (multi-call test binaries dispatch on it)
	cmd.Stdout, cmd.Stderr = logf, logf // stdin stays nil: /dev/null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("up: detach: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	cl := api.NewClient(sock)
	deadline := time.Now().Add(c.Wait)
	// The daemon's own start-up is not the programs': --wait 0 ("do not wait for them")
	// still waits for it to answer, as long as a client waits for any daemon.
	answerBy := time.Now().Add(max(c.Wait, api.AnswerWithin))
	pause := pollEvery
	told, toldWhat, toldStrays, relayedStrays := time.Now(), "", false, false
	running := false
	sayRunning := func() { // once, as soon as there is a wait to tell of, else at the end
		if !running {
			running = true
			fmt.Fprintf(d.Stdout, "starvisor: daemon running (pid %d) on %s; its log: %s\n", cmd.Process.Pid, sock, logPath)
		}
	}
	for {
		select {
		case err := <-exited:
			if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == exitLocked {
				return c.joinUp(d, p, fmt.Errorf("up: a daemon of this bundle is already running on %s (one started at the same moment)", lockedSocket(p.Supervisor.StateDir, sock)))
			}
			how := "exit status 0: stopped by a shutdown, or a signal"
			if err != nil {
				how = err.Error()
			}
			fmt.Fprintf(d.Stderr, "starvisor: the daemon exited during start-up (%s); last lines of %s:\n", how, logPath)
			fmt.Fprint(d.Stderr, tailFrom(logPath, start, tailLines))
			return reported(ExitFailure)
		default:
		}
		pending, failed, err := notStarted(cl, p, d.Began)
		if err == nil && !relayedStrays {
			relayedStrays = true
			strayLines(d, logPath, start)
		}
		if err != nil && !toldStrays {
			// It stops what a killed daemon left before it answers: up to their
			// stop_timeout, which looked like a hang.
			if line := logLineWith(logPath, start, "starvisor: "+strayStopping+" an earlier daemon"); line != "" {
				toldStrays = true
				fmt.Fprintln(d.Stderr, line)
			}
		}
		if err == nil && (len(pending) == 0 || c.Wait == 0) {
			sayRunning()
			warnings(d, logPath, start)
			return namedFailures(d, failed)
		}
		if line := condensed(pending); err == nil && time.Since(told) >= applyTellEvery && (line != toldWhat || time.Since(told) >= 15*time.Second) {
			// A crash loop's back-off can take most of --wait: say what the wait is for,
			// when it changes, else now and then (the same line came every 2 s of a
			// probe's minute).
			told, toldWhat = time.Now(), line
			sayRunning() // first: its pid and log, while the wait may last a minute
			fmt.Fprintf(d.Stderr, "starvisor: up: waiting for %s\n", line)
		}
		if err != nil && time.Now().After(answerBy) {
			fmt.Fprintf(d.Stderr, "starvisor: the daemon (pid %d) does not answer after %s: %v; its log: %s\n", cmd.Process.Pid, max(c.Wait, api.AnswerWithin), err, logPath)
			return reported(ExitFailure)
		}
		if err == nil && time.Now().After(deadline) {
			sayRunning()
			// The verdict on stderr, with the failures: what a CI log shows of a failure.
			fmt.Fprintf(d.Stderr, "starvisor: up: still starting after %s: %s\n", c.Wait, condensed(pending))
			namedFailures(d, failed)
			return reported(ExitFailure)
		}
		if !c.pause(pause) {
			return c.interrupted(d, cmd.Process.Pid)
		}
		pause = min(2*pause, 200*time.Millisecond) // each look is a status round in the daemon
	}
}

// condensed is the processes still waited for ("web (STARTING)"), joined; past a dozen,
// a count per state with the first few names: 290 of them made one 7 KB line.
func condensed(pending []string) string {
	if len(pending) <= 12 {
		return strings.Join(pending, ", ")
	}
	var states []string
	names := map[string][]string{}
	for _, p := range pending {
		name, state, _ := strings.Cut(p, " (")
		if names[state] == nil {
			states = append(states, state)
		}
		names[state] = append(names[state], name)
	}
	parts := make([]string, len(states))
	for i, st := range states {
		ns := names[st]
		shown := strings.Join(ns[:min(len(ns), 3)], ", ")
		if len(ns) > 3 {
			shown += ", …"
		}
		parts[i] = fmt.Sprintf("%d %s: %s", len(ns), strings.TrimSuffix(st, ")"), shown)
	}
	return fmt.Sprintf("%d processes (%s)", len(pending), strings.Join(parts, "; "))
}

// joinUp answers an up --detach of a bundle whose daemon runs, or is starting: one
// started by another up --detach at the same moment (two deploy hooks, a cron job during
// a deploy) holds the bundle's lock before it answers, and applies its plan after. It
// waits for that daemon and its programs as for its own (--wait), then says what a
// second up says (alreadyUp). locked, when not nil, is the refusal to give instead when
// the lock was not taken a moment ago (a daemon whose socket was removed) or the daemon
// never answers.
func (c *UpCmd) joinUp(d *Deps, p *plan.Plan, locked error) error {
	sock := p.Supervisor.Socket
	answerBy := time.Now().Add(max(c.Wait, api.AnswerWithin))
	if locked != nil {
		if !lockedLately(p, api.AnswerWithin) {
			return locked
		}
		for !api.Answers(sock) {
			// A daemon makes its socket right after its locks: none 2 s after is no
			// daemon starting (its socket was removed).
			if time.Now().After(answerBy) || !isSocket(sock) && !lockedLately(p, 2*time.Second) {
				return locked
			}
			if !c.pause(pollEvery) {
				return c.interrupted(d, 0)
			}
		}
	}
	cl := expecting(api.NewClient(sock), scriptOwner(p))
	ctx, cancel := context.WithDeadline(context.Background(), answerBy)
	defer cancel()
	running, err := cl.Plan(ctx)
	for err != nil && !errors.Is(err, api.ErrUnreachable) && time.Now().Before(answerBy) {
		if !c.pause(pollEvery) { // "no plan applied yet": it stops a dead daemon's strays first
			return c.interrupted(d, 0)
		}
		running, err = cl.Plan(ctx)
	}
	if errors.Is(err, api.ErrForeignSocket) {
		return fmt.Errorf("up: %w", err) // another user's listener there: said, not "a daemon"
	}
	if err != nil || api.OtherBundle(running, p) != "" {
		return fmt.Errorf("up: a daemon is already running on %s", sock)
	}
	// What the daemon runs, not the script: a process the script adds (an apply's to
	// make) was waited for the whole --wait, in silence, then said fine.
	var pending []string
	for deadline := time.Now().Add(c.Wait); time.Now().Before(deadline); {
		if pending, _, err = notStartedJoined(cl, running, d.Began); err != nil || len(pending) == 0 {
			pending = nil
			break
		}
		if !c.pause(200 * time.Millisecond) {
			return c.interrupted(d, 0)
		}
	}
	return alreadyUp(d, p, running, sock, pending, c.Wait)
}

// lockedLately says whether one of the bundle's locks is held and was taken within d
// (a daemon writes its lock as it takes it).
func lockedLately(p *plan.Plan, d time.Duration) bool {
	for _, l := range append([]string{lockPath(p.Supervisor.StateDir)}, rootLockPaths(filepath.Join(p.Root, p.Entry))...) {
		if st, err := os.Stat(l); err == nil && time.Since(st.ModTime()) < d && lockHeld(l) {
			return true
		}
	}
	return false
}

// alreadyUp answers an up --detach of a bundle whose daemon runs: done, as a second
// `docker compose up -d` is (a deploy script or an Ansible task runs it every time),
// with that daemon's failures, as a first up would name them (exit 1), and a word when
// the script changed since (a daemon of this bundle answers on sock: joinUp).
func alreadyUp(d *Deps, p, running *plan.Plan, sock string, pending []string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), api.AnswerWithin)
	defer cancel()
	cl := expecting(api.NewClient(sock), scriptOwner(p))
	msg := fmt.Sprintf("starvisor: up: this bundle's daemon already runs on %s: nothing to start", sock)
	fixed := map[string]bool{} // changed or removed by the script: an apply of it takes them
	if r, err := cl.Apply(ctx, p, true); err == nil && !r.Delta.Empty() {
		for _, n := range append(changedNames(r.Delta), r.Delta.Removed...) {
			fixed[n] = true
		}
		msg += "; the script changed since: starvisor apply takes the difference (plan --diff shows it)"
		if running, err := cl.Plan(ctx); err == nil && maps.Equal(running.Inputs.Files, p.Inputs.Files) {
			// Its files are as they were: this shell's environment evaluates it otherwise,
			// and an apply from here would switch what runs (MODE=prod to the default).
			for _, n := range r.Notes {
				if strings.HasPrefix(n, api.EnvChangedNote) {
					msg = fmt.Sprintf("starvisor: up: this bundle's daemon already runs on %s: nothing to start; the script is unchanged, but here %s: an apply from this shell would change what runs (plan --diff shows how)", sock, n)
				}
			}
		}
	}
	fmt.Fprintln(d.Stderr, msg)
	if info, err := cl.Daemon(ctx); err == nil && (info.Replaced || info.Version != "" && info.Version != version()) {
		// An upgrade in place: the binary replaced, the daemon still runs the old one,
		// and "nothing to start" read as done.
		fmt.Fprintf(d.Stderr, "starvisor: note: the daemon runs %s, not this %s: `starvisor shutdown` then `starvisor up --detach` runs this one\n", cmp.Or(info.Version, "an earlier build"), version())
	}
	_, failed, _ := notStartedJoined(cl, running, time.Time{}) // failures from before this up: any line
	// One stopped by hand (starvisor stop) is as someone left it, not a failure: a
	// provisioning run of up --detach failed for a program stopped for maintenance.
	failed = slices.DeleteFunc(failed, func(f string) bool {
		name, why, _ := strings.Cut(f, ": ")
		if strings.HasPrefix(why, stoppedByHand) {
			fmt.Fprintf(d.Stderr, "starvisor: note: %s is STOPPED, as someone left it (starvisor start %s starts it)\n", name, name)
			return true
		}
		if fixed[name] {
			// The deploy's next step: a fix on its way failed the up before it (an up
			// --detach, then an apply, as a deploy script runs them).
			fmt.Fprintf(d.Stderr, "starvisor: note: %s; the script changes it: starvisor apply takes that\n", f)
			return true
		}
		return false
	})
	pending = slices.DeleteFunc(pending, func(p string) bool {
		name, _, _ := strings.Cut(p, " (")
		if fixed[name] {
			fmt.Fprintf(d.Stderr, "starvisor: note: %s is still starting; the script changes it: starvisor apply takes that\n", p)
		}
		return fixed[name]
	})
	err := namedFailures(d, failed)
	if len(pending) > 0 {
		// As the up that started the daemon says it: a retried deploy went green.
		fmt.Fprintf(d.Stderr, "starvisor: up: still starting after %s: %s\n", wait, condensed(pending))
		return reported(ExitFailure)
	}
	return err
}

// lockedAlready is up's refusal when a daemon of the bundle holds one of its locks (it
// may answer on another socket than the script names now: a release symlink switched).
func lockedAlready(p *plan.Plan) error {
	sock := p.Supervisor.Socket
	if l := lockPath(p.Supervisor.StateDir); lockHeld(l) {
		return fmt.Errorf("up: a daemon is already running on %s (%w: %s)", lockedSocketAt(l, sock), errLocked, l)
	}
	for _, l := range rootLockPaths(filepath.Join(p.Root, p.Entry)) {
		if lockHeld(l) {
			at := lockedSocketAt(l, sock)
			if pid := holderPid(l); pid != "" && !isSocket(at) {
				if now := movedTo(pid, lockLine(l, lockScript)); now != "" {
					return fmt.Errorf("up: the daemon (pid %s) of the bundle that was here moved with its folder to %s, and runs there: `starvisor shutdown -f %s` stops it (%w: %s)", pid, now, quoteArg(now), errLocked, l)
				}
				// Its socket's folder removed under it: no client reaches it any more.
				return fmt.Errorf("up: a daemon of this bundle runs (pid %s), but its socket %s is gone (its folder removed?): `kill -USR2 %s` makes it listen there again, restarting nothing (%w: %s)", pid, at, pid, errLocked, l)
			}
			return fmt.Errorf("up: a daemon of this bundle is already running on %s (%w: %s)", at, errLocked, l)
		}
	}
	return nil
}

// logLineWith is the first line of the log at path written after offset start that
// holds what, without its time stamp; "" when none.
func logLineWith(path string, start int64, what string) string {
	for _, line := range strings.Split(tailFrom(path, start, 1000), "\n") {
		if strings.Contains(line, what) {
			return unstamped(strings.TrimSpace(line))
		}
	}
	return ""
}

// unstamped is a line of the daemon's log without its time.
func unstamped(line string) string {
	if t, rest, ok := strings.Cut(line, " "); ok && len(t) == len(stampLayout) {
		if _, err := time.Parse(stampLayout, t); err == nil {
			return rest
		}
	}
	return line
}

// warnings repeats on stderr the warnings the daemon wrote in its log since start (it
// cannot record its processes: a full disk), and the strays of a killed daemon it
// stopped: a deploy script never reads that log.
func warnings(d *Deps, logPath string, start int64) {
	relay(d, logPath, start, func(line string) bool {
		// A log it cannot write: the program runs on, its output dropped.
		return strings.HasPrefix(line, "starvisor: warning:") ||
			strings.HasPrefix(line, "starvisor: ") && strings.HasSuffix(line, "(output is dropped until the log can be written)")
	})
}

// strayLines relays what the daemon stopped of a killed daemon's programs (no client
// said they ran), once it answers: it stopped them before it served, and said after the
// wait for its programs, they read as stopped after those started.
func strayLines(d *Deps, logPath string, start int64) {
	relay(d, logPath, start, func(line string) bool {
		return strings.Contains(line, " stray process ") || strings.Contains(line, "left in the cgroups of the daemon that died")
	})
}

// relay prints the lines of the daemon's log since start that want selects, without
// the log's time (the caller sees them now); past ten stray lines, a count.
func relay(d *Deps, logPath string, start int64, want func(string) bool) {
	strays := 0
	for _, line := range strings.Split(tailFrom(logPath, start, 1000), "\n") {
		line = unstamped(strings.TrimSpace(line))
		if !want(line) {
			continue
		}
		if strings.Contains(line, " stray process ") {
			if strays++; strays > 10 { // a line each for 213: counted after the first ten
				continue
			}
		}
		fmt.Fprintln(d.Stderr, line)
	}
	if strays > 10 {
		fmt.Fprintf(d.Stderr, "starvisor: and %d more stray processes stopped (each in %s)\n", strays-10, logPath)
	}
}

// namedFailures names on stderr the autostart programs that will not run: the daemon
// runs, but a deploy script must see that its services do not (exit 1).
func namedFailures(d *Deps, failed []string) error {
	for _, f := range failed {
		fmt.Fprintf(d.Stderr, "starvisor: %s\n", f)
	}
	if len(failed) > 0 {
		return reported(ExitFailure)
	}
	return nil
}

// notStarted lists the autostart processes still STOPPED, STARTING or BACKOFF, or RUNNING
// but not ready (or not yet known to the daemon, whose first apply runs in the
// background), and apart, as
// "name: why", those that will not run by themselves (FATAL, EXITED with an unexpected
// code, or waiting for a dependency that failed): waiting for them would wait out the
// whole --wait. A job done (EXITED with an expected code) is neither. A failure quotes
// only a log line written since (zero: any).
func notStarted(cl *api.Client, p *plan.Plan, since time.Time) (pending, failed []string, err error) {
	return notStartedOf(cl, p, since, false)
}

// notStartedJoined is notStarted for an up that found the daemon running: a process
// STOPPED with no start on its way was left so by someone (starvisor stop), not one
// still to start.
func notStartedJoined(cl *api.Client, p *plan.Plan, since time.Time) (pending, failed []string, err error) {
	return notStartedOf(cl, p, since, true)
}

func notStartedOf(cl *api.Client, p *plan.Plan, since time.Time, joined bool) (pending, failed []string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := cl.States(ctx)
	if err != nil {
		return nil, nil, err
	}
	look := newReadiness(p, st.Programs)
	look.since = since
	for _, pr := range p.Programs {
		if !pr.Autostart {
			continue
		}
		s, ok := look.byName[pr.ProcessName]
		if why := look.failed(pr.ProcessName, map[string]bool{}); ok && why != "" {
			failed = append(failed, pr.ProcessName+": "+why+look.lastWords(pr.ProcessName))
		} else if joined && ok && s.State == "STOPPED" && !s.Resuming {
			continue
		} else if !ok || s.State == "STOPPED" || s.State == "STARTING" || s.State == "BACKOFF" ||
			s.State == "RUNNING" && !s.Ready {
			// (RUNNING but not ready: its ready probe has not passed yet, as apply --wait
			// waits for; a job RUNNING is on its way to EXITED)
			state := cmp.Or(s.State, "not applied yet")
			if s.State == "RUNNING" {
				state = "RUNNING, not ready yet"
			}
			pending = append(pending, pr.ProcessName+" ("+state+")")
		}
	}
	return pending, failed, nil
}

// tailFrom returns the last n lines of the file written after offset.
func tailFrom(path string, offset int64, n int) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	b = bytes.TrimRight(b[offset:], "\n")
	if len(b) == 0 {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ") + "\n"
}
