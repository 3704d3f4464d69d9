package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	satomic "sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/api"
	"github.com/starvisor/starvisor/engine/launcher"
	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/monitor"
	"github.com/starvisor/starvisor/engine/plan"
	"github.com/starvisor/starvisor/engine/probe"
)

// UpCmd runs the plan in the foreground until SIGINT or SIGTERM; SIGHUP re-reads the script.
type UpCmd struct {
	scriptFlags `embed:""`
	Detach      bool          `help:"Run the daemon in the background (output to <log_dir>/starvisor.log); return once it answers and its autostart programs started (RUNNING and ready, a job done, or FATAL after their retries; what it waits for is said when it changes and every 15s); exit 1 if some will not, or are still starting after --wait (the daemon runs on)."`
	Wait        time.Duration `default:"60s" help:"With --detach: how long to wait for the autostart programs to leave STARTING and BACKOFF (a crash loop's retries), and pass their ready probe."`
	// Set by --detach for the daemon it starts: stdout and stderr are this log file,
	// which the daemon rotates (see ownLog).
	OwnLog string `hidden:"" type:"path"`
	// Logs: the programs' output too, in the foreground (foreman, docker compose up).
	Logs bool `help:"In the foreground, print the programs' output too, stdout and stderr, each line after its process's name (name.err for stderr), as logs -f all does."`

	startDir string // the folder up was started from, where reloads evaluate the script
	// waiting: done once up --detach's wait is interrupted (Ctrl-C, SIGTERM): it ends the
	// wait, not the daemon (see detach).
	waiting context.Context
}

// interrupted says, once up --detach's wait was interrupted, that the daemon runs on.
func (c *UpCmd) interrupted(d *Deps, pid int) error {
	who := "the daemon"
	if pid > 0 {
		who = fmt.Sprintf("the daemon (pid %d)", pid)
	}
	fmt.Fprintf(d.Stderr, "starvisor: up: interrupted: stopped waiting; %s runs on, starting the plan: starvisor status shows how it does, starvisor shutdown stops it\n", who)
	return reported(ExitFailure)
}

// pause waits dur, false when up --detach's wait was interrupted meanwhile.
func (c *UpCmd) pause(dur time.Duration) bool {
	if c.waiting == nil {
		time.Sleep(dur)
		return true
	}
	select {
	case <-c.waiting.Done():
		return false
	case <-time.After(dur):
		return true
	}
}

