package logs

import (
	"io"
	"syscall"
	"time"
	"unsafe"
)

const (
	spliceMove     = 0x1 // SPLICE_F_MOVE
	spliceNonblock = 0x2 // SPLICE_F_NONBLOCK: the pipe side never blocks
	maxSplice      = 1 << 20
)

// spliceFrom moves everything the pipe behind sc yields into the file. It
// returns errNoSplice (having moved nothing more) when the kernel refuses.
func (f *File) spliceFrom(sc syscall.Conn) (int64, error) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, errNoSplice
	}
	ok := false
	_ = rc.Control(func(fd uintptr) { ok = f.spliceable(int(fd)) })
	if !ok {
		return 0, errNoSplice
	}
	var total int64
	var end error
	err = rc.Read(func(fd uintptr) bool {
		blocking := isBlocking(int(fd))
		for {
			n, e := f.spliceUntilEmpty(int(fd), blocking)
			total += n
			if e != syscall.EAGAIN {
				end = e
				return true
			}
			if !blocking {
				return false // wait in the poller until the pipe is readable
			}
			readable.wait(int(fd))
		}
	})
	if end == io.EOF {
		return total, nil
	}
	if end != nil {
		return total, end
	}
	return total, err
}

// spliceable reports whether fd, a pipe, can be spliced into the file: timestamps need
// to see the bytes, and a kernel that refused splice once is not asked again.
func (f *File) spliceable(fd int) bool {
	f.mu.Lock()
	ok := !f.stamps && !f.noSplice
	f.mu.Unlock()
	var st syscall.Stat_t
	return ok && syscall.Fstat(fd, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFIFO
}

// spliceUntilEmpty moves what the pipe yields until it is empty (EAGAIN), ends
// (io.EOF) or fails. With coalescing (a blocking pipe, out of Go's netpoller), a small
// chunk is followed by a pause, so a chatty child's next writes find nobody to wake.
func (f *File) spliceUntilEmpty(fd int, coalescing bool) (int64, error) {
	var total int64
	for {
		n, err := f.spliceOnce(fd)
		total += n
		switch err {
		case nil, syscall.EINTR:
			if coalescing && n < coalesceBelow {
				time.Sleep(coalesce)
			}
		default:
			return total, err
		}
	}
}

// spliceOnce moves what the pipe holds, at most up to the next rotation.
// It returns io.EOF at end of input and EAGAIN when the pipe is empty.
func (f *File) spliceOnce(fd int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, ErrClosed
	}
	if f.f == nil {
		// Open only once bytes wait (a silent child costs no file), and so that
		// drainOnce never blocks in read(2) holding mu after a failed open.
		if err := pending(fd); err != nil {
			return 0, err
		}
		if !f.ready() {
			return f.drainOnce(fd)
		}
	}
	room, ok := f.room()
	if !ok {
		if err := pending(fd); err != nil {
			return 0, err
		}
		return f.drainOnce(fd)
	}
	limit := int64(maxSplice)
	if room > 0 && room < limit {
		limit = room
	}
	n, err := syscall.Splice(fd, nil, int(f.f.Fd()), nil, int(limit), spliceMove|spliceNonblock)
	switch {
	case n > 0:
		f.size += n
		f.spliced += n
		f.failing = false
		f.rotateIfFull()
		return n, nil
	case err == nil:
		return 0, io.EOF
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return 0, err
	case err == syscall.EINVAL || err == syscall.ENOSYS:
		f.noSplice = true
		return 0, errNoSplice
	}
	// The file refused the bytes (disk full, I/O error): record it and keep the
	// pipe moving through the buffered path, which retries the file.
	f.fail(err)
	return f.drainOnce(fd)
}

// drainOnce reads one chunk from the pipe and writes it through the normal
// path (which reopens the file or drops the chunk). Called with mu held.
func (f *File) drainOnce(fd int) (int64, error) {
	if f.drainBuf == nil {
		f.drainBuf = make([]byte, 64<<10)
	}
	n, err := syscall.Read(fd, f.drainBuf)
	if n > 0 {
		f.write(f.drainBuf[:n])
		return int64(n), nil
	}
	if err == nil {
		return 0, io.EOF
	}
	return 0, err
}

// pending reports, without reading, whether the pipe holds bytes: nil when it
// does, EAGAIN when it is empty, io.EOF when it is empty and has no writer left.
func pending(fd int) error {
	pfd := pollfd{fd: int32(fd), events: pollIn}
	_, _, e := syscall.Syscall(syscall.SYS_POLL, uintptr(unsafe.Pointer(&pfd)), 1, 0)
	switch {
	case e == syscall.EINTR:
		return syscall.EINTR
	case e != 0, pfd.revents&pollIn != 0, pfd.revents&(pollErr|pollNval) != 0:
		return nil // bytes, or a fault the next read(2) or splice(2) reports
	case pfd.revents&pollHup != 0:
		return io.EOF
	}
	return syscall.EAGAIN
}

// coalesceBelow and coalesce: after a small read from a busy blocking pipe, wait a
// moment so the child's next writes find nobody to wake (see waiter.go).
const coalesceBelow = 32 << 10

var coalesce = 200 * time.Microsecond

func isBlocking(fd int) bool {
	fl, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
	return e == 0 && fl&syscall.O_NONBLOCK == 0
}
