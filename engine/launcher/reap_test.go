package launcher

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/plan"
)

func threads(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatal("no Threads line")
	return 0
}

// Waiting for a child must not hold a thread: 100 live children, a handful of threads.
func TestIdleChildrenHoldNoThread(t *testing.T) {
	if !havePidfd() {
		t.Skip("no pidfd_open on this kernel: the fallback holds a thread per child")
	}
	before := threads(t)
	var hs []interface{ Pid() int }
	for range 100 {
		h := start(t, shell("exec sleep 60"))
		hs = append(hs, h)
	}
	if n := threads(t); n > before+20 {
		t.Errorf("%d threads with 100 children, %d before", n, before)
	}
	h := hs[0].(interface {
		Pid() int
		Signal(syscall.Signal, bool) error
	})
	if err := h.Signal(syscall.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
}

// The exit status comes through the pidfd path intact: codes and signals.
func TestReapStatus(t *testing.T) {
	for _, tc := range []struct {
		script string
		code   int
		sig    syscall.Signal
	}{
		{"exit 0", 0, 0}, {"exit 3", 3, 0}, {"exit 255", 255, 0},
		{"kill -KILL $$", -1, syscall.SIGKILL}, {"kill -TERM $$", -1, syscall.SIGTERM},
	} {
		h := start(t, shell(tc.script))
		e := wait(t, h)
		if e.Code != tc.code || e.Signal != tc.sig {
			t.Errorf("%s: exit %+v, want code %d signal %v", tc.script, e, tc.code, tc.sig)
		}
		if err := h.Signal(syscall.SIGTERM, false); err != nil {
			t.Errorf("%s: signal after exit: %v", tc.script, err)
		}
	}
}

// Without pidfds (Linux before 5.3) a child is signalled by pid and reaped by wait4:
// the same exits come out, and the child's descriptor table gets no pidfd.
func TestReapWithoutPidfd(t *testing.T) {
	was := havePidfd
	havePidfd = func() bool { return false }
	t.Cleanup(func() { havePidfd = was })
	for _, tc := range []struct {
		script string
		code   int
		sig    syscall.Signal
	}{{"exit 7", 7, 0}, {"exec sleep 60", -1, syscall.SIGTERM}} {
		h := startWith(t, processGroups(), shell(tc.script))
		if hh := h.(*handle); hh.pidfd != -1 {
			t.Fatalf("pidfd %d without pidfds", hh.pidfd)
		}
		if tc.sig != 0 {
			if err := h.Signal(tc.sig, false); err != nil {
				t.Fatal(err)
			}
		}
		if e := wait(t, h); e.Code != tc.code || e.Signal != tc.sig {
			t.Errorf("%s: exit %+v, want code %d signal %v", tc.script, e, tc.code, tc.sig)
		}
		if err := h.Signal(syscall.SIGTERM, false); err != nil {
			t.Errorf("%s: signal after exit: %v", tc.script, err)
		}
	}
}

// One pidfd per child, from the clone: a daemon with many programs copies its whole
// descriptor table at every fork, so none is spent twice.
func TestOnePidfdPerChild(t *testing.T) {
	if !havePidfd() {
		t.Skip("no pidfds on this kernel")
	}
	count := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range ents {
			if target, _ := os.Readlink("/proc/self/fd/" + e.Name()); target == "anon_inode:[pidfd]" {
				n++
			}
		}
		return n
	}
	before := count()
	for range 5 {
		startWith(t, processGroups(), shell("exec sleep 60"))
	}
	if n := count() - before; n != 5 {
		t.Errorf("%d pidfds for 5 children", n)
	}
}

// A running child holds no goroutine: its exit is watched by the epoll waiter the log
// pipes use, its output pumped only while it writes. 20 quiet children leave the
// goroutine count where it was, and each exit is still reported.
func TestRunningChildrenHoldNoGoroutine(t *testing.T) {
	dir := t.TempDir()
	l := processGroups()
	warm := startWith(t, l, shell("exit 0")) // starts the subreaper, orphan reaper and waiter
	wait(t, warm)
	settle := func(limit int) {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > limit {
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutines, want at most %d", runtime.NumGoroutine(), limit)
			}
			time.Sleep(time.Millisecond)
		}
	}
	base := runtime.NumGoroutine()
	var hs []engine.Handle
	for i := range 20 {
		f, err := logs.Open(plan.Log{Path: filepath.Join(dir, strconv.Itoa(i)+".log")})
		if err != nil {
			t.Fatal(err)
		}
		spec := shell("exec sleep 100")
		spec.Stdout, spec.Stderr = f, f
		hs = append(hs, startWith(t, l, spec))
	}
	settle(base)
	for _, h := range hs {
		if err := h.Signal(syscall.SIGTERM, false); err != nil {
			t.Fatal(err)
		}
		if e := wait(t, h); e.Signal != syscall.SIGTERM {
			t.Fatalf("exit %+v, want SIGTERM", e)
		}
	}
}