// Run evaluates the script, clears processes left by an earlier daemon, starts the
// programs and serves signals.
func (c *UpCmd) Run(d *Deps) error {
	if c.Detach && c.Logs {
		return usageError(errors.New("up: --logs is for the foreground: a detached daemon's programs are followed with starvisor logs -f"))
	}
	if abs, err := filepath.Abs(c.File); err == nil && strings.ContainsAny(abs, "\n\r") {
		// The bundle's locks are lines (socket, daemon, script): ls and the next up read
		// a cut path, and clients found no daemon.
		return fmt.Errorf("up: the path of %q holds a line break, which the bundle's lock cannot record: rename the folder", abs)
	}
	closeInheritedOnExec()
	ctx := context.Background()
	p, err := c.eval(ctx, d)
	if err != nil {
		return err
	}
	if len(p.Programs) == 0 && c.OwnLog == "" { // said once, by the up typed
		fmt.Fprintf(d.Stderr, "starvisor: warning: %s declares no program: the daemon starts with nothing to run (an apply can add some)\n", filepath.Join(p.Root, p.Entry))
	}
	if c.OwnLog == "" {
		for _, w := range openLogFolders(p) {
			fmt.Fprintf(d.Stderr, "starvisor: %s\n", w)
		}
	}
	if c.Detach {
		return c.detach(d, p)
	}
	d, own, err := daemonOutput(d, c.OwnLog, scriptOwner(p))
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	if err := c.workFromRoot(p.Root); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	// Programs without a umask of their own take the daemon's: never one that lets
	// others write (supervisord's and systemd's default is 022). Started from a umask
	// 000 shell (some cron jobs, containers, CI), every program's files were
	// world-writable; a tighter one (077) is kept.
	syscall.Umask(syscall.Umask(0) | 0o022)
	if err := raiseOpenFiles(p.Supervisor.MinFDs, len(p.Programs)); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	// The daemon is long-lived with a small live heap (about 8 KiB per process) and
	// almost no allocation once its programs run, so its resident memory is mostly the
	// garbage allowed between collections. Half the default headroom costs collections
	// only during start and stop bursts; GOGC in the environment still wins.
	gc := &gcPacer{own: os.Getenv("GOGC") == "", ownProcs: os.Getenv("GOMAXPROCS") == "", trim: func() { trimCode() }, quietFor: time.Second}
	if gc.own {
		debug.SetGCPercent(gcPercent)
	}
	// Catch signals before anything starts: one that arrives early waits for the loop.
	sigs, stop := d.Signals(syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR2)
	defer stop()
	// Caught, not ignored (an ignored SIGPIPE would be inherited by every program): the
	// daemon outlives a reader of its output that went away (`up | head`), whose
	// default SIGPIPE killed it, and its programs with it, at the next line.
	_, stopPipe := d.Signals(syscall.SIGPIPE)
	defer stopPipe()
	// Every line goes out on a writer's own goroutine (see lineWriter); at the end a second
	// is left for a slow reader to take the last ones.
	out, errOut := newLineWriter(d.Stdout), newLineWriter(d.Stderr)
	out.stamp, errOut.stamp = true, true // every line of the daemon's log tells when
	defer errOut.flush(time.Second)
	defer out.flush(time.Second)
	// Take the bundle first: a second daemon of the same bundle must be refused before it
	// could mistake the first one's children for strays. The lock, not the socket alone:
	// two `up` started together both found no socket answering, and both ran everything.
	stateDir := p.Supervisor.StateDir
	// The socket's folder first, 0700 when made here: often it is the state folder.
	if err := os.MkdirAll(filepath.Dir(p.Supervisor.Socket), 0o700); err != nil {
		return fmt.Errorf("up: socket dir: %w", err)
	}
	if err := safeSocketDir(filepath.Dir(p.Supervisor.Socket)); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return fmt.Errorf("up: state dir: %w", err)
	}
	if err := safeStateDir(stateDir); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	// The locks name the socket by its real path: where clients still find it after the
	// bundle's folder or a release symlink on the way changed.
	lockedSock := p.Supervisor.Socket
	if dir, err := filepath.EvalSymlinks(filepath.Dir(lockedSock)); err == nil {
		lockedSock = filepath.Join(dir, filepath.Base(lockedSock))
	}
	dirs := &heldDirs{}
	defer dirs.close()
	script := filepath.Join(p.Root, p.Entry)
	lock, err := lockBundle(stateDir, lockedSock, script)
	if errors.Is(err, errLocked) {
		return c.locked(fmt.Errorf("up: a daemon is already running on %s (%w)", lockedSocket(stateDir, p.Supervisor.Socket), err))
	}
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	defer lock.Close()
	held := []*heldLock{lock}
	// And the bundle's lock by its root: a script whose state_dir changed while its
	// daemon ran would find the first lock free, and run every program twice.
	for _, rpath := range rootLockPaths(filepath.Join(p.Root, p.Entry)) {
		if err := os.MkdirAll(filepath.Dir(rpath), 0o700); err != nil {
			// An XDG_RUNTIME_DIR that cannot be made (su, cron: no session): the temp
			// folder's, where ls looks too.
			fallback := filepath.Join(runDirs()[len(runDirs())-1], filepath.Base(rpath))
			if fallback == rpath || os.MkdirAll(filepath.Dir(fallback), 0o700) != nil {
				errOut.printf("starvisor: warning: no bundle lock in %s (%v): ls will not list this daemon\n", filepath.Dir(rpath), err)
				continue
			}
			rpath = fallback
		}
		if err := ownRunDir(filepath.Dir(rpath)); err != nil {
			return fmt.Errorf("up: %w", err)
		}
		rlock, err := lockFile(rpath, lockedSock, script)
		if errors.Is(err, errLocked) {
			return c.locked(fmt.Errorf("up: a daemon of this bundle is already running on %s (%w)", lockedSocketAt(rpath, p.Supervisor.Socket), err))
		}
		if err == nil {
			defer rlock.Close()
			defer os.Remove(rpath) // held until then: nothing else can take it meanwhile
			held = append(held, rlock)
		}
	}
	sockVia := dirs.path(p.Supervisor.Socket) // taken before the socket: see heldDirs
	ln, err := api.Listen(p.Supervisor.Socket)
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	sockAt, _ := os.Stat(p.Supervisor.Socket) // which socket is this daemon's: see relisten
	// Until it serves, clients hear why they wait: stopping a killed daemon's leftovers
	// takes up to their stop_timeout.
	var startingNote satomic.Pointer[string]
	unhold := api.Hold(ln, func() string {
		msg := fmt.Sprintf("the daemon (pid %d) is starting", os.Getpid())
		if n := startingNote.Load(); n != nil {
			msg += ": " + *n
		}
		return msg
	})
	defer unhold() // should up fail before it serves
	// Files that say a daemon runs go before the socket stops answering: `shutdown`
	// returns once it does, and what it returns to must not still see them.
	var remove []string
	release := func() {
		for _, f := range remove {
			removeOwn(f)
		}
		remove = nil
	}
	defer release()
	defer ln.Close()
	remove = append(remove, sockVia)
	statePath := filepath.Join(stateDir, "state.json")
	stateVia := dirs.path(statePath)
	state := &monitor.StateFile{Path: stateVia, Name: statePath}
	// Said as it happens, not only at exit: should this daemon die, the next could not
	// find the processes it started, and they would run twice.
	state.Warn = func(err error) {
		if err != nil {
			errOut.printf("starvisor: warning: cannot record the processes it starts (%v): if this daemon is killed, the next one finds them only by their environment (and, in cgroup mode, their cgroup)\n", err)
		} else {
			out.printf("starvisor: the state file is written again\n")
		}
	}
	for _, l := range held {
		if state.Previous == "" {
			state.Previous = l.prev // the root lock's outlives a removed state folder
		}
	}
	// A daemon that died leaves its children running; stop them before starting new ones,
	// each as its program is stopped: as the plan that daemon ran says, else this one.
	// An unreadable state file is worth a warning, not a refusal to run.
	ran, _ := recordedPlan(stateDir)
	state.StopAs = func(process string) (monitor.StopSpec, bool) { return strayStop(process, ran, p) }
	state.Stopping = func(strays []monitor.Stray) {
		note := strayNote(strays, state.PreviousDaemon, func(process string) time.Duration {
			if sp, ok := strayStop(process, ran, p); ok {
				return sp.Timeout
			}
			return 2 * time.Second // monitor.StateFile's Grace
		})
		startingNote.Store(&note)
		out.printf("starvisor: %s\n", note)
	}
	// Ctrl-C meanwhile (their stop_timeouts may be long) is said at once and acted on:
	// it was queued, silent, until they were gone, and its second "killed 0 processes".
	hurry, cleaned, watched := make(chan struct{}), make(chan struct{}), make(chan struct{})
	state.Hurry = hurry
	var quit os.Signal // the watcher's alone until it is done (watched)
	go func() {
		defer close(watched)
		var first time.Time
		for {
			select {
			case <-cleaned:
				return
			case sig := <-sigs:
				if sig == syscall.SIGHUP || sig == syscall.SIGUSR2 {
					continue // nothing to reload or reopen yet
				}
				switch {
				case quit == nil:
					quit, first = sig, time.Now()
					out.printf("starvisor: %s: up ends once what the earlier daemon left is stopped, starting nothing; a second Ctrl-C (or SIGTERM) kills them now\n", sigName(sig))
				case time.Since(first) >= sameStop && hurry != nil:
					out.printf("starvisor: %s again: killing them now (SIGKILL)\n", sigName(sig))
					close(hurry)
					hurry = nil
				}
			}
		}
	}()
	strays, err := state.CleanStrays(ctx)
	close(cleaned)
	<-watched
	if err != nil {
		errOut.printf("starvisor: warning: %v\n", err)
	}
	for _, s := range monitor.ByProcess(strays) {
		out.printf("starvisor: %s\n", formatStray(s))
	}
	if quit != nil {
		out.printf("starvisor: stopped (%s), nothing started\n", sigName(quit))
		if hurry == nil {
			return reported(ExitFailure) // killed, as after a second Ctrl-C of a stop
		}
		return nil
	}
	if pf := p.Supervisor.Pidfile; pf != "" {
		monitor.RemoveTemps(pf) // left by a daemon killed mid-write
		if err := writePidfile(pf); err != nil {
			return err
		}
		remove = append(remove, dirs.path(pf))
	}
	lch := launcher.New()
	if d, ok := lch.(interface{ Describe() string }); ok {
		out.printf("starvisor: process ownership: %s\n", d.Describe())
	}
	if k, ok := lch.(interface{ KillLeftovers(int) int }); ok {
		if n := k.KillLeftovers(state.PreviousDaemon); n > 0 {
			out.printf("starvisor: killed %s left in the cgroups of the daemon that died (pid %d)\n", plural(n, "process"), state.PreviousDaemon)
		}
	}
	trust := scriptOwner(p)
	logs.TrustReaders(trust...) // for `logs` and probe.log, as for the writers
	rootNow := func() string { return "" }
	if rootDir, err := os.Open(p.Root); err == nil {
		defer rootDir.Close()
		// Where the bundle's folder is now: moved (mv) while the daemon runs.
		rootNow = func() string {
			now, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(rootDir.Fd())))
			if err != nil || strings.HasSuffix(now, " (deleted)") {
				return ""
			}
			return now
		}
	}
	var sup *engine.Supervisor
	var planErr satomic.Pointer[string]                // why the plan applied last could not be recorded
	running := func() *plan.Plan { return sup.Plan() } // for up --logs: who writes a log
	// What keeps a program from starting, as this daemon sees it: its PATH, its users.
	check := func(pr plan.Program) []string {
		msgs := programProblems(pr, p.Root, d.LookupEnv) // its working folder: see workFromRoot
		for i, m := range msgs {
			msgs[i] = strings.Replace(m, " in PATH", " in the daemon's PATH", 1) // not the shell's the user typed in
		}
		return msgs
	}
	opener := c.logOpener(logs.Opener{Trust: trust, Moved: func(path string) string {
		if p := running(); p != nil {
			return plan.MovedPath(p.Root, rootNow(), path) // a log first written after a move
		}
		return path
	}, Owners: func(path string) []uint32 { return logUsers(running(), path) }}, out, running, useColor(d.Stdout, d.LookupEnv))
	sup = engine.New(engine.Options{
		Launcher: lch,
		Prober:   &probe.Prober{Launcher: lch, Daemon: monitor.Self()},
		Logs:     opener,
		Sampler:  monitor.New(),
		Recorder: state,
		Daemon:   monitor.Self(), // found by the next daemon if this one dies mid-spawn
		Check:    check,
		// The plan running, for `logs` once the daemon is gone: the log paths the
		// daemon wrote, whatever the script or the caller's environment says by then.
		// Through the held state folder: a bundle moved while the daemon runs keeps it
		// current (by path, the write failed in the folder gone, and it said nothing).
		OnApplied: func(applied *plan.Plan) {
			err := recordPlan(dirs.path(filepath.Join(stateDir, appliedPlanFile)), applied)
			if err != nil {
				// Said each time: the plan applied is what logs reads once the daemon is gone.
				msg := fmt.Sprintf("cannot record the plan applied in %s (%v): should this daemon die, logs reads the log files an older plan names", filepath.Join(stateDir, appliedPlanFile), err)
				errOut.printf("starvisor: warning: %s\n", msg)
				planErr.Store(&msg)
			} else {
				planErr.Store(nil)
			}
		},
		OnEvent: func(e engine.Event) {
			out.line(formatEvent(e))
			gc.stir()
		},
		// Watching status makes garbage every sampling round; once nobody watches, the
		// daemon goes back to its idle size.
		OnUnwatched: giveBack,
		OnLogError: func(process string, err error) {
			if err == nil {
				out.printf("starvisor: %s: log: written again (a line in it says how much output was lost)\n", process)
				return
			}
			out.printf("starvisor: %s: log: %v\n", process, err) // the error says what becomes of the output
		},
		// Stamped when it passed: at printing, it read as after the start it released.
		OnReady: func(process string, err error, at time.Time) { out.line(formatReady(at, process, err)) },
		OnBlocked: func(process, why string) {
			out.line(fmt.Sprintf("%s %s not started: %s", time.Now().Format(stampLayout), process, why))
		},
	})
	srv := api.NewServer(sup, func(format string, args ...any) { out.printf("starvisor: "+format+"\n", args...) })
	srv.Version = version()
	if own != nil {
		own.rotated = sup.ReopenLogs // only posts to each process: it never writes to own
		srv.DaemonLog = own.where    // where it writes, wherever the bundle moved
	}
	srv.Root = rootNow // moved while the daemon runs, its logs are read where they are
	srv.StateError = func() string {
		if err := state.Err(); err != nil {
			return err.Error()
		}
		if msg := planErr.Load(); msg != nil {
			return *msg
		}
		return ""
	}
	srv.Burst = gc.burst
	srv.Settings = &p.Supervisor // this daemon's: a later plan's are noted, not taken
	srv.SettingsRoot = p.Root
	srv.Check = check
	srv.RealRoot, _ = filepath.EvalSymlinks(p.Root)
	sctx, stopServing := context.WithCancel(ctx)
	served := make(chan error, 1)
	unhold()
	go func() { served <- srv.Serve(sctx, ln) }()
	var more sync.WaitGroup // the listeners relisten made
	last := ln
	relisten := func() {
		defer func() {
			// What went with it (the state folder is often the socket's): made again too.
			if now := dirs.path(statePath); now != stateVia {
				stateVia = now
				state.MoveTo(now)
			}
			// Its lock, held again (the old one, removed, locked nothing anyone finds),
			// and the plan it runs, which logs reads once the daemon is gone.
			if _, err := os.Lstat(lockPath(stateDir)); errors.Is(err, fs.ErrNotExist) {
				if l, err := lockBundle(stateDir, lockedSock, script); err == nil {
					held = append(held, l)
				}
			}
			planAt := filepath.Join(stateDir, appliedPlanFile)
			if _, err := os.Lstat(planAt); errors.Is(err, fs.ErrNotExist) && sup.Plan() != nil {
				recordPlan(dirs.path(planAt), sup.Plan())
			}
		}()
		if at, err := os.Stat(sockVia); err == nil && os.SameFile(at, sockAt) {
			return // there, or moved with the bundle's folder
		}
		again, err := listenAgain(p.Supervisor.Socket, last)
		if err != nil {
			errOut.printf("starvisor: its socket %s is gone, and cannot be made again: %v\n", p.Supervisor.Socket, err)
			return
		}
		last = again
		sockAt, _ = os.Stat(p.Supervisor.Socket)
		sockVia = dirs.path(p.Supervisor.Socket)
		remove = append(remove, sockVia)
		more.Add(1)
		go func() {
			defer more.Done()
			if err := srv.Serve(sctx, again); err != nil {
				errOut.printf("starvisor: warning: control socket: %v\n", err)
			}
		}()
		out.printf("starvisor: its socket %s was gone: listening there again\n", p.Supervisor.Socket)
		if pf := p.Supervisor.Pidfile; pf != "" {
			if _, err := os.Stat(pf); err != nil && writePidfile(pf) == nil {
				remove = append(remove, dirs.path(pf))
			}
		}
	}

	toLog := &headless{path: filepath.Join(p.Supervisor.LogDir, daemonLog), out: out, errOut: errOut}
	if t, ok := opener.(*teeOpener); ok {
		toLog.plain = t.plain // up --logs: no colours in a file
	}
	l := &upLoop{sup: sup, out: out, stderr: errOut, shutdown: srv.ShutdownRequested(), toLog: toLog.start,
		reload: func() (*plan.Plan, error) {
			// The script again, with the environment values the last applied plan read:
			// a reload (systemctl reload) re-reads the script, and must not take a
			// deployment that `MODE=staging starvisor apply` set back to the daemon's own.
			var keep *plan.Inputs
			if last := sup.Plan(); last != nil {
				keep = &last.Inputs
				if note := envNote(keep, d.LookupEnv); note != "" {
					out.printf("starvisor: note: %s\n", note)
				}
			}
			next, err := c.evalApart(ctx, keep, errOut.printf)
			if err != nil {
				return nil, err
			}
			if err := api.OtherRoot(srv.RealRoot, next); err != nil {
				return nil, fmt.Errorf("reload: %w", err)
			}
			if note := api.KeepSettings(p.Supervisor, next); note != "" {
				out.printf("starvisor: note: %s\n", note)
			}
			// As an apply: a reload has no --force, so the script must be fixed.
			if err := api.Breaking(sup.States(), next, plan.Diff(sup.Plan(), next), srv.Check); err != nil {
				return nil, fmt.Errorf("reload: %w", err)
			}
			return next, nil
		},
		relisten: relisten,
		reopen: func() {
			if own != nil {
				own.reopen()
			}
			sup.ReopenLogs()
		},
		busy: gc.busy, settled: gc.settled,
		reloaded: func(err error) {
			if err == nil {
				srv.SetReloadError("")
				return
			}
			msg := "the script's error is in the daemon's output"
			var ee *exitError
			switch {
			case !errors.As(err, &ee) || ee.err != nil:
				msg, _, _ = strings.Cut(err.Error(), "\n")
			case ee.summary != "":
				msg = ee.summary + " (more in the daemon's output)"
			}
			srv.SetReloadError(time.Now().Format(stampLayout) + ": " + msg)
		}}
	if gone := terminalGone(); gone != nil {
		tty := &ttyWatch{gone: gone}
		l.hungUp = tty.hungUp
		watchCtx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		go tty.watch(watchCtx, ttyPoll, func() bool {
			if !toLog.start() {
				return false // the hangup's SIGHUP did it: up stops
			}
			out.printf("starvisor: the terminal up ran in is gone, but no hangup signal came (up was started with & from a shell that left?): up runs on, its lines in this log; SIGHUP reloads\n")
			return true
		})
	}
	err = l.run(ctx, p, sigs)
	if sa, ok := lch.(interface{ StopAdopted(time.Duration) []int }); ok && err == nil {
		// Every program stopped: children adopted from them that no stop could tell
		// apart (setsid, env -i) are leftovers, which would outlive the daemon.
		if pids := sa.StopAdopted(2 * time.Second); len(pids) > 0 {
			out.printf("starvisor: stopped %s that left their program's process group and environment: pid %s\n", plural(len(pids), "process"), joinInts(pids))
		}
	}
	if err == nil {
		state.Release() // everything stopped: the next daemon has no child of this one to look for
		for _, l := range held {
			l.clean()
		}
	}
	release()
	stopServing()
	if serr := <-served; serr != nil {
		errOut.printf("starvisor: warning: control socket: %v\n", serr)
	}
	more.Wait()
	if serr := state.Err(); serr != nil {
		errOut.printf("starvisor: warning: state file: %v\n", serr)
	}
	return err
}

