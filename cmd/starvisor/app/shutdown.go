package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/starvisor/starvisor/engine/api"
	"github.com/starvisor/starvisor/engine/monitor"
)

// ShutdownCmd stops every process, then the daemon, and returns once the daemon no
// longer answers.
type ShutdownCmd struct {
	socketFlag `embed:""`
	Timeout    time.Duration `default:"60s" help:"How long to wait for the daemon to go away after its processes stopped."`
}

// pollEvery is how often the CLI looks at a daemon it waits for.
const pollEvery = 10 * time.Millisecond

func (c *ShutdownCmd) Run(d *Deps) error {
	ctx := context.Background()
	cl, err := c.client(ctx, d)
	if err != nil {
		return err
	}
	// The answer comes once every process has stopped; the daemon then closes its socket.
	var serr error
	telling(ctx, d, cl, "shutdown", nil, nil, func() { serr = cl.Shutdown(ctx) }) // a slow stop says what it waits for
	if nd, ok := errors.AsType[*api.NoDaemonError](serr); ok {
		// Its daemon was killed: what it left running, unsupervised, is stopped here, as
		// its next up would, and the bundle is down as asked.
		if stopped := stopLeft(ctx, d, nd.Socket); stopped {
			fmt.Fprintln(d.Stdout, "Shut down")
			return nil
		}
	}
	if serr != nil {
		return clientError("shutdown", serr)
	}
	deadline := time.Now().Add(c.Timeout)
	for api.Answers(cl.Socket) {
		if time.Now().After(deadline) {
			return fmt.Errorf("shutdown: processes stopped, but the daemon still answers on %s after %s", cl.Socket, c.Timeout)
		}
		time.Sleep(pollEvery)
	}
	// And until it let go of the bundle's lock, a moment after its socket: an up right
	// after the shutdown (a redeploy) found it held, "a daemon is already running".
	for lock := lockPath(stateDirOf(cl.Socket)); lockHeld(lock) && time.Now().Before(deadline); {
		time.Sleep(pollEvery)
	}
	fmt.Fprintln(d.Stdout, "Shut down")
	return nil
}

// stopLeft stops what the killed daemon of the socket left running, as its next up
// would (each as its program is stopped), holding the bundle's lock so no daemon starts
// meanwhile; it says what it stopped, and false when nothing was left (or it could not
// tell: a daemon holds the lock, starting).
func stopLeft(ctx context.Context, d *Deps, socket string) bool {
	dir := stateDirOf(socket)
	if err := safeStateDir(dir); err != nil {
		if !errors.Is(err, fs.ErrNotExist) { // none (its folder removed): nothing to read
			fmt.Fprintf(d.Stderr, "starvisor: shutdown: not reading its state file: %v\n", err)
		}
		return false // a state file another user may write would have us kill what it names
	}
	statePath := filepath.Join(dir, "state.json")
	if _, left := monitor.LeftRunning(statePath, lockLine(lockPath(dir), lockIdentity)); len(left) == 0 {
		return false
	}
	lock, err := os.OpenFile(lockPath(dir), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer lock.Close()
	if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return false // a daemon of the bundle is starting: it stops them itself
	}
	state := &monitor.StateFile{Path: statePath, Previous: lockLine(lock.Name(), lockIdentity)} // finds what it spawned unrecorded
	ran, _ := recordedPlan(dir)
	state.StopAs = func(process string) (monitor.StopSpec, bool) { return strayStop(process, ran) }
	strays, err := state.StopLeft(ctx)
	if err != nil {
		fmt.Fprintf(d.Stderr, "starvisor: warning: %v\n", err)
	}
	for _, s := range monitor.ByProcess(strays) {
		fmt.Fprintf(d.Stderr, "starvisor: %s\n", formatStray(s))
	}
	// Its pidfile and socket go, as its clean exit removes them: a logrotate's kill -USR2
	// $(cat run/starvisor.pid) would signal whatever process took the dead pid.
	dead, _, _ := strings.Cut(lockLine(lock.Name(), lockIdentity), ".")
	if ran != nil && dead != "" {
		removeIfPid(ran.Supervisor.Pidfile, dead)
	}
	if st, err := os.Lstat(socket); err == nil && st.Mode().Type() == os.ModeSocket && !api.Answers(socket) {
		os.Remove(socket)
	}
	// Its identity out of the lock too, as a clean exit leaves it: nothing of it is left.
	held := &heldLock{File: lock, socket: lockLine(lock.Name(), lockSocket), script: lockLine(lock.Name(), lockScript)}
	held.clean()
	return len(strays) > 0
}

// removeIfPid removes the pidfile f when it names pid (a daemon gone), not another's.
func removeIfPid(f, pid string) {
	if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == pid {
		os.Remove(f)
	}
}
