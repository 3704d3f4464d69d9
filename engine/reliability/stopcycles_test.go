package reliability_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
// As root on cgroup v2 the daemon must use cgroup mode: the program and its
// grandchild share a cgroup of the daemon's, empty once each stop returns (kept for
// the next start, or removed if its leftovers had to be killed), and the daemon's
// parent cgroup is gone after shutdown.
func TestStopCyclesLeaveNoDaemonizedGrandchild(t *testing.T) {
	cycles := 20
	if os.Getenv("STARVISOR_SOAK") == "1" {
		cycles = 500
	}
	cgMount, why := cgroupModeExpected()
	t.Logf("cgroup mode expected: %v (%s)", cgMount != "", why)
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
	var parentDir, lastCg string
	reused := 0
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
		var cgDir string
		if cgMount != "" {
			cg := cgroupOf(st["w"].Pid)
			if !strings.Contains(cg, fmt.Sprintf("/starvisor-%d-", daemonPid)) {
				t.Fatalf("cycle %d: program %d in cgroup %q, not one of daemon %d's", i, st["w"].Pid, cg, daemonPid)
			}
			if g := cgroupOf(grand); g != cg {
				t.Fatalf("cycle %d: grandchild in cgroup %q, program in %q", i, g, cg)
			}
			cgDir = filepath.Join(cgMount, cg)
			parentDir = filepath.Dir(cgDir)
			if cg == lastCg {
				reused++
			}
			lastCg = cg
		}

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
		if cgDir != "" {
			// emptied before the stop's exit is reported: no waiting
			procs, err := os.ReadFile(filepath.Join(cgDir, "cgroup.procs"))
			if err == nil && len(procs) > 0 || err != nil && !os.IsNotExist(err) {
				t.Fatalf("cycle %d: cgroup %s not empty after the stop: %q (%v)", i, cgDir, procs, err)
			}
		}
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
	if parentDir != "" {
		if _, err := os.Stat(parentDir); !os.IsNotExist(err) {
			t.Errorf("the daemon's parent cgroup %s is still there after shutdown (%v)", parentDir, err)
		}
	}
	mode := "process groups"
	if cgMount != "" {
		mode = "cgroups"
	}
	t.Logf("%d stop/start cycles (%s, cgroup reused by %d starts) in %s (slowest stop %s); %d survivors",
		cycles, mode, reused, elapsed.Round(time.Millisecond), maxStop.Round(time.Millisecond), len(survivors))
}

// cgroupModeExpected returns the cgroup2 mount point when the daemon this test
// starts must use cgroup mode: root, cgroup v2 mounted, and cgroup.kill, probed
// by making a scratch cgroup beside where the daemon will make its own. Else "" and why.
func cgroupModeExpected() (mount, why string) {
	if os.Geteuid() != 0 {
		return "", "not root"
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err.Error()
	}
	for line := range strings.SplitSeq(string(mi), "\n") {
		before, after, ok := strings.Cut(line, " - ")
		if f := strings.Fields(before); ok && len(f) >= 5 && strings.HasPrefix(after, "cgroup2 ") && f[3] == "/" {
			mount = f[4]
			break
		}
	}
	if mount == "" {
		return "", "no cgroup2 mount"
	}
	own := cgroupOf(os.Getpid())
	if own == "" {
		return "", "no 0:: line in /proc/self/cgroup"
	}
	probe := filepath.Join(mount, own, fmt.Sprintf("svprobe-%d", os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil {
		return "", err.Error()
	}
	defer os.Remove(probe)
	if _, err := os.Stat(filepath.Join(probe, "cgroup.kill")); err != nil {
		return "", "no cgroup.kill"
	}
	return mount, "root, cgroup2 at " + mount
}

// cgroupOf is the cgroup v2 path of pid (the 0:: line of /proc/PID/cgroup).
func cgroupOf(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p
		}
	}
	return ""
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
