package probe

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/launcher"
	"github.com/starvisor/starvisor/engine/plan"
)

func program(pb plan.Probe) plan.Program {
	if pb.Interval == 0 {
		pb.Interval = plan.Duration(10 * time.Millisecond)
	}
	return plan.Program{Ready: &pb}
}

func TestNoProbeIsReadyAtOnce(t *testing.T) {
	is.New(t).NoErr(New(nil).Ready(t.Context(), plan.Program{}))
}

func TestTCP(t *testing.T) {
	is := is.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	port := ln.Addr().(*net.TCPAddr).Port
	is.NoErr(New(nil).Ready(t.Context(), program(plan.Probe{Kind: plan.ProbeTCP, Port: port})))
	ln.Close()

	err = New(nil).Ready(t.Context(), program(plan.Probe{Kind: plan.ProbeTCP, Port: port, Timeout: plan.Duration(100 * time.Millisecond)}))
	want := "ready probe tcp 127.0.0.1:" + strconv.Itoa(port) + ": timed out after 100ms: "
	is.True(err != nil && strings.HasPrefix(err.Error(), want)) // names the probe, the timeout and the last error
	// The last error: refused, mostly; under load the port may have been taken by
	// another test meanwhile, or the last try cut by the timeout.
	is.True(len(err.Error()) > len(want))
}

