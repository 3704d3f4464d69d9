package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// followEvery is how often `logs -f` looks for new bytes; a person reading a log does not
// notice 100 ms, and it keeps the daemon free of per-file watchers.
var followEvery = 100 * time.Millisecond

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("name")
	p := s.b.Plan()
	if p == nil {
		writeError(w, http.StatusNotFound, errors.New("no plan applied yet"))
		return
	}
	pr, err := p.One(name)
	if err != nil {
		writeError(w, http.StatusNotFound, err)
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
		if f == nil {
			// Not there yet: once it is, every byte in it is new.
			if f, err = os.Open(l.Path); err != nil {
				f = nil
				continue
			}
		}
		if f, err = catchUp(w, f, l); err != nil {
			return // the client went away
		}
	}
}

// catchUp copies to w what f gained, then, if f was rotated away meanwhile, what each
// file after it holds, oldest first, and returns the file to read next. A rotation cuts
// the unfinished last line off the file it renames and starts the next file with it,
// so bytes read past a rotated file's final end are skipped at the next one's start.
// Only when more rotations than backups passed between two looks are lines missed.
func catchUp(w io.Writer, f *os.File, l *plan.Log) (*os.File, error) {
	for {
		if _, err := io.Copy(w, f); err != nil {
			return f, err
		}
		next := successor(f, l)
		if next == nil {
			return f, nil
		}
		// Renamed, f is final: what it gained since the copy above is still to send.
		if _, err := io.Copy(w, f); err != nil {
			next.Close()
			return f, err
		}
		pos, err := f.Seek(0, io.SeekCurrent)
		if st, serr := f.Stat(); err == nil && serr == nil && pos > st.Size() {
			next.Seek(pos-st.Size(), io.SeekStart)
		}
		f.Close()
		f = next
	}
}

// successor opens the file written after f: name.(k-1) when f is now name.k, the
// current file when f is name.1. It returns nil while f is the current file, and
// while a rotation is under way (the next look tries again). A file truncated in place
// (backups = 0) is read again from its start.
func successor(f *os.File, l *plan.Log) *os.File {
	cur, err := f.Stat()
	if err != nil {
		return nil
	}
	now, err := os.Stat(l.Path)
	if err != nil {
		return nil // between the rename and the new file
	}
	if os.SameFile(cur, now) {
		if pos, err := f.Seek(0, io.SeekCurrent); err == nil && pos > now.Size() && l.Backups == 0 {
			f.Seek(0, io.SeekStart)
		}
		return nil
	}
	// Upwards, the way a rotation moves files (name.i to name.i+1, highest first): a
	// rotation running meanwhile cannot carry f past the search.
	k := 0
	for i := 1; i <= l.Backups && k == 0; i++ {
		if st, err := os.Stat(backupName(l.Path, i)); err == nil && os.SameFile(cur, st) {
			k = i
		}
	}
	if k == 0 {
		nf, _ := os.Open(l.Path) // rotated out of reach, or removed: go on with the current file
		return nf
	}
	name := l.Path
	if k > 1 {
		name = backupName(l.Path, k-1)
	}
	nf, err := os.Open(name)
	if err != nil {
		return nil
	}
	// f still at name.k after the open: no rotation moved the files in between.
	if st, err := os.Stat(backupName(l.Path, k)); err != nil || !os.SameFile(cur, st) {
		nf.Close()
		return nil
	}
	return nf
}

func backupName(path string, i int) string { return path + "." + strconv.Itoa(i) }

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
