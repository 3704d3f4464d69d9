package launcher

import (
	"os"
	"runtime"
	"sync"
	"syscall"
)

// Why: Go cannot set a umask for one child only, and umask(2) is per process
// (Go's threads share it through CLONE_FS). So the fork happens on a thread that
// has been given a private fs context with unshare(CLONE_FS): its umask reaches
// the child and nothing else in the daemon (log and state files keep their modes),
// and starts run in parallel. The goroutine exits still locked to that thread, so
// the runtime discards the thread rather than reuse it. Pdeathsig must stay unset:
// it would fire when that thread exits.
//
// If unshare is refused (some seccomp profiles), fall back to swapping the
// process umask under a mutex for the few hundred microseconds of the fork: other
// goroutines creating files in that window would get the child's umask.

var umaskMu sync.Mutex

func startProcess(path string, argv []string, attr *os.ProcAttr, umask int) (*os.Process, error) {
	if umask < 0 {
		return os.StartProcess(path, argv, attr)
	}
	type result struct {
		proc *os.Process
		err  error
		ok   bool // the private umask was in effect
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, on purpose
		if syscall.Unshare(syscall.CLONE_FS) != nil {
			ch <- result{}
			return
		}
		syscall.Umask(umask)
		p, err := os.StartProcess(path, argv, attr)
		ch <- result{p, err, true}
	}()
	if r := <-ch; r.ok {
		return r.proc, r.err
	}
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := syscall.Umask(umask)
	defer syscall.Umask(old)
	return os.StartProcess(path, argv, attr)
}
