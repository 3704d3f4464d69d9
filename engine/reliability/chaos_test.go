package reliability_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestChaosRandomChildKills: 20 programs while a driver SIGKILLs random children (pids
// from the API's status, checked to be this run's) about 50 times a second for 5 s.
// Afterwards every program is RUNNING again within its back-off, no zombie child is left,
// the daemon's descriptors return to their count before the chaos, and after shutdown no
// process of the run is alive.
//
// Half the programs have start_secs = 0 (a kill hits RUNNING: immediate restart), half
// start_secs = 1 with backoff_max = 2s (kills hit STARTING: the BACKOFF path, retried
// forever), so recovery is bounded by 2 s of back-off plus one start.
func TestChaosRandomChildKills(t *testing.T) {
	const n = 20
	b := newBundle(t, `
for i in range(20):
    name = "p" + ("0" if i < 10 else "") + str(i)
    program(name = name, command = ["/bin/sleep", "100000"], env = TOKEN,
            start_secs = i % 2, start_retries = -1, backoff_max = "2s", autorestart = True,
            stop_timeout = "2s", stdout = log("log/%s.log" % name, max_bytes = "1KB", backups = 1))
`)
	d := b.up(t)
	daemonPid := d.cmd.Process.Pid
	d.allRunning(t, n, 20*time.Second)
	d.status() // the client's connection is open before the baseline is taken
	fdsBefore := fdCount(daemonPid)
	kindsBefore := fdKinds(daemonPid)

	seen := map[int]bool{}
	kills, skipped, unreachable := 0, 0, 0
	rng := rand.New(rand.NewPCG(1, 2))
	names := make([]string, n) // every program, so a kill picks among the live ones
	for i := range names {
		names[i] = fmt.Sprintf("p%02d", i)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; i < 250 && time.Now().Before(deadline); i++ {
		<-tick.C
		st := d.status()
		var pids []int
		for _, name := range names {
			if p := st[name]; p.Pid > 0 && b.hasToken(p.Pid) { // not between incarnations, not stale
				pids = append(pids, p.Pid)
			}
		}
		if len(pids) == 0 {
			if st == nil {
				unreachable++
			}
			skipped++
			continue
		}
		pid := pids[rng.IntN(len(pids))]
		seen[pid] = true
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			kills++
		}
	}
	tick.Stop()
	// The engine spaces respawns (at least 1 s between spawns of one program, and the
	// back-off), so many ticks find every child dead already: ~100 kills land, not 250.
	if kills < 60 {
		t.Errorf("only %d kills landed (%d skipped); the chaos was too mild", kills, skipped)
	}

	start := time.Now()
	after := d.allRunning(t, n, 15*time.Second)
	recovery := time.Since(start)
	for _, p := range after {
		seen[p.Pid] = true
		if !b.hasToken(p.Pid) {
			t.Errorf("%s reports pid %d, which is not a live process of the run", p.Name, p.Pid)
		}
	}

	var zombies map[int]byte
	eventually(t, 5*time.Second, "no zombie children", func() bool {
		zombies = map[int]byte{}
		for pid, st := range children(daemonPid) {
			if st == 'Z' {
				zombies[pid] = st
			}
		}
		return len(zombies) == 0
	}, func() string { return fmt.Sprint("zombies ", zombies) })

	// Each child costs the daemon its pipe ends while it runs and nothing after it is
	// reaped, so the count must come back. Tolerance 2: the API client may hold a second
	// connection, and a pipe of a child that just restarted may still be closing.
	var fdsAfter int
	eventually(t, 5*time.Second, "the daemon's descriptors to return", func() bool {
		fdsAfter = fdCount(daemonPid)
		return fdsAfter <= fdsBefore+2
	}, func() string {
		return fmt.Sprintf("fds before %d %s, now %d %s", fdsBefore, kindsBefore, fdsAfter, fdKinds(daemonPid))
	})
	t.Logf("%d kills (%d ticks found no live child, %d of them status failed) in 5s; all %d RUNNING again %s later; daemon fds %d before, %d after; %d pids seen",
		kills, skipped, unreachable, n, recovery.Round(time.Millisecond), fdsBefore, fdsAfter, len(seen))

	syscall.Kill(daemonPid, syscall.SIGTERM)
	if code := d.wait(t, 15*time.Second); code != 0 {
		t.Errorf("up exited %d after SIGTERM; output tail:\n%s", code, tail(d.out.String(), 2000))
	}
	var alive []int
	for pid := range seen {
		if b.hasToken(pid) {
			alive = append(alive, pid)
		}
	}
	slices.Sort(alive)
	if len(alive) > 0 || len(b.tokenProcs()) > 0 {
		t.Errorf("after shutdown, processes of the run still alive: %v %v", alive, b.tokenProcs())
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