// unavailable serves 503 to the first failures requests, then 200; calls counts them.
func unavailable(t *testing.T, failures int32) (srv *httptest.Server, calls *atomic.Int32) {
	calls = new(atomic.Int32)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= failures {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, calls
}

func TestHTTPRetriesUntilStatus(t *testing.T) {
	is := is.New(t)
	srv, calls := unavailable(t, 2)
	is.NoErr(New(nil).Ready(t.Context(), program(plan.Probe{Kind: plan.ProbeHTTP, URL: srv.URL})))
	is.Equal(calls.Load(), int32(3))

	err := New(nil).Ready(t.Context(), program(plan.Probe{Kind: plan.ProbeHTTP, URL: srv.URL, Status: 204, Timeout: plan.Duration(50 * time.Millisecond)}))
	is.True(err != nil && strings.HasSuffix(err.Error(), "status 200, want 204"))
}

// Each failed attempt is told through the context (engine.ProbeAttempts): status shows
// the last while the probe waits out its timeout.
func TestFailedAttemptsAreTold(t *testing.T) {
	is := is.New(t)
	srv, _ := unavailable(t, 2)
	var told []string
	ctx := engine.WithProbeAttempts(t.Context(), func(err error) { told = append(told, err.Error()) })
	is.NoErr(New(nil).Ready(ctx, program(plan.Probe{Kind: plan.ProbeHTTP, URL: srv.URL})))
	is.Equal(told, []string{"status 503, want 200", "status 503, want 200"})
}

// The tries after a failed first one come quickly, whatever the interval: a service
// ready a moment after its spawn is seen ready a moment later, not an interval later.
func TestEarlyRetriesDoNotWaitAnInterval(t *testing.T) {
	is := is.New(t)
	srv, calls := unavailable(t, 3)
	pb := plan.Probe{Kind: plan.ProbeHTTP, URL: srv.URL, Interval: plan.Duration(time.Hour), Timeout: plan.Duration(time.Minute)}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // fails here rather than hang an hour
	defer cancel()
	is.NoErr(New(nil).Ready(ctx, program(pb)))
	is.Equal(calls.Load(), int32(4))
}

func TestExec(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	pr := program(plan.Probe{Kind: plan.ProbeExec, Command: []string{"/bin/sh", "-c", `test "$PWD" = "` + dir + `" && test "$X" = 1`}})
	pr.Directory, pr.Env = dir, map[string]string{"X": "1"}
	is.NoErr(New(nil).Ready(t.Context(), pr))
}

// A probe command still running at the timeout is killed with its group.
func TestExecKilledOnTimeout(t *testing.T) {
	is := is.New(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	pr := program(plan.Probe{Kind: plan.ProbeExec, Timeout: plan.Duration(200 * time.Millisecond),
		Command: []string{"/bin/sh", "-c", "sleep 1000 & echo $! > " + pidFile + "; wait"}})
	err := New(nil).Ready(t.Context(), pr)
	is.True(err != nil && strings.Contains(err.Error(), "timed out after 200ms"))
	waitGone(t, pidFile)
}

// A probe command that exits 0 passes, even when it leaves a child behind holding its
// output; the child dies with the attempt.
func TestExecPassesAndLeavesNothingBehind(t *testing.T) {
	is := is.New(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	pr := program(plan.Probe{Kind: plan.ProbeExec, Timeout: plan.Duration(5 * time.Second),
		Command: []string{"/bin/sh", "-c", "sleep 1000 & echo $! > " + pidFile + "; exit 0"}})
	is.NoErr(New(nil).Ready(t.Context(), pr))
	waitGone(t, pidFile)
}

// A probe command's child that left its process group (setsid) dies with the attempt
// too: with cgroups (as root) and without.
func TestExecLeavesNoEscapedChild(t *testing.T) {
	launchers := map[string]engine.Launcher{"process groups": launcher.NewProcessGroups(), "default": nil}
	for name, l := range launchers {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			pidFile := filepath.Join(t.TempDir(), "pid")
			pr := program(plan.Probe{Kind: plan.ProbeExec, Timeout: plan.Duration(5 * time.Second),
				Command: []string{"/bin/sh", "-c", `setsid sh -c 'echo $$ > ` + pidFile + `.new && mv ` + pidFile + `.new ` + pidFile + `; exec sleep 1000' &
					while [ ! -s ` + pidFile + ` ]; do :; done; exit 0`}})
			is.NoErr(New(l).Ready(t.Context(), pr))
			waitGone(t, pidFile)
		})
	}
}

// The command's failure names its exit status and its last line of output.
func TestExecFailureSaysWhy(t *testing.T) {
	is := is.New(t)
	pr := program(plan.Probe{Kind: plan.ProbeExec, Timeout: plan.Duration(100 * time.Millisecond),
		Command: []string{"/bin/sh", "-c", "echo starting; echo not yet >&2; exit 3"}})
	err := New(nil).Ready(t.Context(), pr)
	is.True(err != nil && strings.HasSuffix(err.Error(), ": exit status 3: not yet"))
	pr.Ready.Command = []string{"/bin/sh", "-c", "kill -TERM $$"}
	err = New(nil).Ready(t.Context(), pr)
	is.True(err != nil && strings.HasSuffix(err.Error(), ": signal: terminated"))
}

// waitGone reads the pid in pidFile and polls until that process is gone (a test
// failure after 5 s); it is killed when the test ends either way.
func waitGone(t *testing.T, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("sleep %d survived the probe", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// A log probe counts only what is written after Prepare (the engine calls it just
// before the spawn): an earlier run's ready line still in the file does not count,
// the new run's does, even if written before the first attempt.
func TestLogIgnoresLinesOfEarlierRuns(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "app.log")
	is.NoErr(os.WriteFile(path, []byte("starting\nlistening on 8080\nstopped\n"), 0o644))
	pr := program(plan.Probe{Kind: plan.ProbeLog, Pattern: `listening on \d+`, Timeout: plan.Duration(50 * time.Millisecond)})
	pr.Stdout = &plan.Log{Path: path}
	err := New(nil).(*Prober).Prepare(pr)(t.Context())
	is.True(err != nil && strings.Contains(err.Error(), "timed out")) // the old line did not count

	wait := New(nil).(*Prober).Prepare(pr)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	is.NoErr(err)
	_, err = f.WriteString("starting\nlistening on 8081\n") // the new run, before the first attempt
	is.NoErr(err)
	f.Close()
	is.NoErr(wait(t.Context()))
}

// The follower finishes a file rotated away under it, then reads the new one.
func TestLogFollowsAcrossRotation(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "app.log")
	is.NoErr(os.WriteFile(path, []byte("starting\nhalf a li"), 0o644))
	pr := program(plan.Probe{Kind: plan.ProbeLog, Pattern: `^ready$`})
	pr.Stdout = &plan.Log{Path: path}
	fl, _, err := logCheck(pr)
	is.NoErr(err)
	defer fl.close()
	is.True(fl.check(t.Context()) != nil)
	old, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	is.NoErr(err)
	is.NoErr(os.Rename(path, path+".1"))
	old.WriteString("ne\nready?\n") // the old file's end, written before the rotation
	old.Close()
	is.NoErr(os.WriteFile(path, []byte("new file\nready\n"), 0o644))
	is.NoErr(fl.check(t.Context())) // found in the new file ("ready?" does not match)
}

// A ready line longer than what is kept of an unfinished line (a "READY" that goes on
// to dump its config as JSON, not finished yet) passes: its head was dropped before it
// was tested, and the probe waited in vain.
func TestLogMatchesTheHeadOfALongLine(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "app.log")
	is.NoErr(os.WriteFile(path, nil, 0o644))
	pr := program(plan.Probe{Kind: plan.ProbeLog, Pattern: `^READY `})
	pr.Stdout = &plan.Log{Path: path}
	fl, _, err := logCheck(pr)
	is.NoErr(err)
	defer fl.close()
	is.NoErr(os.WriteFile(path, []byte("READY "+strings.Repeat("x", maxLine+1000)), 0o644))
	is.NoErr(fl.check(t.Context()))
}

