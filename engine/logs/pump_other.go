//go:build !linux

package logs

import (
	"io"
	"os"
)

// Pump copies r into the file on a goroutine of its own until end of input, then
// closes r and calls done (the idle pump without a goroutine is Linux's).
func (f *File) Pump(r *os.File, done func()) {
	go func() {
		bp := bigBufs.Get().(*[]byte)
		io.CopyBuffer(drainTo{f}, r, *bp)
		bigBufs.Put(bp)
		r.Close()
		f.EndOfStream()
		done()
	}()
}

// drainTo writes to the file but never stops the copy: once the file is closed
// (its program removed) the pipe is still drained, so the child never blocks.
type drainTo struct{ f *File }

func (d drainTo) Write(p []byte) (int, error) {
	d.f.Write(p)
	return len(p), nil
}
