package launcher

import (
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

// startProcess forks and execs path with the given umask (-1: the daemon's). It
// returns the child's pid and, where the kernel has them, its pidfd made by the
// clone (else -1).
func startProcess(path string, argv []string, attr *syscall.ProcAttr, umask int) (pid, pidfd int, err error) {
	if umask < 0 {
		return forkExec(path, argv, attr)
	}
	type result struct {
		pid, pidfd int
		err        error
		ok         bool // the private umask was in effect
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, on purpose
		if syscall.Unshare(syscall.CLONE_FS) != nil {
			ch <- result{}
			return
		}
		syscall.Umask(umask)
		pid, pidfd, err := forkExec(path, argv, attr)
		ch <- result{pid, pidfd, err, true}
	}()
	if r := <-ch; r.ok {
		return r.pid, r.pidfd, r.err
	}
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := syscall.Umask(umask)
	defer syscall.Umask(old)
	return forkExec(path, argv, attr)
}

// forkExec is syscall.StartProcess asking the clone for a pidfd where there are any.
func forkExec(path string, argv []string, attr *syscall.ProcAttr) (pid, pidfd int, err error) {
	pidfd = -1
	sys := *attr.Sys // a copy: a retry or another thread may share attr
	if havePidfd() {
		sys.PidFD = &pidfd
	}
	a := *attr
	a.Sys = &sys
	pid, _, err = syscall.StartProcess(path, argv, &a)
	return pid, pidfd, err
}
