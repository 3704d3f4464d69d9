package launcher

import (
	"os"
	"syscall"
	"unsafe"
)

// Why: os.Process.Wait blocks an OS thread in waitid(2) for as long as the child
// lives, so a daemon supervising 1,000 programs held 1,000 threads (and their
// stacks: about half the daemon's memory). Instead the launcher opens a pidfd of
// its own for the child and lets Go's netpoller watch it: a pidfd becomes
// readable when the process exits, and only then is it reaped, with WNOHANG.
// An idle child costs a parked goroutine, no thread. The pid cannot be recycled
// before the pidfd is opened: the child is not reaped until this code reaps it.

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

// pidfdOf opens a pollable pidfd for pid, or returns nil (old kernel), in which
// case the caller falls back to os.Process.Wait.
func pidfdOf(pid int) *os.File {
	fd, _, e := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	if e != 0 {
		return nil
	}
	syscall.CloseOnExec(int(fd))
	if syscall.SetNonblock(int(fd), true) != nil {
		syscall.Close(int(fd))
		return nil
	}
	return os.NewFile(fd, "pidfd") // non-blocking: registered with the netpoller
}

// reapPidfd waits in the netpoller until the child behind pidfd exits, reaps it
// and returns its wait status. ok is false when waitid(P_PIDFD) is not supported
// (Linux 5.3), so the caller must wait the ordinary way.
func reapPidfd(pidfd *os.File) (ws syscall.WaitStatus, ok bool) {
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info siginfoChild
	var werr syscall.Errno
	err = rc.Read(func(fd uintptr) bool {
		for {
			info = siginfoChild{}
			_, _, werr = syscall.Syscall6(syscall.SYS_WAITID, pPidfd, fd,
				uintptr(unsafe.Pointer(&info)), syscall.WEXITED|syscall.WNOHANG, 0, 0)
			if werr != syscall.EINTR {
				break
			}
		}
		return werr != 0 || info.Pid != 0 // else not exited yet: wait for readability
	})
	if err != nil || werr != 0 {
		return 0, false
	}
	if info.Code == cldExited {
		return syscall.WaitStatus(info.Status&0xff) << 8, true
	}
	return syscall.WaitStatus(info.Status & 0x7f), true // killed or dumped: the signal
}
