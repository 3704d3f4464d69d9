package logs

import (
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
	ready map[int32]chan struct{}
}

var readable waiter

// wait blocks until fd is readable (or hung up).
func (w *waiter) wait(fd int) {
	w.once.Do(w.start)
	if w.err != nil {
		pollReadable(fd)
		return
	}
	ch := make(chan struct{})
	w.mu.Lock()
	w.ready[int32(fd)] = ch
	w.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
	if err := syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		w.mu.Lock()
		delete(w.ready, int32(fd))
		w.mu.Unlock()
		pollReadable(fd)
		return
	}
	<-ch
}

func (w *waiter) start() {
	w.epfd, w.err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if w.err != nil {
		return
	}
	w.ready = map[int32]chan struct{}{}
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
			ch := w.ready[ev.Fd]
			delete(w.ready, ev.Fd)
			w.mu.Unlock()
			if ch != nil {
				close(ch)
			}
		}
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
func pollReadable(fd int) {
	pfd := pollfd{fd: int32(fd), events: pollIn}
	syscall.Syscall(syscall.SYS_POLL, uintptr(unsafe.Pointer(&pfd)), 1, ^uintptr(0))
}
