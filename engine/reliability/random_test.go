package reliability_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine/api"
)

// randomPrograms are the programs of TestRandomOperationsRealProcesses: one plain, one
// with a grandchild (stopped as a group), one that ignores SIGTERM (SIGKILL after 1 s),
// one that crashes every 0.3 s, one that depends on the plain one. Each child carries
// SV_PROG=<name> so its processes (grandchildren too) can be told apart.
const randomPrograms = `
def prog(name, command, **kw):
    program(name = name, command = command, env = TOKEN | {"SV_PROG": name, "V": VERSIONS[name]},
            start_secs = 0, stop_timeout = "1s", stdout = log("log/%s.log" % name, max_bytes = "10KB", backups = 1), **kw)

prog("plain", ["/bin/sleep", "100000"])
prog("tree", ["/bin/sh", "-c", "/bin/sleep 100000 & exec /bin/sleep 100001"], stop_as_group = True, kill_as_group = True)
prog("stubborn", ["/bin/sh", "-c", "trap '' TERM; while :; do /bin/sleep 1; done"], kill_as_group = True)
prog("crashy", ["/bin/sh", "-c", "/bin/sleep 0.3; exit 3"], autorestart = True, start_retries = -1)
prog("dependent", ["/bin/sleep", "100000"], depends_on = ["plain"])
`

// TestRandomOperationsRealProcesses: random start, stop, restart, reload with changed
// programs (starvisor apply, or SIGHUP to up), SIGKILLs of children and two clients at
// once, through the CLI, against real processes. After each, within a few seconds: a program that status shows STOPPED,
// EXITED, FATAL or BACKOFF has no process alive (grandchildren included), a RUNNING one
// has its pid alive and no second copy of itself; after shutdown nothing is left. 12
// operations in go test ./..., 200 with STARVISOR_SOAK=1.
func TestRandomOperationsRealProcesses(t *testing.T) {
	ops := 12
	if os.Getenv("STARVISOR_SOAK") == "1" {
		ops = 200
	}
	seed := uint64(time.Now().UnixNano()) // a new sequence each run; failures print it
	rng := rand.New(rand.NewPCG(seed, 3))
	names := []string{"plain", "tree", "stubborn", "crashy", "dependent"}
	versions := map[string]int{}
	script := func() string {
		var v []string
		for _, n := range names {
			v = append(v, fmt.Sprintf("%q: %q", n, strconv.Itoa(versions[n])))
		}
		return "VERSIONS = {" + strings.Join(v, ", ") + "}\n" + randomPrograms
	}
	b := newBundle(t, script())
	d := b.up(t)
	eventually(t, 30*time.Second, "plain RUNNING", func() bool { return d.status()["plain"].State == "RUNNING" },
		func() string { return tail(d.out.String(), 3000) })
	sv := starvisor(t)
	cli := func(args ...string) {
		cmd := exec.Command(sv, args...)
		cmd.Dir = b.dir
		cmd.Env = append(os.Environ(), "STARVISOR_SOCKET="+b.socket)
		cmd.Run() // an action may fail (not running, already started): the state is what counts
	}
	var log []string
	reloads := 0 // SIGHUP reloads done
	for i := range ops {
		ns := slices.Clone(names)
		rng.Shuffle(len(ns), func(a, b int) { ns[a], ns[b] = ns[b], ns[a] })
		ns = ns[:1+rng.IntN(2)]
		var op string
		switch rng.IntN(7) {
		case 0:
			op = "start " + strings.Join(ns, " ")
			cli(append([]string{"start"}, ns...)...)
		case 1:
			op = "stop " + strings.Join(ns, " ")
			cli(append([]string{"stop"}, ns...)...)
		case 2:
			op = "restart " + strings.Join(ns, " ")
			cli(append([]string{"restart"}, ns...)...)
		case 3:
			for _, n := range ns {
				versions[n]++
			}
			op = "apply, changed " + strings.Join(ns, " ")
			if err := os.WriteFile(filepath.Join(b.dir, "deploy.star"), []byte(b.head()+script()), 0o644); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(2) == 0 {
				cli("apply", "-f", filepath.Join(b.dir, "deploy.star"))
			} else {
				op += " (SIGHUP)"
				syscall.Kill(d.cmd.Process.Pid, syscall.SIGHUP)
				// up prints the reload's summary once it is applied
				eventually(t, 10*time.Second, "the reload's summary", func() bool {
					return strings.Count(d.out.String(), "starvisor: reload:") > reloads
				}, func() string { return tail(d.out.String(), 3000) })
				reloads++
			}
		case 4:
			st := d.status()
			op = "SIGKILL " + strings.Join(ns, " ")
			for _, n := range ns {
				if p := st[n].Pid; p > 0 && b.hasToken(p) {
					syscall.Kill(p, syscall.SIGKILL)
				}
			}
		case 5:
			op = "stop all, start all"
			cli("stop", "all")
			cli("start", "all")
		case 6: // two clients at once on the same programs
			verbs := []string{"start", "stop", "restart"}
			v1, v2 := verbs[rng.IntN(3)], verbs[rng.IntN(3)]
			op = fmt.Sprintf("%s and %s %s at once", v1, v2, strings.Join(ns, " "))
			var wg sync.WaitGroup
			wg.Go(func() { cli(append([]string{v1}, ns...)...) })
			wg.Go(func() { cli(append([]string{v2}, ns...)...) })
			wg.Wait()
		}
		log = append(log, op)
		var why string
		eventually(t, 8*time.Second, fmt.Sprintf("a consistent state after op %d (%s)", i, op), func() bool {
			why = b.inconsistency(d.status(), names)
			return why == ""
		}, func() string {
			return why + fmt.Sprintf("\nseed %d, ops: ", seed) + strings.Join(log, "; ") + "\ndaemon output:\n" + tail(d.out.String(), 3000)
		})
	}
	d.shutdown(t, 30*time.Second)
	if left := b.tokenProcs(); len(left) > 0 {
		t.Errorf("after shutdown, processes of the run alive: %v (ops: %s)", left, strings.Join(log, "; "))
	}
}

// inconsistency says how status and the live processes disagree, or "".
func (b *bundle) inconsistency(st map[string]api.ProgramStatus, names []string) string {
	if st == nil {
		return "no status"
	}
	byProg := b.byProgram()
	for _, n := range names {
		s, alive := st[n], byProg[n]
		switch s.State {
		case "STOPPED", "EXITED", "FATAL", "BACKOFF":
			if len(alive) > 0 {
				return fmt.Sprintf("%s is %s but pids %v are alive", n, s.State, alive)
			}
		case "RUNNING", "STARTING":
			if !slices.Contains(alive, s.Pid) {
				return fmt.Sprintf("%s is %s with pid %d, not alive (alive: %v)", n, s.State, s.Pid, alive)
			}
			if (n == "plain" || n == "dependent") && len(alive) > 1 {
				return fmt.Sprintf("%s runs twice: pids %v", n, alive)
			}
		default:
			return fmt.Sprintf("%s is %s", n, s.State) // STOPPING: not settled yet
		}
	}
	return ""
}
