package reliability_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStopCyclesLeaveNoDaemonizedGrandchild: a program that leaves a daemonized
// grandchild (fork, setsid, fork again, the middle one exits) every time it starts
// is stopped and started N times through the real binary (20 here, 500 under
// STARVISOR_SOAK=1). The grandchild is reparented to the daemon (a subreaper), and
// each stop, with stop_as_group, kills it: after every stop no process of the run
// is alive and the daemon has no zombie child; after shutdown nothing survives.
func TestStopCyclesLeaveNoDaemonizedGrandchild(t *testing.T) {
	cycles := 20
	if os.Getenv("STARVISOR_SOAK") == "1" {
		cycles = 500
	}
	b := newBundle(t, `
program(name = "w", env = TOKEN, start_secs = 0, stop_as_group = True, stop_timeout = "5s",
        stdout = None, stderr = None,
        command = ["/bin/sh", "-c", "( setsid sh -c 'sleep 100000 &' & ); exec sleep 100000"])
`)
	d := b.up(t)
	daemonPid := d.cmd.Process.Pid
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()

	start := time.Now()
	var maxStop time.Duration
	for i := range cycles {
		if i > 0 {
			if _, err := d.client.Action(ctx, "start", []string{"w"}); err != nil {
				t.Fatalf("cycle %d: start: %v\n%s", i, err, tail(d.out.String(), 2000))
			}
		}
		st := d.allRunning(t, 1, 15*time.Second)
		// Both the program and its daemonized grandchild run, the grandchild
		// adopted by the daemon, out of the program's group and session.
		var grand int
		eventually(t, 5*time.Second, fmt.Sprintf("cycle %d: the adopted grandchild", i), func() bool {
			for _, pid := range b.tokenProcs() {
				// the final sleep, not the sh that is still forking it: the stop must
				// find the whole chain in place for the test to be deterministic
				if pid != st["w"].Pid && ppidOf(pid) == daemonPid && commOf(pid) == "sleep" {
					grand = pid
					return true
				}
			}
			return false
		}, func() string { return fmt.Sprintf("run's processes %v, program %d", b.tokenProcs(), st["w"].Pid) })

		t0 := time.Now()
		if _, err := d.client.Action(ctx, "stop", []string{"w"}); err != nil {
			t.Fatalf("cycle %d: stop: %v\n%s", i, err, tail(d.out.String(), 2000))
		}
		maxStop = max(maxStop, time.Since(t0))
		eventually(t, 5*time.Second, fmt.Sprintf("cycle %d: no process of the run alive", i), func() bool {
			return len(b.tokenProcs()) == 0
		}, func() string { return fmt.Sprintf("alive %v (grandchild %d)", b.tokenProcs(), grand) })
		eventually(t, 5*time.Second, fmt.Sprintf("cycle %d: no zombie child of the daemon", i), func() bool {
			return !slices.Contains(stateValues(children(daemonPid)), 'Z')
		}, func() string { return fmt.Sprint("children ", children(daemonPid)) })
	}
	elapsed := time.Since(start)

	syscall.Kill(daemonPid, syscall.SIGTERM)
	if code := d.wait(t, 15*time.Second); code != 0 {
		t.Errorf("up exited %d after SIGTERM; output tail:\n%s", code, tail(d.out.String(), 2000))
	}
	survivors := b.tokenProcs()
	if len(survivors) > 0 {
		t.Errorf("after %d cycles and shutdown, processes of the run alive: %v", cycles, survivors)
	}
	t.Logf("%d stop/start cycles in %s (slowest stop %s); %d survivors",
		cycles, elapsed.Round(time.Millisecond), maxStop.Round(time.Millisecond), len(survivors))
}

func ppidOf(pid int) int {
	st, _ := readStat(pid)
	return st.ppid
}

func stateValues(m map[int]byte) []byte {
	out := make([]byte, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	return out
}

func commOf(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}
