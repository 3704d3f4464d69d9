package logs

import (
	"runtime"
	"sync"
	"syscall"
	"unsafe"
)

// Why a private waiter: a pipe registered with Go's netpoller (epoll) keeps an
// epoll entry on its wait queue, so every write(2) by the child pays a wake-up,
// even while the reader is busy. That halves the line rate of a chatty child.
// Pipes handed over in blocking mode stay out of the netpoller; this waiter puts a
// pipe in its own epoll set only while the reader is idle, and takes it out at
// the first event. One thread waits for all idle pipes.
type waiter struct {
	once  sync.Once
	epfd  int
	err   error
	mu    sync.Mutex
	ready map[int32]func()
}

var readable waiter

// OnReadable calls fn, once, when fd becomes readable or hung up, from the waiter that
// serves the log pipes: one epoll set and one goroutine for the whole daemon. fn must
// not block. The launcher waits for exits this way too (a pidfd is readable once its
// process has exited), so a running program holds no goroutine for either.
func OnReadable(fd int, fn func()) { readable.notify(fd, fn) }

// wait blocks until fd is readable (or hung up).
func (w *waiter) wait(fd int) {
	ch := make(chan struct{})
	w.notify(fd, func() { close(ch) })
	<-ch
}

// notify calls fn, once, when fd becomes readable (or hung up). fn runs on the
// waiter's goroutine: it must not block. Should the epoll set be out of reach, fn
// runs once a goroutine of its own saw the fd readable.
func (w *waiter) notify(fd int, fn func()) {
	w.once.Do(w.start)
	if w.err != nil {
		go func() { pollReadable(fd); fn() }()
		return
	}
	w.mu.Lock()
	w.ready[int32(fd)] = fn
	w.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
	if err := syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		w.mu.Lock()
		delete(w.ready, int32(fd))
		w.mu.Unlock()
		go func() { pollReadable(fd); fn() }()
	}
}

func (w *waiter) start() {
	w.epfd, w.err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if w.err != nil {
		return
	}
	w.ready = map[int32]func(){}
	go w.loop()
}

func (w *waiter) loop() {
	events := make([]syscall.EpollEvent, 64)
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if err != nil {
			continue // EINTR
		}
		for _, ev := range events[:n] {
			syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, int(ev.Fd), nil)
			w.mu.Lock()
			fn := w.ready[ev.Fd]
			delete(w.ready, ev.Fd)
			w.mu.Unlock()
			if fn != nil {
				fn()
			}
		}
		// What fn started (an exit's reap, a pump) runs now on this thread, before
		// the waiter blocks again: otherwise blocking hands the processor over and
		// another thread must be woken to run it.
		runtime.Gosched()
	}
}

// pollfd is struct pollfd of poll(2).
type pollfd struct {
	fd      int32
	events  int16
	revents int16
}

const (
	pollIn   = 0x1
	pollErr  = 0x8
	pollHup  = 0x10
	pollNval = 0x20
)

// pollReadable is the fallback: block this thread in poll(2).
func pollReadable(fd int) { pollIn1(fd, -1) }

// pollIn1 polls fd for input for up to timeout ms (-1: no limit) and returns its
// revents, or the errno of poll(2).
func pollIn1(fd int, timeout int) (int16, syscall.Errno) {
	pfd := pollfd{fd: int32(fd), events: pollIn}
	_, _, e := syscall.Syscall(syscall.SYS_POLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(timeout))
	return pfd.revents, e
}
