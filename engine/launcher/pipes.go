package launcher

import (
	"io"
	"os"
	"reflect"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/starvisor/starvisor/engine/logs"
)

// settleEOF bounds how long an exit waits for its output to reach EOF, so that
// whatever the child wrote is in the log before the engine hears of the exit;
// settleMax bounds the wait when a grandchild keeps the pipe open and busy.
const (
	settleEOF = 20 * time.Millisecond
	settleMax = 200 * time.Millisecond
)

// stream is one pipe from the child to a writer.
type stream struct {
	r, w *os.File
	dst  io.Writer
	eof  chan struct{}
}

// outputs are the child's stdin (/dev/null, shared) and its output streams.
type outputs struct {
	null    *os.File
	out     *stream // nil: stdout discarded
	err     *stream // nil: stderr discarded; == out with redirect_stderr
	streams []*stream
}

// devNull is every child's stdin, opened once: a spawn costs no open and close of it.
var devNull = sync.OnceValues(func() (*os.File, error) { return os.OpenFile(os.DevNull, os.O_RDWR, 0) })

func newOutputs(stdout, stderr io.Writer) (*outputs, error) {
	null, err := devNull()
	if err != nil {
		return nil, err
	}
	o := &outputs{null: null}
	if stdout != nil {
		if o.out, err = newStream(stdout); err != nil {
			o.closeAll()
			return nil, err
		}
		o.streams = append(o.streams, o.out)
	}
	switch {
	case stderr == nil:
	case stdout != nil && same(stdout, stderr):
		o.err = o.out // one pipe for both: the child's own interleaving is kept
	default:
		if o.err, err = newStream(stderr); err != nil {
			o.closeAll()
			return nil, err
		}
		o.streams = append(o.streams, o.err)
	}
	return o, nil
}

// newStream makes a pipe. For a logs.File the read end stays blocking and out of
// Go's netpoller: the File waits for it cheaply (see logs/waiter_linux.go). For
// any other writer it is pollable, so an idle stream holds no thread.
func newStream(dst io.Writer) (*stream, error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		return nil, err
	}
	if _, ok := dst.(*logs.File); !ok {
		syscall.SetNonblock(fds[0], true)
	}
	// A logs.File pipe is enlarged by its pump once it is found busy (logs.growPipe).
	return &stream{
		r:   os.NewFile(uintptr(fds[0]), "|0"),
		w:   os.NewFile(uintptr(fds[1]), "|1"),
		dst: dst,
		eof: make(chan struct{}),
	}, nil
}

// childFds are the child's stdin, stdout and stderr. The files stay open (and
// referenced) until closeChildEnds, after the fork.
func (o *outputs) childFds() []uintptr {
	fds := []uintptr{o.null.Fd(), o.null.Fd(), o.null.Fd()}
	if o.out != nil {
		fds[1] = o.out.w.Fd()
	}
	if o.err != nil {
		fds[2] = o.err.w.Fd()
	}
	return fds
}

func (o *outputs) closeChildEnds() {
	for _, s := range o.streams {
		s.w.Close()
	}
}

func (o *outputs) closeAll() {
	o.closeChildEnds()
	for _, s := range o.streams {
		s.r.Close()
	}
}

// copy drains each pipe until EOF. A logs.File pumps its pipe with no goroutine
// while the pipe is idle (logs.File.Pump); other writers get io.Copy on a goroutine.
// Should the writer fail, the pipe is still drained so the child never blocks.
func (o *outputs) copy() {
	for _, s := range o.streams {
		if lf, ok := s.dst.(*logs.File); ok {
			lf.Pump(s.r, func() { close(s.eof) })
			continue
		}
		go func() {
			defer close(s.eof)
			defer s.r.Close()
			if _, err := io.Copy(s.dst, s.r); err != nil {
				io.Copy(io.Discard, s.r)
			}
			// A line the process left unfinished (it exited mid-line) is ended, as a
			// logs.File's pump ends it: up --logs's writer holds it until then.
			if e, ok := s.dst.(interface{ EndOfStream() }); ok {
				e.EndOfStream()
			}
		}()
	}
}

// settle waits, briefly, until each stream reached EOF or holds no unread byte.
func (o *outputs) settle() {
	start := time.Now()
	for _, s := range o.streams {
		if !s.await(settleEOF - time.Since(start)) {
			for !s.empty() && time.Since(start) < settleMax && !s.await(time.Millisecond) {
			}
		}
	}
}

// await reports whether the stream reaches EOF within d.
func (s *stream) await(d time.Duration) bool {
	if d <= 0 {
		return chanClosed(s.eof)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.eof:
		return true
	case <-t.C:
		return false
	}
}

func chanClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// empty reports whether the pipe holds no unread byte (or is already closed).
func (s *stream) empty() bool {
	if chanClosed(s.eof) {
		return true
	}
	rc, err := s.r.SyscallConn()
	if err != nil {
		return true
	}
	n := 0
	cerr := rc.Control(func(fd uintptr) {
		syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ /* FIONREAD */, uintptr(unsafe.Pointer(&n)))
	})
	return cerr != nil || n == 0
}

// same reports whether two writers are one, without panicking on incomparable types.
func same(a, b io.Writer) bool {
	if reflect.TypeOf(a) != reflect.TypeOf(b) || !reflect.TypeOf(a).Comparable() {
		return false
	}
	return a == b
}