// gcPercent is `up`'s GOGC (see Run); burstGCPercent its GOGC during a burst.
const (
	gcPercent      = 50
	burstGCPercent = 200
)

// gcPacer paces the daemon's GC around bursts: an apply, or a client's start, stop or
// restart of many processes, makes garbage that is all gone once it ends. Meanwhile
// the GC runs less often (a start of 200 ran ~6% faster at GOGC 200, a stop of 200
// made a collection of ~4 ms CPU at GOGC 50); after the last one, GOGC goes back and
// the garbage is returned to the system. Bursts overlap (a reload during a client's
// stop), hence the count. Once the daemon has done nothing for quietFor (no burst, no
// event: stir), the code pages it ran are given back too (trim: trimCode). Not at once,
// as bursts and events come in runs (a deploy's apply, restart and stop; a crash and its
// restart), and each page given back costs a fault at its next use (a stop of 200 right
// after a trim took 6 ms more; a crash and restart after one, ~110 faults).
type gcPacer struct {
	own      bool // GOGC was not set in the environment, which wins
	ownProcs bool // nor GOMAXPROCS (see busy)
	trim     func()
	quietFor time.Duration
	mu       sync.Mutex
	n        int
	quiet    *time.Timer // runs trim; stopped while a burst runs
}

func (g *gcPacer) busy() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n++; g.n == 1 && g.own {
		debug.SetGCPercent(burstGCPercent)
	}
	if g.n == 1 && g.ownProcs {
		runtime.GOMAXPROCS(runtime.NumCPU())
	}
	if g.quiet != nil {
		g.quiet.Stop()
	}
}

