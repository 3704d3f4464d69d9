package logs

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// Pump moves everything the pipe r yields into the file, as ReadFrom does, but holds
// no goroutine while the pipe is idle: one drains it while bytes come and leaves once
// it is empty, and the waiter starts another at the next byte. A daemon with 1,000
// quiet programs therefore keeps no 2,000 parked readers, whose stacks were a third
// of its memory. r must be in blocking mode, out of Go's netpoller (the launcher
// hands logs.File pipes over that way). done runs once, after end of input, with r
// closed. Should the file fail for good (closed), the pipe is still drained, so the
// child never blocks on a full pipe.
func (f *File) Pump(r *os.File, done func()) {
	fd := int(r.Fd())
	if !f.spliceable(fd) {
		go f.copyAll(r, done)
		return
	}
	p := &pump{f: f, r: r, fd: fd, done: done}
	go p.run()
}

type pump struct {
	f    *File
	r    *os.File // kept: its finalizer would close fd
	fd   int
	done func()
}

// run drains the pipe until it is empty, then asks the waiter for the next byte.
func (p *pump) run() {
	if _, err := p.f.spliceUntilEmpty(p.fd, true); err != syscall.EAGAIN {
		p.end(err)
		return
	}
	readable.notify(p.fd, p.resume)
}

func (p *pump) resume() { go p.run() }

func (p *pump) end(err error) {
	switch {
	case err == io.EOF:
	case errors.Is(err, errNoSplice): // the kernel refused splice: the portable path
		if _, err := p.f.copyBuffered(p.r); err != nil {
			io.Copy(io.Discard, p.r)
		}
	default:
		io.Copy(io.Discard, p.r)
	}
	p.r.Close()
	p.done()
}
