package conformance

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/starvisor/starvisor/engine/api"
)

// commands are the suite's own verbs.
var commands = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"waitfile": waitFile,
	"signal":   signalPidfile,
	"unwork":   unwork,
	"alive":    alive,
	"reap":     reap,
	"retry":    retry,
	"exits":    exits,
	"daemon":   daemonCleanup,
}

// pollEvery is how often waitfile looks; the deadline, not the tick, bounds the wait.
const pollEvery = 10 * time.Millisecond

// waitFile waits until FILE exists: waitfile FILE [timeout] (default 10s).
func waitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitfile FILE [timeout]")
	}
	timeout := 10 * time.Second
	if len(args) == 2 {
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		timeout = d
	}
	name := ts.MkAbs(args[0])
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(name); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitfile: %s did not appear within %s", args[0], timeout)
		}
		time.Sleep(pollEvery)
	}
}

var signalNames = map[string]syscall.Signal{
	"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "HUP": syscall.SIGHUP,
	"KILL": syscall.SIGKILL, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "QUIT": syscall.SIGQUIT,
	"STOP": syscall.SIGSTOP, "CONT": syscall.SIGCONT,
}

// signalPidfile sends a signal to the pid written in a file: signal SIG PIDFILE.
// testscript's kill knows only INT and KILL, and names background commands, not pids.
func signalPidfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: signal SIG PIDFILE")
	}
	sig, ok := signalNames[strings.TrimPrefix(args[0], "-")]
	if !ok {
		ts.Fatalf("signal: unknown signal %q", args[0])
	}
	pid := readPid(ts, args[1])
	ts.Check(syscall.Kill(pid, sig))
	if sig == syscall.SIGKILL {
		// Dead, its files closed, before the next line: a client right after found the
		// socket still open and the connection cut ("lost the connection"), not "no
		// daemon" (a flaky scenario).
		deadline := time.Now().Add(10 * time.Second)
		for !gone(pid) {
			if time.Now().After(deadline) {
				ts.Fatalf("signal KILL: process %d still alive after 10s", pid)
			}
			time.Sleep(pollEvery)
		}
	}
}

// gone says whether pid has exited: reaped, or a zombie whose other threads are gone
// too. A Go daemon's main thread turns zombie while its other threads still exit, and
// its descriptors (its socket's listener) close only with the last: a client right after
// connected, and lost the connection (a flaky scenario).
func gone(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(stat), ')')
	f := strings.Fields(string(stat[i+1:]))
	if len(f) == 0 || f[0] != "Z" && f[0] != "X" {
		return false
	}
	tasks, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	return err != nil || len(tasks) <= 1
}

// unwork replaces the work directory in FILE with the literal $WORK, so golden files hold
// no machine-specific paths and can still be rewritten by UPDATE_GOLDEN.
func unwork(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: unwork FILE")
	}
	work := ts.Getenv("WORK")
	text := ts.ReadFile(args[0])
	if real, err := filepath.EvalSymlinks(work); err == nil && real != work {
		text = strings.ReplaceAll(text, real, "$WORK")
	}
	text = strings.ReplaceAll(text, work, "$WORK")
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(text), 0o644))
}

func readPid(ts *testscript.TestScript, file string) int {
	pid, err := strconv.Atoi(strings.TrimSpace(ts.ReadFile(file)))
	ts.Check(err)
	return pid
}

// alive checks that the process whose pid is in PIDFILE runs: alive PIDFILE (or ! alive).
// A zombie counts as dead.
func alive(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: [!] alive PIDFILE")
	}
	pid := readPid(ts, args[0])
	live := syscall.Kill(pid, 0) == nil
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if errors.Is(err, fs.ErrNotExist) {
		live = false // reaped between the kill(0) and the read
	}
	if err == nil {
		// After the parenthesised command name: "pid (comm) S ppid pgrp sid tty tpgid
		// flags ...". A zombie is dead; so is a process already exiting (PF_EXITING,
		// 0x4): it runs no more of its code, and the kernel takes it out of its cgroup
		// before it turns zombie, so a stop that waited for an empty cgroup may return
		// in between.
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 6 {
				flags, _ := strconv.ParseUint(f[6], 10, 64)
				if f[0] == "Z" || flags&0x4 != 0 {
					live = false
				}
			}
		}
	}
	if live == neg {
		ts.Fatalf("process %d (%s): alive is %v", pid, args[0], live)
	}
}

