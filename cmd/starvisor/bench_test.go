package main

// Daemon benchmarks: the real binary, run as `starvisor up` in its own process group,
// driven through its control socket. Each reports its figures with b.ReportMetric;
// ns/op is meaningless here. Run them with:
//
//	go test ./cmd/starvisor -run '^$' -bench . -benchtime 1x

import (
	"bufio"
	"context"
	"fmt"
	"io"
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

var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds starvisor once per test binary run.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "svbin")
	if err != nil {
		return "", err
	}
	binDir = dir
	exe := filepath.Join(dir, "starvisor")
	build := exec.Command("go", "build", "-o", exe, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // as released: static, see README "Install"
	out, err := build.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return exe, nil
})

// daemon is one `starvisor up` under test.
type daemon struct {
	cmd    *exec.Cmd
	pid    int
	client *api.Client
	start  time.Time // just before exec

	mu      sync.Mutex
	lines   []string    // stdout, as received
	arrived []time.Time // when each line was read
	grew    chan struct{}
	eof     chan struct{} // stdout ended: the daemon is exiting
}

// sleepers declares n programs running `sleep 3600`, logging to files as by default.
func sleepers(n int) string {
	return fmt.Sprintf(`
for i in range(%d):
    program(name = "s" + str(i), command = ["sleep", "3600"], start_secs = 0, stop_timeout = "5s")
`, n)
}

// startDaemon writes deploy.star (with a short socket path) and runs `starvisor up`.
func startDaemon(b *testing.B, programs string) *daemon {
	b.Helper()
	dir, err := os.MkdirTemp("", "sv")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s.sock")
	script := fmt.Sprintf("supervisor(socket = %q, log_dir = \"log\", state_dir = \"run\")\n", sock) + programs
	if err := os.WriteFile(filepath.Join(dir, "deploy.star"), []byte(script), 0o644); err != nil {
		b.Fatal(err)
	}
	return runDaemon(b, dir)
}

// again runs `starvisor up` once more on the same bundle (d has exited).
func (d *daemon) again(b *testing.B) *daemon { return runDaemon(b, d.cmd.Dir) }

func runDaemon(b *testing.B, dir string) *daemon {
	b.Helper()
	exe, err := binary()
	if err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	d := &daemon{client: api.NewClient(sock), grew: make(chan struct{}), eof: make(chan struct{})}
	d.cmd = exec.Command(exe, "up", "-f", filepath.Join(dir, "deploy.star"))
	d.cmd.Dir = dir
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	d.cmd.Stderr = os.Stderr
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	d.start = time.Now()
	if err := d.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	d.pid = d.cmd.Process.Pid
	b.Cleanup(d.kill)
	go d.read(out)
	return d
}

func (d *daemon) read(r io.Reader) {
	defer close(d.eof)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		now := time.Now()
		d.mu.Lock()
		d.lines = append(d.lines, sc.Text())
		d.arrived = append(d.arrived, now)
		close(d.grew)
		d.grew = make(chan struct{})
		d.mu.Unlock()
	}
}

