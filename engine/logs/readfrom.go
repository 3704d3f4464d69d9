package logs

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
)

// errNoSplice says the fast path cannot serve this source or file.
var errNoSplice = errors.New("splice unsupported")

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// ReadFrom copies r into the file until EOF; io.Copy picks it. From a pipe (an
// *os.File, or anything with SyscallConn) it uses splice(2), moving at most the
// bytes left before the next rotation per call, so the data never enters user
// space. Timestamps need to see the bytes, so they take the buffered path.
func (f *File) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	if sc, ok := r.(syscall.Conn); ok {
		n, err := f.spliceFrom(sc)
		total += n
		if !errors.Is(err, errNoSplice) {
			return total, err
		}
	}
	n, err := f.copyBuffered(r)
	return total + n, err
}

// copyBuffered is the portable path: big reads, each written whole.
func (f *File) copyBuffered(r io.Reader) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := f.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// copyAll is Pump on a goroutine of its own, for what cannot be spliced.
func (f *File) copyAll(r *os.File, done func()) {
	if _, err := f.ReadFrom(r); err != nil {
		io.Copy(io.Discard, r) // keep the child from blocking on a full pipe
	}
	r.Close()
	done()
}