func (g *gcPacer) settled() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n--; g.n > 0 {
		return
	}
	if g.own {
		debug.SetGCPercent(gcPercent)
	}
	if g.ownProcs {
		// Settled, the daemon wakes for a line of a program's output, an exit, a
		// client: work for one processor. With more, each wake-up of Go's scheduler
		// woke an idle one to spin for work: a program writing ten lines a second cost
		// the daemon 2.2 % of a core, and 0.5 % on one; a burst (start 200) gets them all.
		runtime.GOMAXPROCS(1)
	}
	go debug.FreeOSMemory()
	g.restartQuiet()
}

// stir: the daemon did something outside a burst (an event), so it is not quiet yet.
func (g *gcPacer) stir() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == 0 {
		g.restartQuiet()
	}
}

func (g *gcPacer) restartQuiet() {
	switch {
	case g.trim == nil:
	case g.quiet == nil:
		g.quiet = time.AfterFunc(g.quietFor, g.trim)
	default:
		g.quiet.Reset(g.quietFor)
	}
}

// giveBack returns to the system what watching status left resident: the sampling
// rounds' garbage, and the pages of code they ran (trimCode).
func giveBack() {
	debug.FreeOSMemory()
	trimCode()
}

// burst is busy, returning settled (api.Server.Burst).
func (g *gcPacer) burst() func() {
	g.busy()
	return g.settled
}

// strayStop is how a stray of process is stopped: as the first of plans that has it
// would stop it (stop_signal, stop_as_group, stop_timeout).
func strayStop(process string, plans ...*plan.Plan) (monitor.StopSpec, bool) {
	for _, p := range plans {
		if p == nil {
			continue
		}
		if pr, ok := p.Lookup(process); ok {
			sig, err := engine.ParseSignal(pr.StopSignal)
			if err != nil {
				sig = syscall.SIGTERM
			}
			return monitor.StopSpec{Signal: sig, Group: pr.StopAsGroup, Timeout: pr.StopTimeout.D()}, true
		}
	}
	return monitor.StopSpec{}, false
}

// strayNote says, before anything starts, which processes an earlier daemon (pid, 0
// when unknown) left running are being stopped, and how long that may take (the
// longest stop_timeout among them): up --detach relays it.
func strayNote(strays []monitor.Stray, pid int, timeout func(string) time.Duration) string {
	var names []string
	var longest time.Duration
	for _, s := range monitor.ByProcess(strays) {
		names = append(names, fmt.Sprintf("%s (pid %d)", s.Process, s.Pid))
		longest = max(longest, timeout(s.Process))
	}
	by := "an earlier daemon"
	if pid > 0 {
		by = fmt.Sprintf("an earlier daemon (pid %d)", pid)
	}
	return fmt.Sprintf("%s %s left running: %s; nothing starts before they are gone (up to %s)",
		strayStopping, by, strings.Join(capped(names, 10), ", "), longest)
}

// strayStopping begins strayNote's line.
const strayStopping = "stopping what"

// formatStray says what was stopped of a process an earlier daemon left behind, in the
// words of a live stop's exit: "killed" only when its own pid got KILL.
func formatStray(s monitor.Stray) string {
	how, rest := "stopped", ""
	switch {
	case s.Killed:
		how = "killed"
	case s.GroupKilled:
		rest = "; the rest of its group by SIGKILL"
	case s.LeftKilled:
		rest = "; what it left running killed with it"
	}
	return fmt.Sprintf("%s stray process %s left by an earlier daemon (pid %d, %s found running%s)",
		how, s.Process, s.Pid, plural(len(s.Pids), "process"), rest)
}

// removeOwn removes f unless it is a pidfile naming another daemon: two bundles (two
// scripts in one folder) naming one pidfile, the first to exit removed the other's.
func removeOwn(f string) {
	if b, err := os.ReadFile(f); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid != os.Getpid() {
			return
		}
	}
	os.Remove(f)
}

// heldDirs keeps the daemon's folders (state, socket, pidfile) open and names their files
// through /proc/self/fd, so they stay this daemon's files wherever the folders go: when
// the bundle is moved (mv) or a release symlink on the way is switched while it runs,
// the state file is still written where the next daemon of the bundle looks (and no
// folder is made again at the old path), and at exit this daemon removes its own socket
// and pidfile, not those of another daemon now at that path.
type heldDirs struct {
	mu   sync.Mutex // relisten and the engine's OnApplied ask at once
	open map[string]*os.File
	gone []*os.File // removed since they were opened
}

