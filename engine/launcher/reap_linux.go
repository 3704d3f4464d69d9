package launcher

import (
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Why: os.Process.Wait blocks an OS thread in waitid(2) for as long as the child
// lives, so a daemon supervising 1,000 programs held 1,000 threads (and their
// stacks: about half the daemon's memory). Instead the clone itself gives the
// launcher a pidfd of the child (CLONE_PIDFD), which it hands to the epoll waiter
// the log pipes use (logs.OnReadable): a pidfd becomes readable when the process
// exits, and only then is it reaped, with WNOHANG, on a goroutine started for that.
// A running child costs an epoll entry and one file descriptor: no thread, no
// goroutine. (os.StartProcess keeps a pidfd of its own in its os.Process, so using
// it meant two descriptors per child, and every fork copies the daemon's whole
// descriptor table.)

const (
	sysPidfdOpen = 434 // pidfd_open(2), Linux 5.3
	pPidfd       = 3   // P_PIDFD for waitid(2), Linux 5.4
	cldExited    = 1   // CLD_EXITED: si_status is the exit code; else a signal
)

// siginfoChild is the head of a siginfo_t filled by waitid for a child.
type siginfoChild struct {
	Signo, Errno, Code int32
	_                  int32
	Pid                int32
	UID                uint32
	Status             int32
	_                  [128 - 28]byte
}

// havePidfd reports whether the kernel has pidfds (pidfd_open, Linux 5.3, which
// implies CLONE_PIDFD). Without them a child is reaped by a thread blocked in
// wait4(2) and signalled by pid, which cannot be recycled before that reap.
var havePidfd = sync.OnceValue(func() bool {
	fd, _, e := syscall.Syscall(sysPidfdOpen, uintptr(os.Getpid()), 0, 0)
	if e != 0 {
		return false
	}
	syscall.Close(int(fd))
	return true
})

// reapNow reaps the child behind pidfd if it has exited. exited is false when it has
// not (a spurious wake-up: wait again); ok is false when waitid(P_PIDFD) is not
// supported (Linux 5.3), so the caller must wait the ordinary way.
func reapNow(pidfd int) (ws syscall.WaitStatus, exited, ok bool) {
	var info siginfoChild
	var werr syscall.Errno
	for {
		_, _, werr = syscall.Syscall6(syscall.SYS_WAITID, pPidfd, uintptr(pidfd),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|syscall.WNOHANG, 0, 0)
		if werr != syscall.EINTR {
			break
		}
	}
	switch {
	case werr != 0:
		return 0, false, false
	case info.Pid == 0:
		return 0, false, true
	case info.Code == cldExited:
		return syscall.WaitStatus(info.Status&0xff) << 8, true, true
	}
	return syscall.WaitStatus(info.Status & 0x7f), true, true // killed or dumped: the signal
}
