package reliability_test

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDaemonCrashThenRestart: a daemon killed with SIGKILL leaves its children running;
// the next `up` finds them through the state file (pid + start time), stops them, and
// runs exactly one copy of each program. SIGTERM then stops everything and exits 0.
func TestDaemonCrashThenRestart(t *testing.T) {
	b := newBundle(t, `
for name in ["a", "b", "c"]:
    program(name = name, command = ["/bin/sleep", "100000"], env = TOKEN, start_secs = 0,
            stop_timeout = "2s", stdout = None, stderr = None)
`)
	d1 := b.up(t)
	first := d1.allRunning(t, 3, 15*time.Second)
	var oldPids []int
	for _, p := range first {
		oldPids = append(oldPids, p.Pid)
	}

	syscall.Kill(d1.cmd.Process.Pid, syscall.SIGKILL) // the daemon only: children are in their own groups
	d1.wait(t, 5*time.Second)
	for _, pid := range oldPids {
		if !b.hasToken(pid) {
			t.Fatalf("child %d died with the daemon; want it orphaned and running", pid)
		}
	}

	d2 := b.up(t)
	second := d2.allRunning(t, 3, 15*time.Second)
	var newPids []int
	for name, p := range second {
		if slices.Contains(oldPids, p.Pid) {
			t.Errorf("%s kept the old pid %d: the new daemon adopted nothing, it must have started it", name, p.Pid)
		}
		newPids = append(newPids, p.Pid)
	}
	for _, pid := range oldPids {
		if b.hasToken(pid) {
			t.Errorf("old child %d still runs after the second up", pid)
		}
	}
	// Exactly one copy of each: the live processes of this run are the new pids, no more.
	live := b.tokenProcs()
	slices.Sort(live)
	slices.Sort(newPids)
	if !slices.Equal(live, newPids) {
		t.Errorf("live processes of the run %v, want exactly the new pids %v", live, newPids)
	}
	if out := d2.out.String(); strings.Count(out, "stray process") != 3 {
		t.Errorf("want three strays reported; output:\n%s", out)
	}

	syscall.Kill(d2.cmd.Process.Pid, syscall.SIGTERM)
	if code := d2.wait(t, 10*time.Second); code != 0 {
		t.Errorf("up exited %d after SIGTERM; output:\n%s", code, d2.out)
	}
	if live := b.tokenProcs(); len(live) != 0 {
		t.Errorf("processes of the run still alive after shutdown: %v", live)
	}
}