// A log probe reads the stderr log too (Python's logging writes there), and matches
// lines as the program wrote them, without the time stamp of a log with timestamps.
func TestLogReadsStderrAndIgnoresStamps(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	pr := program(plan.Probe{Kind: plan.ProbeLog, Pattern: `^ready$`})
	pr.Stdout = &plan.Log{Path: filepath.Join(dir, "out.log"), Timestamps: true}
	pr.Stderr = &plan.Log{Path: filepath.Join(dir, "err.log")}
	for _, tc := range []struct{ file, text string }{
		{"out.log", "2026-11-26T07:43:11.877Z ready\n"},
		{"err.log", "INFO\nready\n"},
		{"err.log", "2026-11-26T08:43:11.877+01:00 ready\n"}, // stamps turned on meanwhile
	} {
		fl, _, err := logCheck(pr)
		is.NoErr(err)
		is.True(fl.check(t.Context()) != nil)
		is.NoErr(os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.text), 0o644))
		is.NoErr(fl.check(t.Context())) // the line in tc.file matched
		fl.close()
		is.NoErr(os.Remove(filepath.Join(dir, tc.file)))
	}
}

func TestContextEndStopsWaiting(t *testing.T) {
	is := is.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := New(nil).Ready(ctx, program(plan.Probe{Kind: plan.ProbeTCP, Port: 1}))
	is.True(errors.Is(err, context.Canceled))
}

// A log probe on a program whose stdout is not a file (/dev/stdout) fails with why; it
// does not read the daemon's terminal.
func TestLogProbeNeedsALogFile(t *testing.T) {
	is := is.New(t)
	pr := program(plan.Probe{Kind: plan.ProbeLog, Pattern: `x`, Timeout: plan.Duration(time.Second)})
	pr.Stdout = &plan.Log{Path: "/dev/null"}
	err := New(nil).Ready(t.Context(), pr)
	is.True(err != nil && strings.Contains(err.Error(), "stdout goes to /dev/null, not a log file"))
}