// path names p through its folder, held open from the first call on; p itself when the
// folder cannot be opened or there is no /proc.
func (h *heldDirs) path(p string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pathLocked(p)
}

func (h *heldDirs) pathLocked(p string) string {
	dir := filepath.Dir(p)
	f, ok := h.open[dir]
	if !ok {
		var err error
		if f, err = os.Open(dir); err != nil {
			return p
		}
		if h.open == nil {
			h.open = map[string]*os.File{}
		}
		h.open[dir] = f
	}
	via := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	st, err := os.Stat(via)
	if err != nil {
		return p
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Nlink == 0 {
		// Removed (rm -rf run/): files written through it went nowhere. The folder
		// made again at its path is held from now on; the old one stays open till the
		// end, so its number, in paths handed out (the state file's), names nothing else.
		h.gone = append(h.gone, f)
		delete(h.open, dir)
		if _, err := os.Stat(dir); err != nil {
			return p
		}
		return h.pathLocked(p)
	}
	return filepath.Join(via, filepath.Base(p))
}

func (h *heldDirs) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.open {
		f.Close()
	}
	for _, f := range h.gone {
		f.Close()
	}
}

// listenAgain makes the socket at path again, for a daemon whose socket there, old, was
// removed: old keeps serving (its connections in flight) but must not remove the new
// one as it closes.
func listenAgain(path string, old net.Listener) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := safeSocketDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	ln, err := api.Listen(path)
	if err != nil {
		return nil, err
	}
	if ul, ok := old.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	return ln, nil
}

func writePidfile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("up: pidfile: %w", err)
	}
	if err := monitor.WriteAtomic(path, []byte(strconv.Itoa(os.Getpid())+"\n")); err != nil {
		return fmt.Errorf("up: pidfile: %w", err)
	}
	return nil
}

// formatEvent is one state change: "2026-11-25T18:07:02.123 web STARTING -> RUNNING (reason)".
func formatEvent(e engine.Event) string {
	s := fmt.Sprintf("%s %s %s -> %s", e.Time.Format("2006-01-02T15:04:05.000"), e.Process, e.From, e.To)
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	if e.Pid > 0 { // which process: the kernel's OOM messages name pids
		s += " [pid " + strconv.Itoa(e.Pid) + "]"
	}
	return s
}

// exitLocked is how a detached daemon started at the same moment as another of its bundle
// tells its `up --detach` that the other won the lock: its output is the winner's log,
// where its refusal would sit among the winner's lines, and the parent showed that
// log's tail as if its own start had failed.
const exitLocked = 4

// locked is err for a foreground up; a detached one says it by its exit code alone.
func (c *UpCmd) locked(err error) error {
	if c.OwnLog != "" {
		return reported(exitLocked)
	}
	return err
}

// errLocked: another daemon of the bundle holds its lock.
var errLocked = errors.New("it holds the bundle's lock")

// scriptOwner is the owner of the entry script: the symlinks it makes on the way to a log
// file are followed (it writes the script that names the file anyway; see logs.Opener),
// and its daemon is one a client may reach besides root's (see expecting).
// logUsers are the uids of the users the programs writing the log at path run as: their
// own output, which a file of theirs may hold.
func logUsers(p *plan.Plan, path string) []uint32 {
	if p == nil {
		return nil
	}
	var out []uint32
	for _, pr := range p.Programs {
		if pr.User == "" || (pr.Stdout == nil || pr.Stdout.Path != path) && (pr.Stderr == nil || pr.Stderr.Path != path) {
			continue
		}
		u, err := user.Lookup(pr.User)
		if err != nil {
			u, err = user.LookupId(pr.User)
		}
		if err != nil {
			continue
		}
		if uid, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
			out = append(out, uint32(uid))
		}
	}
	return out
}

func scriptOwner(p *plan.Plan) []uint32 { return ownerOf(filepath.Join(p.Root, p.Entry)) }

// workFromRoot makes the bundle root the daemon's working folder, so programs that name
// no directory run there wherever up was started from, as under the unit `service
// install` writes. They inherit it rather than each entering it: a program run as
// another user need not be allowed into the bundle's folder, as under supervisord.
func (c *UpCmd) workFromRoot(root string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if c.File, err = filepath.Abs(c.File); err != nil {
		return err
	}
	c.startDir = wd
	return os.Chdir(root)
}

// lockBundle takes the bundle's daemon lock, an flock on <state_dir>/daemon.lock held
// for the life of this process (the kernel lets go when it dies: no stale lock; the
// descriptor is close-on-exec, so no program holds it), and writes the daemon's socket
// into it: a second `up`, or a client whose script names another socket since, learns
// where the running daemon answers.
func lockBundle(stateDir, socket, script string) (*heldLock, error) {
	return lockFile(lockPath(stateDir), socket, script)
}

// heldLock is a bundle lock this daemon holds; prev is the identity ("pid.start") of the
// daemon that held it before and died without a clean exit, if it said it.
type heldLock struct {
	*os.File
	socket, prev, script string
}

// clean says, once every program stopped, that this daemon left nothing behind: the
// next one need not look for its children (see monitor.StateFile.Previous).
func (l *heldLock) clean() {
	if l.Truncate(0) == nil {
		l.WriteAt([]byte(l.socket+"\n\n"+l.script+"\n"), 0)
	}
}

// lockFile takes the flock on path, or errLocked, and writes into it the socket, this
// daemon's identity (should it die, the next daemon of the bundle finds its children by
// it, in their environment, even when the state file is gone) and its entry script
// (lockLine: the other scripts of the folder are other bundles).
func lockFile(path, socket, script string) (*heldLock, error) {
	// Not through a symlink, whoever planted it (defence in depth: its folder is checked).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", errLocked, f.Name())
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	l := &heldLock{File: f, socket: socket, script: script}
	if b, err := io.ReadAll(io.LimitReader(f, 4096)); err == nil {
		if _, rest, ok := strings.Cut(string(b), "\n"); ok {
			l.prev, _, _ = strings.Cut(rest, "\n")
		}
	}
	// Not atomic (the lock is this inode): a reader may see it half written, and falls back.
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(socket+"\n"+monitor.Self()+"\n"+script+"\n"), 0)
	}
	return l, nil
}

func lockPath(stateDir string) string { return filepath.Join(stateDir, "daemon.lock") }

// The lines of a bundle lock (lockFile): the socket, the daemon's identity ("pid.start",
// cleared at its clean exit) and its entry script (missing in a lock written before).
const (
	lockSocket = iota
	lockIdentity
	lockScript
)

// lockLine is line i of the lock at path, "" when it has none (ended by its newline).
func lockLine(path string, i int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if lines := strings.SplitN(string(b), "\n", i+2); len(lines) > i+1 {
		return lines[i]
	}
	return ""
}

// rootLockPath is the bundle's second lock, named after its entry script in a folder of
// the user's that no script setting moves: /run for root, else $XDG_RUNTIME_DIR, else
// the temp folder. The script, not its folder: two scripts in one folder, each with its
// own socket and state_dir, are two bundles.
func rootLockPath(script string) string {
	if real, err := filepath.EvalSymlinks(script); err == nil {
		script = real // one bundle reached through a symlink (/srv/app -> release-7) is one lock
	}
	return lockNamed(script)
}