// kill ends the daemon and every child it left: it freezes the daemon so it restarts
// nothing, kills its children's process groups, then the daemon's group.
func (d *daemon) kill() {
	if d.cmd.ProcessState != nil {
		return // exited and reaped
	}
	syscall.Kill(d.pid, syscall.SIGSTOP)
	for _, pid := range childrenOf(d.pid) {
		syscall.Kill(-pid, syscall.SIGKILL)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	syscall.Kill(-d.pid, syscall.SIGKILL)
	d.cmd.Wait()
}

// childrenOf lists the pids whose parent is ppid.
func childrenOf(ppid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(pid); len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

// statFields returns /proc/PID/stat's fields after the command name: state, ppid, ...
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

// cpu is the daemon's user+system time (clock ticks of 10 ms).
func (d *daemon) cpu(b *testing.B) time.Duration {
	f := statFields(d.pid)
	if len(f) < 13 {
		b.Fatalf("bad /proc/%d/stat", d.pid)
	}
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// status reads a field of /proc/PID/status in kB (VmRSS, VmHWM) or as a count (Threads).
func (d *daemon) status(b *testing.B, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			n, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return n
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, d.pid)
	return 0
}

// waitLines waits until n stdout lines contain sub and returns when the n-th arrived.
func (d *daemon) waitLines(b *testing.B, sub string, n int, timeout time.Duration) time.Time {
	b.Helper()
	deadline := time.After(timeout)
	for {
		d.mu.Lock()
		seen := 0
		var at time.Time
		for i, l := range d.lines {
			if strings.Contains(l, sub) {
				if seen++; seen == n {
					at = d.arrived[i]
					break
				}
			}
		}
		grew := d.grew
		d.mu.Unlock()
		if !at.IsZero() {
			return at
		}
		select {
		case <-grew:
		case <-d.eof:
			b.Fatalf("daemon exited; saw %d of %d lines with %q", seen, n, sub)
		case <-deadline:
			b.Fatalf("saw %d of %d lines with %q", seen, n, sub)
		}
	}
}

// eventSpan is the time between the first line containing from and the n-th
// containing to, by the timestamps the daemon put in them.
func (d *daemon) eventSpan(b *testing.B, from, to string, n int) time.Duration {
	b.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	var start, end time.Time
	seen := 0
	for _, l := range d.lines {
		stamp, _, _ := strings.Cut(l, " ")
		t, err := time.ParseInLocation("2006-01-02T15:04:05.000", stamp, time.Local)
		if err != nil {
			continue
		}
		if start.IsZero() && strings.Contains(l, from) {
			start = t
		}
		if strings.Contains(l, to) {
			if seen++; seen == n {
				end = t
				break
			}
		}
	}
	if start.IsZero() || end.IsZero() {
		b.Fatalf("no %q line or fewer than %d %q lines", from, n, to)
	}
	return end.Sub(start)
}

// waitAll polls the control API until every process is in state.
func (d *daemon) waitAll(b *testing.B, n int, state string, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := d.client.Status(ctx)
		cancel()
		if err == nil && len(st.Programs) == n && !slices.ContainsFunc(st.Programs, func(p api.ProgramStatus) bool {
			return p.State != state
		}) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("not all %d processes %s after %v (err %v)", n, state, timeout, err)
		}
		time.Sleep(5 * time.Millisecond) // polling a daemon, not a test sleep: no event to wait on
	}
}

