// Package reliability_test runs the real starvisor binary through failures: a daemon
// killed with SIGKILL, children killed mid-write, a burst of random child kills, a log
// folder full or read-only (root). Every test keeps to a few seconds; the package stays
// under a minute. STARVISOR_SOAK=1 (`just soak`) runs the long sizes.
package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine/api"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// starvisor builds ./cmd/starvisor once per test binary.
func starvisor(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			binErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		if binDir, binErr = os.MkdirTemp("", "svbin"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "starvisor")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/starvisor")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// bundle is a deploy folder under a short temporary path (the socket lives in it). Its
// path doubles as the token every child carries in its environment (SV_TOKEN), which is
// how cleanup and the checks below tell this run's processes from any other.
type bundle struct {
	dir    string
	socket string
	state  string
}

func newBundle(t *testing.T, script string) *bundle {
	t.Helper()
	dir, err := os.MkdirTemp("", "svr")
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{dir: dir, socket: filepath.Join(dir, "s.sock"), state: filepath.Join(dir, "state", "state.json")}
	if err := os.WriteFile(filepath.Join(dir, "deploy.star"), []byte(b.head()+script), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.killAll()
		os.RemoveAll(dir)
	})
	return b
}

// head is what newBundle puts before the test's script: the supervisor() settings and
// TOKEN, the environment that marks this run's processes.
func (b *bundle) head() string {
	return fmt.Sprintf("supervisor(socket = %q, state_dir = %q, log_dir = %q)\nTOKEN = {\"SV_TOKEN\": %q}\n",
		b.socket, filepath.Dir(b.state), filepath.Join(b.dir, "log"), b.dir)
}

// token processes are the live processes whose environment holds this bundle's token.
func (b *bundle) tokenProcs() []int {
	want := []byte("SV_TOKEN=" + b.dir + "\x00")
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		if st, ok := procState(pid); ok && st != 'Z' && st != 'X' {
			out = append(out, pid)
		}
	}
	return out
}

// byProgram groups the live processes of the run by the SV_PROG=<name> in their
// environment (tests that set it per program).
func (b *bundle) byProgram() map[string][]int {
	out := map[string][]int{}
	for _, pid := range b.tokenProcs() {
		env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if p, ok := bytes.CutPrefix(kv, []byte("SV_PROG=")); ok {
				out[string(p)] = append(out[string(p)], pid)
			}
		}
	}
	return out
}

// killAll SIGKILLs the process group of every process carrying the token.
func (b *bundle) killAll() {
	for _, pid := range b.tokenProcs() {
		syscall.Kill(-pid, syscall.SIGKILL)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// hasToken reports whether pid is a live process of this bundle (not a recycled pid).
func (b *bundle) hasToken(pid int) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil || !bytes.Contains(env, []byte("SV_TOKEN="+b.dir+"\x00")) {
		return false
	}
	st, ok := procState(pid)
	return ok && st != 'Z' && st != 'X'
}

// daemon is one `starvisor up`, in its own process group, killed when the test ends.
type daemon struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
	client *api.Client
}

func (b *bundle) up(t *testing.T) *daemon {
	t.Helper()
	d := &daemon{out: &syncBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(starvisor(t), "up", "-f", filepath.Join(b.dir, "deploy.star"))
	d.cmd.Dir = b.dir
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	})
	d.client = api.NewClient(b.socket)
	return d
}

// wait waits for the daemon to exit and returns its exit code.
func (d *daemon) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("daemon still running after %s; output:\n%s", within, d.out)
		return -1
	}
}

// shutdown asks the daemon to stop everything and exit, and checks it exits 0.
func (d *daemon) shutdown(t *testing.T, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := d.client.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if code := d.wait(t, within); code != 0 {
		t.Errorf("up exited %d after shutdown; output tail:\n%s", code, tail(d.out.String(), 2000))
	}
}

// status returns each process's state and pid; an unreachable daemon gives nil.
func (d *daemon) status() map[string]api.ProgramStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := d.client.Status(ctx)
	if err != nil {
		return nil
	}
	out := map[string]api.ProgramStatus{}
	for _, p := range st.Programs {
		out[p.Name] = p
	}
	return out
}

// allRunning polls until the daemon reports n processes, all RUNNING with a pid.
func (d *daemon) allRunning(t *testing.T, n int, within time.Duration) map[string]api.ProgramStatus {
	t.Helper()
	var st map[string]api.ProgramStatus
	eventually(t, within, fmt.Sprintf("%d processes RUNNING", n), func() bool {
		select {
		case <-d.done:
			t.Fatalf("the daemon exited; output:\n%s", d.out)
		default:
		}
		st = d.status()
		if len(st) != n {
			return false
		}
		for _, p := range st {
			if p.State != "RUNNING" || p.Pid <= 0 {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("status %v\ndaemon output:\n%s", st, d.out) })
	return st
}

// eventually polls cond every 10ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool, explain func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			if explain != nil {
				msg = "\n" + explain()
			}
			t.Fatalf("timed out after %s waiting for %s%s", within, what, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procState is the state letter of /proc/PID/stat (R, S, Z, ...).
func procState(pid int) (byte, bool) {
	st, ok := readStat(pid)
	return st.state, ok
}

type stat struct {
	state byte
	ppid  int
}

func readStat(pid int) (stat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return stat{}, false
	}
	ppid, _ := strconv.Atoi(string(f[1]))
	return stat{state: f[0][0], ppid: ppid}, true
}

// children returns the processes whose parent is pid, with their states.
func children(pid int) map[int]byte {
	out := map[int]byte{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(c); ok && st.ppid == pid {
			out[c] = st.state
		}
	}
	return out
}

// fdCount is the number of open descriptors of pid.
func fdCount(pid int) int {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// fdKinds summarises /proc/PID/fd by target kind, for failure messages.
func fdKinds(pid int) string {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, _ := os.ReadDir(dir)
	kinds := map[string]int{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if i := strings.IndexByte(l, ':'); i > 0 && !strings.HasPrefix(l, "/") {
			l = l[:i]
		}
		kinds[l]++
	}
	return fmt.Sprint(kinds)
}

// readLines returns the lines of the files in order (oldest first), and whether the last
// file ended with a newline.
func readLines(t *testing.T, files ...string) []string {
	t.Helper()
	var lines []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

// syncBuffer is a bytes.Buffer safe for the daemon's output goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