// rootLockPaths are the bundle's locks by its entry script: by its real path, and by the
// path it was named by when that goes through a symlink. The second keeps a release
// switch (/srv/app -> release-8 while release-7's daemon runs) from letting a second
// daemon of /srv/app start, and leads clients of /srv/app to the running one.
func rootLockPaths(script string) []string {
	real := rootLockPath(script)
	if named := lockNamed(script); named != real {
		return []string{real, named}
	}
	return []string{real}
}

func lockNamed(script string) string {
	sum := sha256.Sum256([]byte(script))
	return filepath.Join(runDirs()[0], hex.EncodeToString(sum[:8])+".lock")
}

// runDirs are the folders of this user's bundle locks, the one up uses first: /run for
// root, else $XDG_RUNTIME_DIR, else the temp folder (each with a starvisor-<uid> of its
// own). ls looks in all: a daemon started from a shell with XDG_RUNTIME_DIR set runs
// on when listed from one without (su, cron).
func runDirs() []string { return runDirsFor(os.Geteuid(), os.Getenv("XDG_RUNTIME_DIR")) }

func runDirsFor(uid int, xdg string) []string {
	name := fmt.Sprintf("starvisor-%d", uid)
	if uid == 0 {
		return []string{filepath.Join("/run", name)}
	}
	var dirs []string
	if xdg != "" {
		dirs = append(dirs, filepath.Join(xdg, name))
	}
	return append(dirs, filepath.Join(os.TempDir(), name))
}

// safeSocketDir refuses a socket folder another user may rename the socket in: one of
// theirs (a supervisor(socket = "/tmp/shared/app.sock") in a folder they made), or one
// others may write without the sticky bit. They could put a listener of their own in
// its place: clients send it nothing (they check its uid), but the daemon is out of reach.
func safeSocketDir(dir string) error {
	return safeDir(dir, "socket folder", "replace the socket", true)
}

// safeStateDir refuses a state folder another user may write in: they could plant a
// symlink at daemon.lock (root truncated and wrote the file it named) or a state.json
// naming any process as a stray (root's up, or shutdown, killed it).
func safeStateDir(dir string) error {
	// Not even with the sticky bit (/tmp): others could create the files before it.
	return safeDir(dir, "state folder", "plant its lock, or a state file naming any process", false)
}

// safeDir refuses a folder of another user's (root aside), or one others may write
// (with the sticky bit, when stickyOK: they may add files, not rename ours): what, and
// what they could do, for the message.
func safeDir(dir, what, could string, stickyOK bool) error {
	// A symlink on the way is followed only when root or this user owns it: one that a
	// program's user planted in a folder it may write (the program's data/, holding
	// state_dir) led root's lock and state file into any folder of root's, another
	// bundle's run/ among them, whose daemon it then impersonated.
	if _, err := logs.ResolveTrusted(dir, nil); err != nil {
		return fmt.Errorf("%s %s: %w", what, dir, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return err
	}
	euid := os.Geteuid()
	switch {
	case int(st.Uid) != euid && st.Uid != 0:
		return fmt.Errorf("%s %s is uid %d's: its owner could %s; name a folder of yours", what, dir, st.Uid, could)
	case st.Mode&0o022 != 0 && (!stickyOK || st.Mode&syscall.S_ISVTX == 0):
		sticky := ""
		if stickyOK {
			sticky = ", no sticky bit"
		}
		return fmt.Errorf("%s %s may be written by others (mode %#o%s): they could %s; name a folder of yours", what, dir, st.Mode&0o7777, sticky, could)
	}
	return nil
}

// ownRunDir refuses a lock folder not this user's alone, as tmux does its socket folder:
// another user who made /tmp/starvisor-<uid> first (a shared box, XDG_RUNTIME_DIR unset
// under su, sudo -u or cron) could hold a bundle's lock to keep its daemon from
// starting, or swap the lock's socket for theirs.
func ownRunDir(dir string) error {
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		return err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR || int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0 {
		return fmt.Errorf("%s is not this user's alone (owner uid %d, mode %#o): another user could hold or fake its bundle locks; have it removed (its owner, or root), or set XDG_RUNTIME_DIR to a folder of yours", dir, st.Uid, st.Mode&0o7777)
	}
	return nil
}

// lockedSocket is the socket the daemon holding stateDir's lock wrote there, or def.
func lockedSocket(stateDir, def string) string { return lockedSocketAt(lockPath(stateDir), def) }

// lockedSocketAt is the socket written in the lock file path while a daemon holds it,
// or def; def too for a lock file of another user's (root's counts: a root daemon's
// state_dir lock). One nobody holds is stale, or a copy (cp -r of a running bundle's folder):
// its socket is another bundle's daemon's.
func lockedSocketAt(path, def string) string {
	var st syscall.Stat_t
	if syscall.Lstat(path, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG ||
		int(st.Uid) != os.Geteuid() && st.Uid != 0 {
		return def // not written by a daemon of this user's, nor root's
	}
	b, err := os.ReadFile(path)
	if s, _, ok := strings.Cut(string(b), "\n"); err == nil && ok && filepath.IsAbs(s) && lockHeld(path) {
		return s
	}
	return def
}

// lockHeld says whether someone holds a flock on path, from /proc/locks (taking the lock
// to find out could make a concurrent `up` fail). Without /proc/locks: assumed held.
func lockHeld(path string) bool {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return false
	}
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		return true
	}
	// "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF": the superblock's device, major
	// and minor in hex, and the inode. (On a btrfs subvolume stat gives another device:
	// the lock reads as not held, and the client falls back to the script's socket.)
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	for _, line := range strings.Split(string(locks), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "FLOCK" && f[5] == id {
			return true
		}
	}
	return false
}

// envNote says which host.env values a reload keeps from the last applied plan where the
// daemon's own environment differs ("" when none): the daemon started with MODE=dev, a
// client applied with MODE=prod, and a reload stays prod.
func envNote(last *plan.Inputs, lookup func(string) (string, bool)) string {
	var diff []string
	for _, k := range slices.Sorted(maps.Keys(last.Env)) {
		if strings.HasPrefix(k, "host.") {
			continue
		}
		now, nowSet := lookup(k)
		was, wasSet := last.Value(k)
		if now != was || nowSet != wasSet {
			diff = append(diff, plan.EnvDiff(k, was, wasSet, now, nowSet, "the daemon's own"))
		}
	}
	if len(diff) == 0 {
		return ""
	}
	return "the reload evaluates the script with the host.env values of the last applied plan: " + strings.Join(diff, ", ") + "; starvisor apply sets others"
}

// formatReady words a ready probe's result like an event line: "<time> web ready", or
// "<time> web not ready: <why>" when the probe gave up (its dependents do not start).
func formatReady(t time.Time, process string, err error) string {
	if err != nil {
		return fmt.Sprintf("%s %s not ready: %v", t.Format("2006-01-02T15:04:05.000"), process, err)
	}
	return fmt.Sprintf("%s %s ready", t.Format("2006-01-02T15:04:05.000"), process)
}

