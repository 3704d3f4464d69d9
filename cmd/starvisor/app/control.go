package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/starvisor/starvisor/engine/api"
	"github.com/starvisor/starvisor/engine/monitor"
	"github.com/starvisor/starvisor/engine/plan"
)

// ControlVerbs are the verbs that talk to a running daemon over its socket.
type ControlVerbs struct {
	Apply    ApplyCmd    `cmd:"" help:"Re-evaluate the deploy script, show the difference and apply it to the daemon."`
	Status   StatusCmd   `cmd:"" help:"Show process states; exit 1 when a named process is not RUNNING (nor a job done), or, with no name or all, when one is FATAL, BACKOFF, UNKNOWN or blocked; 3 when the daemon cannot be reached."`
	Start    StartCmd    `cmd:"" help:"Start processes: NAME..., GROUP:* or all."`
	Stop     StopCmd     `cmd:"" help:"Stop processes: NAME..., GROUP:* or all."`
	Restart  RestartCmd  `cmd:"" help:"Restart processes: NAME..., GROUP:* or all."`
	Signal   SignalCmd   `cmd:"" help:"Send a signal to processes."`
	Logs     LogsCmd     `cmd:"" help:"Print the end of a process's log; -f follows it."`
	Pid      PidCmd      `cmd:"" help:"Print the daemon's pid, or a process's."`
	Shutdown ShutdownCmd `cmd:"" help:"Stop every process and the daemon; waits until they are gone."`
	Ls       LsCmd       `cmd:"" help:"List the bundles whose daemons run for this user: script, pid, processes running and failed."`
}

// socketOnly is the --socket flag of the verbs that evaluate a script of their own
// (apply, plan --diff), whose --lib serves both.
type socketOnly struct {
	Socket string `help:"Daemon socket (else the bundle --file names, else STARVISOR_SOCKET, else the socket of deploy.star in this folder or a parent)."`
}

// socketFlag is --socket, and --file (-f, as for up and apply) and --lib for
// evaluating deploy.star to find the socket, of the other client verbs.
type socketFlag struct {
	socketOnly `embed:""`
	File       string `name:"file" short:"f" type:"path" placeholder:"FILE" help:"Deploy script whose daemon to reach (else deploy.star in this folder or a parent)."`
	libFlag    `embed:""`
}

// logsSocketFlag is socketFlag for logs, whose -f is --follow as in tail -f.
type logsSocketFlag struct {
	socketOnly `embed:""`
	File       string `name:"file" type:"path" placeholder:"FILE" help:"Deploy script whose daemon to reach (else deploy.star in this folder or a parent)."`
	libFlag    `embed:""`
}

type libFlag struct {
	Lib []string `name:"lib" sep:"none" placeholder:"NAME=DIR" help:"Library root for load(\"@NAME//...\") in deploy.star, to find its socket; repeatable. Adds to STARVISOR_LIBS."`
}

func (f *socketFlag) client(ctx context.Context, d *Deps) (*api.Client, error) {
	return f.socketOnly.client(ctx, d, f.File, f.Lib)
}

func (f *logsSocketFlag) client(ctx context.Context, d *Deps) (*api.Client, error) {
	return f.socketOnly.client(ctx, d, f.File, f.Lib)
}

// scriptName is the file socket discovery looks for.
const scriptName = "deploy.star"

// client finds the daemon's socket: --socket, then the bundle -f names, STARVISOR_SOCKET,
// then the plan of the nearest deploy.star. The flags beat the variable: an exported
// STARVISOR_SOCKET took `restart worker -f services/auth` to another bundle's worker.
// Neither --socket nor the variable evaluates Starlark, which keeps `status` fast.
func (f *socketOnly) client(ctx context.Context, d *Deps, script string, libs []string) (*api.Client, error) {
	cl, err := f.find(ctx, d, script, libs)
	if cl != nil {
		tellStarting(d, cl)
	}
	return cl, err
}

