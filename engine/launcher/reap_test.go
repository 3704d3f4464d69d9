package launcher

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
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
	if pidfdOf(os.Getpid()) == nil {
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