func benchRSS(b *testing.B, n int) {
	for b.Loop() {
		d := startDaemon(b, sleepers(n))
		d.waitLines(b, "-> RUNNING", n, 60*time.Second)
		time.Sleep(2 * time.Second) // past start-up: log files open, first GC cycles done
		b.ReportMetric(d.status(b, "VmRSS")/1024, "MiB-rss")
		b.ReportMetric(d.status(b, "RssAnon")/1024, "MiB-anon") // heap, stacks, runtime
		b.ReportMetric(d.status(b, "RssFile")/1024, "MiB-file") // the binary's pages in use
		b.ReportMetric(d.status(b, "Threads"), "threads")
		// One status call: it samples every process (monitor) and encodes the answer.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t0 := time.Now()
		if _, err := d.client.Status(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		b.ReportMetric(time.Since(t0).Seconds()*1000, "ms-first-status")
		time.Sleep(time.Second)
		b.ReportMetric(d.status(b, "VmRSS")/1024, "MiB-rss-after-status")
		b.ReportMetric(d.status(b, "VmHWM")/1024, "MiB-peak")
		d.shutdown(b)
	}
}

// BenchmarkRSS200: the daemon's resident memory supervising 200 sleeps (target < 15 MiB).
func BenchmarkRSS200(b *testing.B) { benchRSS(b, 200) }

// BenchmarkRSS1000: the same with 1,000 (target < 40 MB).
func BenchmarkRSS1000(b *testing.B) { benchRSS(b, 1000) }

// BenchmarkIdleCPU200: daemon CPU over 5 s with 200 idle programs (target: none measurable).
func BenchmarkIdleCPU200(b *testing.B) {
	for b.Loop() {
		d := startDaemon(b, sleepers(200))
		d.waitLines(b, "-> RUNNING", 200, 60*time.Second)
		time.Sleep(2 * time.Second) // past start-up, whose code pages are given back a second after its last event
		before := d.cpu(b)
		time.Sleep(5 * time.Second)
		b.ReportMetric((d.cpu(b) - before).Seconds(), "cpu-s/5s")
		d.shutdown(b)
	}
}

// BenchmarkChattyCPU: the daemon's CPU while two programs each write a short line ten
// times a second (services logging a little, now and then): each wake-up woke an idle
// processor of Go's scheduler to spin for work, before the settled daemon ran on one
// (2.2 % of a core for one such program; at hundreds of wake-ups a second the
// processors seldom idle, and the two cost alike).
func BenchmarkChattyCPU(b *testing.B) {
	for b.Loop() {
		d := startDaemon(b, `
for i in range(2):
    program(name = "c" + str(i), start_secs = 0, stop_timeout = "5s",
            command = ["sh", "-c", "while :; do echo line; sleep 0.1; done"])
`)
		d.waitLines(b, "-> RUNNING", 2, 60*time.Second)
		time.Sleep(2 * time.Second) // past start-up: settled
		before := d.cpu(b)
		time.Sleep(5 * time.Second)
		b.ReportMetric((d.cpu(b) - before).Seconds(), "cpu-s/5s")
		d.shutdown(b)
	}
}

// BenchmarkStart200: exec of `starvisor up` to the 200th RUNNING line (target < 0.2 s).
// "fresh" creates the 400 log files (this VM's ext4 takes ~0.85 ms per file
// creation); "warm" is a second `up` of the same bundle, whose log files exist.
func BenchmarkStart200(b *testing.B) {
	for _, warm := range []bool{false, true} {
		b.Run(map[bool]string{false: "fresh", true: "warm"}[warm], func(b *testing.B) {
			for b.Loop() {
				d := startDaemon(b, sleepers(200))
				if warm {
					d.waitLines(b, "-> RUNNING", 200, 60*time.Second)
					d.shutdown(b)
					d = d.again(b)
				}
				at := d.waitLines(b, "-> RUNNING", 200, 60*time.Second)
				b.ReportMetric(at.Sub(d.start).Seconds(), "s-to-running")
				first := d.waitLines(b, "-> STARTING", 1, time.Second)
				b.ReportMetric(at.Sub(first).Seconds(), "s-first-start-to-all-running")
				// The same by the daemon's own clock: the times its lines carry (ms).
				b.ReportMetric(d.eventSpan(b, "STOPPED -> STARTING", "-> RUNNING", 200).Seconds(), "s-events-first-start-to-all-running")
				d.shutdown(b)
			}
		})
	}
}

// BenchmarkStopAll200: `stop all` (target < 70 ms), then `start all`, then a shutdown
// of 200 running programs (target < 0.5 s).
func BenchmarkStopAll200(b *testing.B) {
	for b.Loop() {
		d := startDaemon(b, sleepers(200))
		d.waitLines(b, "-> RUNNING", 200, 60*time.Second)
		ctx := context.Background()
		t0 := time.Now()
		if _, err := d.client.Action(ctx, "stop", []string{"all"}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(t0).Seconds()*1000, "ms-stop-all")
		t0 = time.Now()
		if _, err := d.client.Action(ctx, "start", []string{"all"}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(t0).Seconds()*1000, "ms-start-all")
		t0 = time.Now()
		if err := d.client.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(t0).Seconds()*1000, "ms-shutdown")
		if err := d.cmd.Wait(); err != nil {
			b.Fatalf("daemon: %v", err)
		}
		b.ReportMetric(time.Since(t0).Seconds()*1000, "ms-shutdown-to-exit")
	}
}

// shutdown asks the daemon to stop everything and waits for it to exit.
func (d *daemon) shutdown(b *testing.B) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.client.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
	if err := d.cmd.Wait(); err != nil {
		b.Fatalf("daemon: %v", err)
	}
}