// tellStarting has cl say, once, why it waits for a daemon that is starting (stopping
// what a killed one left: up to their stop_timeout, which looked like a hang).
func tellStarting(d *Deps, cl *api.Client) {
	cl.Starting = func(msg string) { fmt.Fprintf(d.Stderr, "starvisor: %s; waiting for it\n", msg) }
}

func (f *socketOnly) find(ctx context.Context, d *Deps, script string, libs []string) (*api.Client, error) {
	if f.Socket != "" {
		return api.NewClient(f.Socket), nil
	}
	if s, ok := d.LookupEnv("STARVISOR_SOCKET"); ok && s != "" && script == "" {
		if here, err := findScript(); err == nil {
			// Said, not refused (the variable is there to reach that daemon): a shutdown
			// typed in one bundle's folder, the variable left over, shut another down.
			here = absOr(here)
			if own := socketInLocks(rootLockPaths(here)...); own != "" && own != s {
				fmt.Fprintf(d.Stderr, "starvisor: note: STARVISOR_SOCKET=%s, not this folder's bundle (%s, on %s)\n", s, here, own)
			}
		}
		return api.NewClient(s), nil
	}
	if script == "" {
		var err error
		if script, err = findScript(); err != nil {
			// A bundle whose script sits below (python-fleet's etc/deploy.star) has its
			// state folder here: its lock names the running daemon's socket.
			if s := socketInLocks(lockPath("run")); s != "" {
				return api.NewClient(s), nil
			}
			return nil, err
		}
	}
	if st, err := os.Stat(script); err == nil && st.IsDir() {
		script = filepath.Join(script, scriptName) // a bundle's folder
	} else if err != nil {
		// A -f with a slip in it must not reach the daemon of the folder it names.
		return nil, fmt.Errorf("%s: %w", script, errors.Unwrap(err))
	}
	// The bundle's running daemon wrote its socket in the bundle's lock: found there, it
	// costs no evaluation, and a script that loads a --lib library, or one broken since
	// the daemon started, still reaches it. The lock named after the script, then the one
	// in the default state_dir, which moves with the bundle (mv of its folder while the
	// daemon runs): the script's name moves with it, and another script of the folder is
	// another bundle.
	abs := absOr(script)
	expect := ownerOf(abs)
	locks := rootLockPaths(abs)
	l := lockPath(filepath.Join(filepath.Dir(abs), "run"))
	if ran := lockLine(l, lockScript); ran == "" || filepath.Base(ran) == filepath.Base(abs) {
		locks = append(locks, l)
	}
	if s := socketInLocks(locks...); s != "" {
		return expecting(api.NewClient(s), expect), nil
	}
	sf := scriptFlags{File: script, Lib: libs}
	p, err := sf.eval(ctx, d)
	if err != nil {
		// Its daemon not running (no lock), the plan it last ran names the socket: a
		// health check of a bundle that is down got exit 1 and a traceback (a library
		// its shell does not declare), where "no daemon" is exit 3.
		if last, rerr := recordedPlan(filepath.Join(filepath.Dir(script), "run")); rerr == nil && last.Supervisor.Socket != "" &&
			filepath.Join(last.Root, last.Entry) == abs {
			fmt.Fprintf(d.Stderr, "starvisor: %s does not evaluate here (above); its daemon last ran on %s\n", script, last.Supervisor.Socket)
			return expecting(api.NewClient(last.Supervisor.Socket), expect), nil
		}
		fmt.Fprintf(d.Stderr, "starvisor: the daemon's socket comes from %s, which failed: give --socket or set STARVISOR_SOCKET (or --lib for its libraries)\n", script)
		return nil, err
	}
	cl := expecting(api.NewClient(daemonSocket(p)), expect)
	stateDirs.Store(cl.Socket, p.Supervisor.StateDir) // for leftRunning, should it be dead
	bundleLocks.Store(cl.Socket, append([]string{lockPath(p.Supervisor.StateDir)}, rootLockPaths(filepath.Join(p.Root, p.Entry))...))
	// Not found in this bundle's locks, so its daemon is not running; one answering on
	// the socket its script names is another bundle's (a copied supervisor() line),
	// which a stop all or a shutdown typed here must not reach.
	if running, err := cl.Plan(ctx); err == nil {
		if other := api.OtherBundle(running, p); other != "" {
			return nil, &exitError{code: ExitUnreachable, err: fmt.Errorf("the daemon on %s runs %s, not %s (do both name this socket?): give --socket %s to reach it anyway", cl.Socket, other, filepath.Join(p.Root, p.Entry), cl.Socket)}
		}
	}
	return cl, nil
}