// supervisor is the part of *engine.Supervisor the loop drives.
type supervisor interface {
	Apply(ctx context.Context, p *plan.Plan) (plan.Delta, error)
	ApplyMade(ctx context.Context, build func(running *plan.Plan) (*plan.Plan, error)) (plan.Delta, error)
	Shutdown(ctx context.Context) error
	Kill(ctx context.Context) int
	ShuttingDown() bool
}

// killWait bounds how long `up` waits, after a second interrupt's SIGKILLs, for the
// exits to be reaped (and the state file emptied) before it exits anyway.
const killWait = 5 * time.Second

// upLoop serves signals while applies run in the background, so a SIGTERM during a slow
// start still shuts down, and SIGHUPs that arrive mid-apply fold into one reload.
type upLoop struct {
	sup    supervisor
	out    *lineWriter
	stderr *lineWriter
	reload func() (*plan.Plan, error) // prints its own errors
	// hungUp, when set, says whether the terminal up ran in just hung up: its SIGHUP is
	// then the hangup (the ssh session dropped, the window closed), not a reload.
	hungUp func() bool
	// toLog, when set, sends up's lines to its log file from now on, where they outlive
	// the dead terminal; false when they go there already.
	toLog  func() bool
	reopen func() // SIGUSR2: log files are opened again by name (nil: ignored)
	// relisten, when set, makes the control socket again should it be gone (SIGHUP
	// and SIGUSR2): a daemon whose socket was removed answered nobody until killed.
	relisten func()
	// shutdown is closed when a client's shutdown request has already stopped everything.
	shutdown <-chan struct{}
	// busy and settled, when set, run before and after each apply (GC pacing, and
	// returning memory to the system).
	busy, settled func()
	// reloaded, when set, learns each reload's outcome (nil: applied), for status.
	reloaded func(err error)
	now      func() time.Time // nil: time.Now
}

func (l *upLoop) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}

// sameStop is how soon after the first stop signal another is the same request: one
// Ctrl-C under a wrapper that passes it on (a shell entrypoint's trap, foreman) comes
// twice, a millisecond apart, and the second SIGKILLed a database mid-flush.
const sameStop = time.Second

type applied struct {
	delta  plan.Delta
	err    error
	reload bool
	script bool // a reload whose script failed: nothing was applied
	said   bool // a reload whose summary was said as it began
}

func (l *upLoop) run(ctx context.Context, p *plan.Plan, sigs <-chan os.Signal) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan applied, 1)
	applying, pending := false, false
	apply := func(p *plan.Plan, reload bool) {
		applying = true
		if l.busy != nil {
			l.busy()
		}
		go func() {
			if !reload {
				d, err := l.sup.Apply(ctx, p)
				results <- applied{d, err, false, false, false}
				return
			}
			// The script is evaluated in the apply's turn: after a client's apply that
			// runs now, with the values it read, not before (it undid that apply).
			script, said := false, false
			d, err := l.sup.ApplyMade(ctx, func(running *plan.Plan) (*plan.Plan, error) {
				p, err := l.reload()
				script = err != nil
				if err == nil && running != nil {
					// Said before the restarts it brings, as a client's apply is: after,
					// its "stop requested" lines had no cause above them.
					l.summary(plan.Diff(running, p))
					said = true
				}
				return p, err
			})
			results <- applied{d, err, true, script, said}
		}()
	}
	hup := func() { apply(nil, true) }
	apply(p, false)
	for {
		select {
		case r := <-results:
			applying = false
			if r.script {
				l.scriptFailed(r.err)
			} else {
				l.report(r)
			}
			if pending {
				pending = false
				hup()
			}
		case <-l.shutdown:
			cancel()
			if applying {
				l.finished(<-results)
			}
			l.out.printf("starvisor: stopped by a shutdown request\n")
			return nil
		case sig := <-sigs:
			if l.relisten != nil && (sig == syscall.SIGUSR2 || sig == syscall.SIGHUP && (l.hungUp == nil || !l.hungUp())) {
				l.relisten()
			}
			if sig == syscall.SIGUSR2 {
				l.reopenLogs()
				continue
			}
			if sig == syscall.SIGHUP && l.hungUp != nil && l.hungUp() {
				// As Ctrl-C: a foreground up lives in its terminal (foreman, compose up);
				// it ran on headless, its own lines going to the dead terminal.
				// Its lines from here on in its log (how the stop ended, what was killed):
				// only the first said there, the rest went to the dead terminal.
				if l.toLog != nil {
					l.toLog()
				}
				l.out.printf("starvisor: SIGHUP: the terminal up ran in is gone: shutting down\n")
				cancel()
				return l.stopAll(sig, applying, results, sigs)
			}
			if sig == syscall.SIGHUP {
				if l.sup.ShuttingDown() {
					continue // a shutdown request is being served: nothing to reload into
				}
				l.out.printf("starvisor: SIGHUP: reloading\n")
				if applying {
					pending = true
				} else {
					hup()
				}
				continue
			}
			l.out.printf("starvisor: %s: shutting down\n", sigName(sig))
			cancel()
			return l.stopAll(sig, applying, results, sigs)
		}
	}
}

// headless sends a foreground up's lines to the daemon's log file at path once its
// terminal is gone: they went to the dead terminal, and nothing said why every service
// went down, or how their stop ended.
type headless struct {
	path        string
	out, errOut *lineWriter
	plain       func() // nil, or takes the colours off up --logs's labels
	mu          sync.Mutex
	started     bool
}

// start redirects the lines (once); false when they were already.
func (h *headless) start() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return false
	}
	h.started = true
	os.MkdirAll(filepath.Dir(h.path), 0o755)
	f, err := logs.OpenAppend(h.path) // 0600, as the detached daemon's: its notes name the programs' settings
	if err != nil {
		return true // nowhere to say it; up goes on as it would
	}
	// Left open: up writes there until it exits.
	h.out.redirect(f)
	h.errOut.redirect(f)
	if h.plain != nil {
		h.plain()
	}
	return true
}

// ttyWatch tells the SIGHUP of a terminal's hangup from a reload's. The terminal gone
// alone said it: an up started with & from a shell that then exited (bash sends no
// SIGHUP without huponexit) ran on, and a deliberate kill -HUP for a reload, hours
// later, stopped everything. So a poll notices a terminal gone with no hangup: from
// then on up runs headless and SIGHUP reloads.
type ttyWatch struct {
	gone    func() bool
	noticed satomic.Int64 // when the poll found the terminal gone, unix ns; 0: not yet
}

// ttyPoll is how often ttyWatch looks: three ioctls, in a foreground up only.
const ttyPoll = 2 * time.Second

// hungUp: the terminal is gone, and not for long (the hangup's own SIGHUP may come
// just after the poll noticed).
func (w *ttyWatch) hungUp() bool {
	n := w.noticed.Load()
	return w.gone() && (n == 0 || time.Since(time.Unix(0, n)) < time.Second)
}

// watch polls until the terminal is gone, then, unless a hangup's SIGHUP comes, calls
// lost (which says false when that SIGHUP already took over).
func (w *ttyWatch) watch(ctx context.Context, every time.Duration, lost func() bool) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !w.gone() {
			continue
		}
		w.noticed.Store(time.Now().UnixNano())
		select { // the hangup's SIGHUP, if one comes, comes at once
		case <-ctx.Done():
			return
		case <-time.After(every / 4):
		}
		lost()
		return
	}
}

