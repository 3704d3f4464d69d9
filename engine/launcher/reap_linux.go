package launcher

import (
	"os"
	"syscall"
	"unsafe"
)

// Why: os.Process.Wait blocks an OS thread in waitid(2) for as long as the child
// lives, so a daemon supervising 1,000 programs held 1,000 threads (and their
// stacks: about half the daemon's memory). Instead the launcher opens a pidfd of
// its own for the child and hands it to the epoll waiter the log pipes use
// (logs.OnReadable): a pidfd becomes readable when the process exits, and only then
// is it reaped, with WNOHANG, on a goroutine started for that. A running child costs
// an epoll entry: no thread, no goroutine. The pid cannot be recycled before the
// pidfd is opened: the child is not reaped until this code reaps it.

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

// pidfdOf opens a pidfd for pid, or returns nil (old kernel), in which case the
// caller falls back to os.Process.Wait. It stays in blocking mode, out of Go's
// netpoller: the waiter's epoll set watches it.
func pidfdOf(pid int) *os.File {
	fd, _, e := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	if e != 0 {
		return nil
	}
	syscall.CloseOnExec(int(fd))
	return os.NewFile(fd, "pidfd")
}

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