// ownerOf is the owner of the file at path (a bundle's script); nil when it cannot be
// read.
func ownerOf(path string) []uint32 {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return nil
	}
	return []uint32{st.Uid}
}

// expecting has cl send nothing to a daemon of anyone but root, the caller and expect.
func expecting(cl *api.Client, expect []uint32) *api.Client {
	cl.Expect = expect
	return cl
}

// absOr is path made absolute, or path itself when it cannot be.
func absOr(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// socketInLocks is the first socket, written in one of the held locks, that is there;
// a socket gone from where the lock says is looked for beside the lock (the folder moved
// with its daemon running). "" when none.
func socketInLocks(locks ...string) string {
	for _, lock := range locks {
		s := lockedSocketAt(lock, "")
		if !isSocket(s) && s != "" {
			s = filepath.Join(filepath.Dir(lock), filepath.Base(s))
		}
		if isSocket(s) {
			return s
		}
	}
	return ""
}

func isSocket(path string) bool {
	st, err := os.Stat(path)
	return path != "" && err == nil && st.Mode().Type() == os.ModeSocket
}

// stateDirs maps a socket to the state_dir of the script that named it, when the client
// evaluated one: where its daemon's state file is, should that daemon be dead.
var stateDirs sync.Map

// bundleLocks maps a socket to the locks of the bundle whose script named it: a daemon
// that holds one and does not answer lost its socket (see socketGone).
var bundleLocks sync.Map

// socketGone says, when the daemon of socket does not answer, whether it runs all the
// same, holding its bundle's lock, its socket removed (rm -rf of the run folder under
// it): "no daemon is running there (start one)" sent the user to an up it refused.
func socketGone(socket string) error {
	for _, l := range bundleLockPaths(socket) {
		pid := holderPid(l)
		if pid == "" {
			continue
		}
		if _, err := os.Stat(socket); err == nil {
			return nil // there, and not answering: hung or stopped, which the error says
		}
		if now := movedTo(pid, lockLine(l, lockScript)); now != "" {
			return fmt.Errorf("%w at %s: its daemon (pid %s) moved with its bundle's folder to %s, and runs there: `starvisor %s -f %s` reaches it",
				api.ErrUnreachable, socket, pid, now, "status", quoteArg(now))
		}
		return fmt.Errorf("%w at %s: its daemon (pid %s) runs, but its socket is gone (its folder removed?): `kill -USR2 %s` makes it listen there again, restarting nothing",
			api.ErrUnreachable, socket, pid, pid)
	}
	return nil
}

// movedTo is where the bundle of the daemon pid runs now, when its folder moved away
// from that of script (mv while it runs: the daemon works from its bundle's folder,
// which it keeps); "" when it did not, or cannot be told.
func movedTo(pid, script string) string {
	now, err := os.Readlink("/proc/" + pid + "/cwd")
	if err != nil || script == "" || strings.HasSuffix(now, " (deleted)") || now == filepath.Dir(script) {
		return ""
	}
	if real, err := filepath.EvalSymlinks(filepath.Dir(script)); err == nil && real == now {
		return "" // reached through a symlink: where it was
	}
	if _, err := os.Stat(filepath.Join(now, filepath.Base(script))); err != nil {
		return "" // not a bundle's folder (a daemon working elsewhere)
	}
	return now
}

// bundleLockPaths are the locks of the bundle whose script named socket (bundleLocks);
// none when no script was evaluated for it (--socket given).
func bundleLockPaths(socket string) []string {
	locks, _ := bundleLocks.Load(socket)
	paths, _ := locks.([]string)
	return paths
}

// holderPid is the pid of the daemon that holds the lock at path, as it wrote it there;
// "" when nobody holds it, or it names none.
func holderPid(path string) string {
	pid, _, _ := strings.Cut(lockLine(path, lockIdentity), ".")
	if _, err := strconv.Atoi(pid); err != nil || !lockHeld(path) {
		return ""
	}
	return pid
}

// stateDirOf is the state_dir of the daemon of socket: the one its script names, else
// the socket's folder (the default state_dir).
func stateDirOf(socket string) string {
	if d, ok := stateDirs.Load(socket); ok {
		return d.(string)
	}
	return filepath.Dir(socket)
}

// leftRunning says, when the daemon whose socket is dead was killed and left its programs
// running (its state file says so: in the state_dir of the script that named the socket,
// else beside the socket, the default state_dir), which: "no daemon is running" read as
// "the services are down", or were up and supervised.
func leftRunning(socket string) string {
	dir := stateDirOf(socket)
	if err := safeStateDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "" // another user's state file names what they like: no stray of ours
	}
	daemon, left := monitor.LeftRunning(filepath.Join(dir, "state.json"), previousIdentity(socket, dir))
	if len(left) == 0 {
		return ""
	}
	var names []string
	count := 0
	for _, s := range monitor.ByProcess(left) { // a program once, however many groups it left
		names = append(names, fmt.Sprintf("%s (pid %d)", s.Process, s.Pid))
		count += max(len(s.Pids), 1)
	}
	names = capped(names, 10) // 213 made one 5 KB line on every command
	return fmt.Sprintf("starvisor: its daemon (pid %d) is gone, and %s of its still run, unsupervised: %s; `starvisor up --detach` stops them, then starts the plan; `starvisor shutdown` only stops them",
		daemon, plural(count, "process"), strings.Join(names, ", "))
}

