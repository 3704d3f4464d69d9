package logs

import (
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Why an idle pump waits on inotify, not epoll: Linux (5.16+) marks a pipe for good
// once anyone polls it (epoll included), and from then on every write(2) into it wakes
// the pipe's wait queue, empty or not. A chatty child's one-line writes each paid that
// for as long as it ran: 12–17% of its line rate on the test machine. An inotify watch
// is a mark on the pipe's inode instead, which only writes made while it exists see;
// the pump arms one (IN_ONESHOT) when the pipe runs dry, and once it fired the child's
// writes cost nothing more. Kernels that do not report every way into a pipe (write,
// splice, tee, vmsplice, sendfile, the last writer's close) keep epoll (probeInotify).

const pipeEvents = unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_ONESHOT

// noInotify is set once the user's inotify watch limit is reached: from then on pumps
// wait with epoll, rather than fail a watch at every pause.
var noInotify atomic.Bool

// startInotify makes the waiter's inotify instance, part of its epoll set for good,
// once the kernel has shown it reports what pumps wait for; ino stays -1 otherwise.
func (w *waiter) startInotify() {
	w.ino = -1
	ino, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(ino)}
	if !probeInotify(ino) || syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, ino, &ev) != nil {
		syscall.Close(ino)
		return
	}
	w.ino, w.byWatch = ino, map[int32]func(){}
}

// watchPipe calls fn, once, at the next write into the pipe whose read end is fd, or
// when its last writer closes it. Writes made before the watch are not reported: the
// caller looks at the pipe once more after this returns. It returns the watch, to
// cancel with unwatchPipe, and false when no watch could be made (no inotify, no
// /proc, the user's watch limit): then wait with notify.
func (w *waiter) watchPipe(fd int, fn func()) (int32, bool) {
	w.once.Do(w.start)
	if w.ino < 0 || noInotify.Load() {
		return 0, false
	}
	wd, err := syscall.InotifyAddWatch(w.ino, "/proc/self/fd/"+strconv.Itoa(fd), pipeEvents)
	if err == syscall.ENOSPC {
		noInotify.Store(true)
	}
	if err != nil {
		return 0, false
	}
	w.mu.Lock()
	w.byWatch[int32(wd)] = fn
	w.mu.Unlock()
	return int32(wd), true
}

// unwatchPipe cancels a watch whose fn has not run: it will not.
func (w *waiter) unwatchPipe(wd int32) {
	w.mu.Lock()
	delete(w.byWatch, wd)
	w.mu.Unlock()
	syscall.InotifyRmWatch(w.ino, uint32(wd)) // EINVAL once the event removed it
}

// inotifyEvents runs the fn of each watch that fired. A queue that overflowed lost
// events: every armed fn runs, and each pump that finds its pipe still empty arms again.
func (w *waiter) inotifyEvents(buf []byte) {
	for {
		n, err := syscall.Read(w.ino, buf)
		if err == syscall.EINTR {
			continue
		}
		if n <= 0 {
			return // EAGAIN: all read
		}
		var fire []func()
		w.mu.Lock()
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				for wd, fn := range w.byWatch {
					fire = append(fire, fn)
					delete(w.byWatch, wd)
				}
				continue
			}
			// Any event counts, IN_IGNORED too (the watch is gone): the pump looks.
			if fn, ok := w.byWatch[ev.Wd]; ok {
				fire = append(fire, fn)
				delete(w.byWatch, ev.Wd)
			}
		}
		w.mu.Unlock()
		for _, fn := range fire {
			fn()
		}
	}
}

// probeInotify checks, on a pipe of its own, that each way bytes enter a pipe raises
// the event a pump waits for, and so does the last writer's close. Older kernels
// reported no splice (before 6.4); some may mark pipes not to be watched at all.
func probeInotify(ino int) bool {
	var p, q [2]int
	if syscall.Pipe2(p[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK) != nil {
		return false
	}
	defer syscall.Close(p[0])
	defer func() {
		if p[1] >= 0 {
			syscall.Close(p[1])
		}
	}()
	if syscall.Pipe2(q[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK) != nil {
		return false
	}
	defer syscall.Close(q[0])
	defer syscall.Close(q[1])
	mem, err := unix.MemfdCreate("starvisor-probe", unix.MFD_CLOEXEC)
	if err != nil {
		return false
	}
	defer syscall.Close(mem)
	one := []byte{'x'}
	syscall.Write(mem, one)
	path := "/proc/self/fd/" + strconv.Itoa(p[0])
	sink := make([]byte, 64)
	buf := make([]byte, 4096)
	ways := []func() error{
		func() error { _, err := syscall.Write(p[1], one); return err },
		func() error {
			return via(q[1], one, func() (int64, error) { return syscall.Splice(q[0], nil, p[1], nil, 1, 0) })
		},
		func() error { return via(q[1], one, func() (int64, error) { return syscall.Tee(q[0], p[1], 1, 0) }) },
		func() error {
			iov := []unix.Iovec{{Base: &one[0], Len: 1}}
			_, err := unix.Vmsplice(p[1], iov, 0)
			return err
		},
		func() error { off := int64(0); _, err := syscall.Sendfile(p[1], mem, &off, 1); return err },
		func() error { err := syscall.Close(p[1]); p[1] = -1; return err },
	}
	for _, way := range ways {
		wd, err := syscall.InotifyAddWatch(ino, path, pipeEvents)
		if err != nil || way() != nil {
			return false
		}
		syscall.Read(q[0], sink) // what tee left behind
		syscall.Read(p[0], sink)
		if !firedOnce(ino, int32(wd), buf) {
			return false
		}
	}
	return true
}

// via writes b into the pipe w, then moves it on with move.
func via(w int, b []byte, move func() (int64, error)) error {
	if _, err := syscall.Write(w, b); err != nil {
		return err
	}
	_, err := move()
	return err
}

// firedOnce reads the queued events and says whether watch wd fired.
func firedOnce(ino int, wd int32, buf []byte) bool {
	n, err := syscall.Read(ino, buf)
	if err != nil {
		return false
	}
	for off := 0; off+unix.SizeofInotifyEvent <= n; {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		off += unix.SizeofInotifyEvent + int(ev.Len)
		if ev.Wd == wd && ev.Mask&(unix.IN_MODIFY|unix.IN_CLOSE_WRITE) != 0 {
			return true
		}
	}
	return false
}
