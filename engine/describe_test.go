package engine

import (
	"slices"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

func TestUptime(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                   "0:00:00",
		62 * time.Second:                    "0:01:02",
		10*time.Hour + 999*time.Millisecond: "10:00:00",
		26*time.Hour + 3*time.Minute + 4*time.Second: "1 day, 2:03:04",
		72*time.Hour + 5*time.Second:                 "3 days, 0:00:05",
		-time.Second:                                 "0:00:00",
	} {
		if got := uptime(d); got != want {
			t.Errorf("uptime(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestDescribe(t *testing.T) {
	now := time.Date(2025, 11, 25, 18, 0, 0, 0, time.Local)
	stopped := time.Date(2025, 11, 25, 16, 42, 10, 0, time.Local)
	for _, c := range []struct {
		sn   snapshot
		want string
	}{
		{snapshot{State: Running, Pid: 11932, Started: now.Add(-2 * time.Second)}, "pid 11932, uptime 0:00:02"},
		{snapshot{State: Stopped}, "Not started"},
		{snapshot{State: Stopped, Stopped: stopped}, "Nov 25 04:42 PM"},
		{snapshot{State: Exited, Stopped: stopped}, "Nov 25 04:42 PM"},
		{snapshot{State: Exited, Stopped: stopped, LeftKilled: true}, "Nov 25 04:42 PM; what it left running was killed with it (a program that forks a daemon wants its foreground mode)"},
		{snapshot{State: Backoff, Err: tooQuickly}, tooQuickly},
		{snapshot{State: Fatal, Err: "can't find command '/nonexistent/bin/foo'"}, "can't find command '/nonexistent/bin/foo'"},
		{snapshot{State: Fatal}, `unknown error (try "tail x")`},
		{snapshot{State: Starting, Pid: 3}, ""},
		{snapshot{State: Stopping, Pid: 3}, ""},
		{snapshot{State: Unknown, Pid: 3, Err: "EPERM"}, ""},
	} {
		if got := describe("x", &c.sn, now); got != c.want {
			t.Errorf("%v: %q, want %q", c.sn.State, got, c.want)
		}
	}
}

func TestBuildEnv(t *testing.T) {
	pr := plan.Defaults()
	pr.Name, pr.ProcessName, pr.ProcessNum, pr.Group = "worker", "worker_02", 2, "pool"
	pr.Env = map[string]string{"PATH": "/venv/bin", "B": "2", "A": "1", "STARVISOR_PROCESS_NAME": "mine"}
	base := []string{"HOME=/root", "PATH=/usr/bin", "STARVISOR_GROUP_NAME=old", "junk"}
	want := []string{"HOME=/root", "PATH=/venv/bin", "STARVISOR_GROUP_NAME=pool", "A=1", "B=2",
		"STARVISOR_PROCESS_NAME=worker_02", "STARVISOR_PROCESS_NUM=2"}
	if got := buildEnv(pr, base, ""); !slices.Equal(got, want) {
		t.Errorf("inherit:\n got %q\nwant %q", got, want)
	}
	pr.InheritEnv = false
	want = []string{"A=1", "B=2", "PATH=/venv/bin", "STARVISOR_PROCESS_NAME=worker_02",
		"STARVISOR_PROCESS_NUM=2", "STARVISOR_GROUP_NAME=pool"}
	if got := buildEnv(pr, base, "42.1700000000000"); !slices.Equal(got, append(want, "STARVISOR_DAEMON=42.1700000000000")) {
		t.Errorf("no inherit:\n got %q\nwant %q", got, want)
	}
}

func TestStateNames(t *testing.T) {
	codes := map[State]int{Stopped: 0, Starting: 10, Running: 20, Backoff: 30, Stopping: 40, Exited: 100, Fatal: 200, Unknown: 1000}
	for _, s := range States {
		if int(s) != codes[s] {
			t.Errorf("%v = %d, want %d", s, int(s), codes[s])
		}
		back, err := ParseState(s.String())
		if err != nil || back != s {
			t.Errorf("ParseState(%q) = %v, %v", s.String(), back, err)
		}
	}
	if State(7).String() != "State(7)" {
		t.Errorf("State(7) = %q", State(7).String())
	}
}
