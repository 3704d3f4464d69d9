package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/starvisor/starvisor/engine/logs"
)

// followEvery is how often `logs -f` looks for new bytes; a person reading a log does not
// notice 100 ms, and it keeps the daemon free of per-file watchers.
var followEvery = 100 * time.Millisecond

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("name")
	pr, ok := s.one(w, name)
	if !ok {
		return
	}
	name = pr.ProcessName
	l := pr.Stdout
	if q.Get("stderr") == "1" {
		l = pr.Stderr
	}
	if l == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("%s: no log file", name))
		return
	}
	// A log file is created by the program's first byte (engine/logs), so a missing
	// one is an empty log: nothing to print, and with -f, one to wait for.
	f, err := os.Open(l.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		writeError(w, http.StatusNotFound, fmt.Errorf("%s: %w", name, err))
		return
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if f != nil {
		if err := writeTail(w, f, queryInt(r, "n", 10)); err != nil {
			return
		}
	}
	if q.Get("follow") != "1" {
		return
	}
	fl, _ := w.(http.Flusher)
	follow := logs.Follow(*l, f)
	f = nil // follow owns it now
	defer follow.Close()
	t := time.NewTicker(followEvery)
	defer t.Stop()
	for {
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
		if _, err := io.Copy(w, follow); err != nil {
			return // the client went away
		}
	}
}

// writeTail copies the last n lines of f to w and leaves f at its end.
func writeTail(w io.Writer, f *os.File, n int) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if n <= 0 {
		_, err := f.Seek(0, io.SeekEnd)
		return err
	}
	const chunk = 64 << 10
	var buf []byte
	off := size
	for off > 0 && bytes.Count(buf, []byte{'\n'}) <= n {
		step := int64(chunk)
		if off < step {
			step = off
		}
		off -= step
		b := make([]byte, step)
		if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		buf = append(b, buf...)
	}
	lines := bytes.SplitAfter(buf, []byte{'\n'})
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for _, l := range lines {
		if _, err := w.Write(l); err != nil {
			return err
		}
	}
	_, err = f.Seek(size, io.SeekStart)
	return err
}
