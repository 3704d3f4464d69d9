package reliability_test

import (
	"fmt"
	"math/rand/v2"
	"os"
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
	// A clean stop leaves no process and no daemon to look for in the state file.
	if data, err := os.ReadFile(b.state); err != nil || strings.TrimSpace(string(data)) != "{}" {
		t.Errorf("state file after a clean stop: %q, %v", data, err)
	}
}

// TestDaemonKilledAtRandomMoments: daemons SIGKILLed at random moments of their start
// burst (or after it), one after another on one bundle; each next `up` must end with
// exactly one process per program, whatever the last one left half-recorded. 5 rounds
// here, 40 with STARVISOR_SOAK=1.
func TestDaemonKilledAtRandomMoments(t *testing.T) {
	rounds := 5
	if os.Getenv("STARVISOR_SOAK") == "1" {
		rounds = 40
	}
	const n = 30
	b := newBundle(t, fmt.Sprintf(`
for i in range(%d):
    name = "k" + str(i)
    program(name = name, command = ["/bin/sleep", "100000"], env = TOKEN | {"SV_PROG": name},
            start_secs = 0, stop_timeout = "2s", stdout = None, stderr = None)
`, n))
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 4))
	for round := range rounds {
		d := b.up(t)
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond) // often mid-burst
		syscall.Kill(d.cmd.Process.Pid, syscall.SIGKILL)
		d.wait(t, 5*time.Second)
		t.Logf("round %d: killed with %d processes alive", round, len(b.tokenProcs()))
	}
	d := b.up(t)
	d.allRunning(t, n, 30*time.Second)
	copies := b.byProgram()
	for name, pids := range copies {
		if len(pids) != 1 {
			t.Errorf("%s runs %d times: %v (seed %d)", name, len(pids), pids, seed)
		}
	}
	if len(copies) != n {
		t.Errorf("%d programs have a process, want %d", len(copies), n)
	}
	d.shutdown(t, 30*time.Second)
	if live := b.tokenProcs(); len(live) != 0 {
		t.Errorf("processes of the run still alive after shutdown: %v", live)
	}
}