// terminalGone returns, when up runs in a terminal (its stdin, stdout or stderr is one),
// a test of whether that terminal hung up: its attributes then read EIO. nil otherwise
// (detached, under systemd: every SIGHUP is a reload).
func terminalGone() func() bool {
	var ttys []int
	for _, fd := range []int{0, 1, 2} {
		if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
			ttys = append(ttys, fd)
		}
	}
	if len(ttys) == 0 {
		return nil
	}
	return func() bool {
		for _, fd := range ttys {
			if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == unix.EIO {
				return true
			}
		}
		return false
	}
}

// stopAll stops everything gracefully, unless a second SIGINT or SIGTERM arrives
// meanwhile: then every process group gets SIGKILL at once (supervisord has no such
// escalation; it is what a user pressing ^C twice means) and `up` exits with code 1,
// since the programs did not stop as their stop_signal and stop_timeout ask.
func (l *upLoop) stopAll(first os.Signal, applying bool, results <-chan applied, sigs <-chan os.Signal) error {
	began := l.clock()
	done := make(chan error, 1)
	go func() {
		if applying {
			l.finished(<-results) // cancelled: returns promptly
		}
		if l.busy != nil {
			l.busy() // never settled: the daemon exits
		}
		done <- l.sup.Shutdown(context.Background())
	}()
	// A program that ignores its stop signal holds the shutdown for its stop_timeout:
	// said after a moment, with the way out (it looked hung for 10 s).
	tell := time.NewTimer(1200 * time.Millisecond) // past the stop's first whole second: at 0.99 s it read "just now; SIGKILL in 10s"
	defer tell.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("up: shutdown: %w", err)
			}
			l.out.printf("starvisor: stopped\n")
			return nil
		case <-tell.C:
			if line := stillStopping(l.sup); line != "" {
				l.out.printf("starvisor: still stopping %s; a second Ctrl-C (or SIGTERM) kills them now\n", line)
			}
			tell.Reset(5 * time.Second)
		case sig := <-sigs:
			if sig == syscall.SIGHUP || sig == syscall.SIGUSR2 {
				continue // no reload while stopping; the logs close anyway
			}
			if gap := l.clock().Sub(began); gap < sameStop {
				unit := time.Millisecond
				if gap < unit {
					unit = time.Microsecond // "0s after" read as none
				}
				l.out.printf("starvisor: %s %s after %s: the same request (passed on by a wrapper?); another from a second on kills them now\n",
					sigName(sig), gap.Round(unit), sigName(first))
				continue
			}
			n := l.sup.Kill(context.Background())
			l.out.printf("starvisor: %s again: killed %s with all %s started (SIGKILL)\n", sigName(sig), plural(n, "process"), map[bool]string{true: "it", false: "they"}[n == 1])
			t := time.NewTimer(killWait)
			defer t.Stop()
			select {
			case <-done:
			case <-t.C:
				l.out.printf("starvisor: gave up waiting for the killed processes\n")
			}
			return reported(ExitFailure)
		}
	}
}

// stillStopping names the processes sup is still stopping, with what their stop is at
// ("web (stop requested 2s ago; SIGKILL in 8s)"); "" when none, or sup cannot say.
func stillStopping(sup supervisor) string {
	var names []string
	for _, st := range statesOf(sup) {
		if st.State == engine.Stopping {
			names = append(names, st.Name+" ("+st.Description+")")
		}
	}
	return strings.Join(capped(names, 5), ", ")
}

// reopenLogs answers SIGUSR2 as supervisord does (logrotate's postrotate sends it):
// the daemon's own log and every program's log files are opened again by name.
func (l *upLoop) reopenLogs() {
	if l.reopen != nil {
		l.reopen()
	}
	l.out.printf("starvisor: SIGUSR2: log files reopened\n")
}

// scriptFailed says a reload whose script failed changed nothing.
func (l *upLoop) scriptFailed(err error) {
	var ee *exitError
	if !errors.As(err, &ee) || ee.err != nil { // not yet said (the script's own errors are)
		l.out.printf("starvisor: %v\n", err)
	}
	l.out.printf("starvisor: reload failed, nothing changed\n")
	if l.reloaded != nil {
		l.reloaded(err)
	}
	if l.settled != nil {
		l.settled()
	}
}

// finished reports an apply that ended as a shutdown began: one that got through
// (its programs started) is said as ever; one the shutdown cut short changed nothing
// to say.
func (l *upLoop) finished(r applied) {
	if r.err == nil {
		l.report(r)
	}
}

func (l *upLoop) report(r applied) {
	if r.err != nil {
		l.stderr.printf("starvisor: %s: %v\n", map[bool]string{true: "reload failed", false: "apply"}[r.reload], r.err)
	}
	if r.reload && l.reloaded != nil {
		l.reloaded(r.err)
	}
	d := r.delta
	if l.settled != nil {
		l.settled() // the start burst is over: its garbage need not stay resident
	}
	if !r.reload {
		l.out.printf("starvisor: applied plan: %s\n", plural(len(d.Added), "process"))
		return
	}
	if !r.said {
		l.summary(d)
	}
	if fatal := fatalOf(l.sup); len(fatal) > 0 {
		// As apply says it: a reload after a fix outside the script (a config file, the
		// code) left them FATAL, with nothing said.
		l.out.printf("starvisor: note: %s FATAL, and a reload restarts only what the script changes: starvisor start %s\n",
			strings.Join(fatal, ", ")+map[bool]string{true: " is", false: " are"}[len(fatal) == 1], strings.Join(fatal, " "))
	}
}

// statesOf is sup's processes' states, when it can say (the engine can; a test's fake
// may not).
func statesOf(sup supervisor) []engine.Status {
	if s, ok := sup.(interface{ States() []engine.Status }); ok {
		return s.States()
	}
	return nil
}

// summary says what a reload changes: counts, then a line per change.
func (l *upLoop) summary(d plan.Delta) {
	l.out.printf("starvisor: reload: %d added, %d changed, %d removed, %d unchanged\n",
		len(d.Added), len(d.Changed), len(d.Removed), len(d.Unchanged))
	for _, line := range deltaLines(d) {
		l.out.line(line)
	}
}

// fatalOf names sup's FATAL processes (none when sup cannot say).
func fatalOf(sup supervisor) []string {
	var out []string
	for _, st := range statesOf(sup) {
		if st.State == engine.Fatal {
			out = append(out, st.Name)
		}
	}
	return out
}

func sigName(s os.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	case syscall.SIGUSR2:
		return "SIGUSR2"
	}
	return s.String()
}

// appliedPlanFile is where the daemon records the plan it runs, in its state_dir.
const appliedPlanFile = "plan.json"

// recordedPlan reads the plan the daemon of stateDir last recorded there.
func recordedPlan(stateDir string) (*plan.Plan, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, appliedPlanFile))
	if err != nil {
		return nil, err
	}
	return plan.Decode(b)
}

// recordPlan writes p to path (<state_dir>/plan.json) atomically, readable by its owner
// only (it holds the programs' environment); a failure only costs `logs` its record.
func recordPlan(path string, p *plan.Plan) error {
	b, err := p.JSON()
	if err != nil {
		return err
	}
	if err := monitor.WriteAtomic(path, b); err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			err = errno // the rest names a temporary file through /proc/self/fd/N
		}
		return err
	}
	return os.Chmod(path, 0o600)
}

// joinInts writes pids as "1, 2, 3".
func joinInts(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ", ")
}