// reap kills the process group of the pid in PIDFILE when the script ends, pass or fail,
// for scenarios that orphan a child on purpose: reap PIDFILE.
func reap(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: reap PIDFILE")
	}
	pid := readPid(ts, args[0])
	ts.Defer(func() {
		syscall.Kill(-pid, syscall.SIGKILL) // its own group (the launcher's Setpgid)
		syscall.Kill(pid, syscall.SIGKILL)
	})
}

// retry re-runs a program until it succeeds: retry TIMEOUT PROG ARGS... (PROG as for
// exec). stdout and stderr are those of the last run, for the stdout/stderr checks after.
func retry(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: retry TIMEOUT PROG [ARGS...]")
	}
	timeout, err := time.ParseDuration(args[0])
	ts.Check(err)
	deadline := time.Now().Add(timeout)
	for {
		err := ts.Exec(args[1], args[2:]...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("retry: %s still failing after %s: %v\nstdout:\n%s\nstderr:\n%s",
				strings.Join(args[1:], " "), timeout, err, ts.ReadFile("stdout"), ts.ReadFile("stderr"))
		}
		time.Sleep(pollEvery)
	}
}

// daemonCleanup makes sure a detached daemon is gone when the script ends, pass or fail:
// daemon cleanup SOCKET. A daemon that still answers is asked to shut down (which stops
// its children); one that does not is killed with its process groups, by the pids it
// last reported.
func daemonCleanup(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 || args[0] != "cleanup" {
		ts.Fatalf("usage: daemon cleanup SOCKET [PIDFILE]")
	}
	c := api.NewClient(ts.MkAbs(args[1]))
	work := ts.Getenv("WORK")
	if len(args) == 3 {
		// The daemon by the pid in PIDFILE, once written, should it not answer on SOCKET
		// (a scenario removes its socket): TERM stops its programs, KILL what is left.
		pidfile := ts.MkAbs(args[2])
		ts.Defer(func() {
			b, err := os.ReadFile(pidfile)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || pid <= 0 || gone(pid) {
				return
			}
			syscall.Kill(pid, syscall.SIGTERM)
			for deadline := time.Now().Add(10 * time.Second); !gone(pid) && time.Now().Before(deadline); {
				time.Sleep(pollEvery)
			}
			syscall.Kill(pid, syscall.SIGKILL)
		})
	}
	ts.Defer(func() {
		// A daemon the scenario killed, failing before the next up stopped what it left:
		// those processes carry its identity (STARVISOR_DAEMON), which its lock keeps.
		defer killLeftBy(work)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st, err := c.Status(ctx)
		if _, none := errors.AsType[*api.NoDaemonError](err); none {
			return // not running (the script shut it down)
		}
		if err != nil {
			// There but not answering (a scenario that failed after a SIGSTOP of it):
			// continued and killed by the pid its lock names; its programs, which carry
			// its identity, go with killLeftBy.
			b, _ := os.ReadFile(filepath.Join(filepath.Dir(c.Socket), "daemon.lock"))
			if lines := strings.Split(string(b), "\n"); len(lines) > 1 {
				pid, _ := strconv.Atoi(strings.Split(lines[1], ".")[0])
				if pid > 0 && !gone(pid) {
					syscall.Kill(pid, syscall.SIGCONT)
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return
		}
		daemon, _ := c.Pid(ctx, "")
		if c.Shutdown(ctx) == nil {
			return
		}
		for _, p := range st.Programs {
			if p.Pid > 0 {
				syscall.Kill(-p.Pid, syscall.SIGKILL)
			}
		}
		if daemon > 0 {
			syscall.Kill(daemon, syscall.SIGKILL)
		}
	})
}

// killLeftBy kills the processes whose environment names, as their daemon, one of the
// identities the bundle locks under work keep (a killed daemon's), by process group.
func killLeftBy(work string) {
	var ids []string
	filepath.WalkDir(work, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "daemon.lock" {
			if b, err := os.ReadFile(path); err == nil {
				if lines := strings.Split(string(b), "\n"); len(lines) > 1 && lines[1] != "" {
					ids = append(ids, "STARVISOR_DAEMON="+lines[1])
				}
			}
		}
		return nil
	})
	if len(ids) == 0 {
		return
	}
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, id := range ids {
			if bytes.Contains(append([]byte{0}, env...), []byte("\x00"+id+"\x00")) {
				syscall.Kill(-pid, syscall.SIGKILL)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// exits runs a program and checks its exit code: exits CODE PROG [ARGS...]. stdout and
// stderr are kept for the checks after.
func exits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exits: %s exited %d, want %d\nstderr:\n%s", strings.Join(args[1:], " "), got, want, ts.ReadFile("stderr"))
	}
}
