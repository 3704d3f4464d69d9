package launcher

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// startStopping starts server (a shell script, in $D) behind a wrapper that waits for it
// and dies of TERM at once, waits for the server's "up", then stops the wrapper alone
// with TERM as the engine's stop does (StopSent first). It returns the handle and $D.
func startStopping(t *testing.T, l *Launcher, server string) (*handle, string) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "server.sh")
	if err := os.WriteFile(script, []byte(server), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := shell(`sh ` + script + ` & wait`)
	spec.Env = append(spec.Env, "D="+dir)
	h := startWith(t, l, spec).(*handle)
	poll(t, 5*time.Second, "the server up", func() bool { _, err := os.Stat(filepath.Join(dir, "up")); return err == nil })
	h.StopSent(syscall.SIGTERM, 10*time.Second)
	if err := h.Signal(syscall.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	return h, dir
}

// A wrapper that does not exec (sh -c "cd app && serve") dies of its stop's signal at
// once; what it started gets that signal too and the rest of stop_timeout, as a group
// stop gives it: it was SIGKILLed a moment later, its drain cut short. In both modes.
func TestStopSignalReachesWhatAWrapperLeft(t *testing.T) {
	for _, mode := range []struct {
		name string
		l    func(t *testing.T) *Launcher
	}{
		{"process groups", func(*testing.T) *Launcher { return processGroups() }},
		{"cgroups", cgroupLauncher},
	} {
		t.Run(mode.name, func(t *testing.T) {
			// The server drains for 300 ms on TERM, then says so.
			h, dir := startStopping(t, mode.l(t), `trap 'sleep 0.3; echo drained > "$D/drained"; exit 0' TERM; echo up > "$D/up"; while :; do sleep 0.02; done`)
			e := wait(t, h)
			if _, err := os.Stat(filepath.Join(dir, "drained")); err != nil {
				t.Errorf("the server did not drain before the exit was reported: %v (exit %+v)", err, e)
			}
			if e.GroupKilled || e.LeftKilled {
				t.Errorf("exit %+v: nothing was killed", e)
			}
		})
	}
}

// One that does not drain within stop_timeout gets the engine's SIGKILL, as a group
// stop's would, and the exit says so.
func TestStopOfWhatAWrapperLeftEndsInTheKill(t *testing.T) {
	h, _ := startStopping(t, processGroups(), `trap "" TERM; echo up > "$D/up"; while :; do sleep 0.02; done`)
	select {
	case e := <-h.Done():
		t.Fatalf("exit %+v reported while the server still ran", e)
	case <-time.After(200 * time.Millisecond): // the stop_timeout of 10s is not over: not a wait for something
	}
	if err := h.Signal(syscall.SIGKILL, false); err != nil { // the engine's, at stop_timeout
		t.Fatal(err)
	}
	if e := wait(t, h); !e.GroupKilled {
		t.Errorf("exit %+v: want the rest of its group killed", e)
	}
}