// An exec probe runs as its program would: without the daemon's environment when the
// program does not inherit it, and as the program's user.
func TestExecProbeRunsAsTheProgram(t *testing.T) {
	is := is.New(t)
	t.Setenv("STARVISOR_PROBE_DAEMON_ONLY", "1")
	check := func(pr plan.Program) error {
		pr.Ready.Timeout = plan.Duration(time.Second) // plenty for a passing sh
		return New(nil).Ready(t.Context(), pr)
	}
	unset := program(plan.Probe{Kind: plan.ProbeExec, Command: []string{"/bin/sh", "-c", `test -z "$STARVISOR_PROBE_DAEMON_ONLY" && test "$OWN" = x`}})
	unset.Env = map[string]string{"OWN": "x"}
	unset.InheritEnv = false
	is.NoErr(check(unset))
	unset.InheritEnv = true
	is.True(check(unset) != nil) // inherited: the daemon's variable is there

	if os.Geteuid() != 0 {
		t.Skip("switching user needs root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	as := program(plan.Probe{Kind: plan.ProbeExec, Command: []string{"/bin/sh", "-c", `test "$(id -u)" = ` + u.Uid}})
	as.User = "nobody"
	is.NoErr(check(as))
}

// An exec probe's command carries the daemon's STARVISOR_DAEMON, as programs do: the next
// daemon finds by it an attempt a killed daemon left running.
func TestExecProbeCarriesTheDaemon(t *testing.T) {
	is := is.New(t)
	pr := program(plan.Probe{Kind: plan.ProbeExec, Timeout: plan.Duration(time.Second),
		Command: []string{"/bin/sh", "-c", `test "$STARVISOR_DAEMON" = 123.456`}})
	is.NoErr((&Prober{Daemon: "123.456"}).Ready(t.Context(), pr))
}

// Before the spawn, a tcp or http probe whose address already answers fails at once:
// another process listens there and would pass it while the program fails to bind. A
// probe of a program already running (Ready: a probe changed by an apply) is not that.
func TestPrepareFailsWhenTheAddressAnswersBeforeTheSpawn(t *testing.T) {
	is := is.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	for _, pb := range []plan.Probe{{Kind: plan.ProbeTCP, Port: ln.Addr().(*net.TCPAddr).Port}, {Kind: plan.ProbeHTTP, URL: "http://127.0.0.1:" + port + "/health"}} {
		pr := program(pb)
		pr.ProcessName = "api"
		err := (&Prober{}).Prepare(pr)(t.Context())
		is.True(err != nil && strings.HasSuffix(err.Error(), ": 127.0.0.1:"+port+" answered before api started: another process listens there")) // got err
	}
	is.NoErr(New(nil).Ready(t.Context(), program(plan.Probe{Kind: plan.ProbeTCP, Port: ln.Addr().(*net.TCPAddr).Port})))
}

// A password in a probe's URL is not in its failure's words: they go into status and
// the daemon's log, which others may read.
func TestHTTPProbeHidesAPassword(t *testing.T) {
	is := is.New(t)
	srv, _ := unavailable(t, 100)
	u := strings.Replace(srv.URL, "http://", "http://admin:hunter2@", 1)
	err := New(nil).Ready(t.Context(), program(plan.Probe{Kind: plan.ProbeHTTP, URL: u, Timeout: plan.Duration(50 * time.Millisecond)}))
	is.True(err != nil)
	is.True(!strings.Contains(err.Error(), "hunter2")) // err
	is.True(strings.Contains(err.Error(), "admin:xxxxx@"))
}

// A program that inherits no environment and sets no PATH gets the daemon's, and so
// does its exec probe, "as its program would": the probe found nothing by name.
func TestExecProbeGetsThePathOfItsProgram(t *testing.T) {
	is := is.New(t)
	bin := t.TempDir()
	is.NoErr(os.WriteFile(filepath.Join(bin, "mytool"), []byte("#!/bin/sh\nexit 0\n"), 0o755))
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	pr := program(plan.Probe{Kind: plan.ProbeExec, Timeout: plan.Duration(5 * time.Second), Command: []string{"/bin/sh", "-c", "mytool"}})
	pr.InheritEnv = false
	is.NoErr(New(nil).Ready(t.Context(), pr))
}