// previousIdentity is the identity ("pid.start") of the daemon of socket as its bundle's
// locks keep it: the state_dir's lock, else the lock outside the bundle (its run
// folder removed with the lock in it, the killed daemon's processes run on).
func previousIdentity(socket, stateDir string) string {
	if id := lockLine(lockPath(stateDir), lockIdentity); id != "" {
		return id
	}
	for _, l := range bundleLockPaths(socket) {
		if id := lockLine(l, lockIdentity); id != "" {
			return id
		}
	}
	return ""
}

// daemonSocket is where the bundle's daemon answers: the socket the script names, unless
// the running daemon wrote another in the bundle's locks (the script was edited since;
// the daemon keeps its settings until its next start) and that one is there.
func daemonSocket(p *plan.Plan) string {
	if s := socketInLocks(append([]string{lockPath(p.Supervisor.StateDir)}, rootLockPaths(filepath.Join(p.Root, p.Entry))...)...); s != "" {
		return s
	}
	return p.Supervisor.Socket
}

// findScript looks for deploy.star in the working folder and its parents.
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("socket: %w", err)
	}
	for {
		p := filepath.Join(dir, scriptName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", usageError(errors.New("no daemon socket: give --socket, set STARVISOR_SOCKET, or run inside a folder with " + scriptName))
		}
		dir = parent
	}
}

// clientError maps a failed request to the CLI's exit codes: 3 when the daemon cannot be
// reached, else 1.
func clientError(verb string, err error) error {
	if errors.Is(err, api.ErrUnreachable) {
		var nd *api.NoDaemonError
		if errors.As(err, &nd) {
			if gone := socketGone(nd.Socket); gone != nil {
				err = gone
			} else if note := leftRunning(nd.Socket); note != "" {
				err = fmt.Errorf("%w\n%s", err, note)
			}
		}
		return &exitError{code: ExitUnreachable, err: fmt.Errorf("%s: %w", verb, err)}
	}
	return fmt.Errorf("%s: %w", verb, err)
}
