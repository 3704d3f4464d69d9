package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"syscall"

	"github.com/starvisor/starvisor/engine/plan"
)

// maxLine bounds how much of an unfinished line is kept between attempts.
const maxLine = 64 << 10

// logCheck follows the program's stdout log from its end at the time of the call
// (Prepare's, just before the spawn: what an earlier run left does not count), then
// what is appended; after a rotation it finishes the old file and starts the new one.
func logCheck(pr plan.Program) (*follower, string, error) {
	pb := pr.Ready
	what := fmt.Sprintf("log %q", pb.Pattern)
	re, err := regexp.Compile(pb.Pattern)
	if err != nil {
		return nil, what, err
	}
	if pr.Stdout == nil || pr.Stdout.Path == "" {
		return nil, what, errors.New("the program has no stdout log")
	}
	fl := &follower{path: pr.Stdout.Path, re: re}
	if st, err := os.Stat(fl.path); err == nil {
		fl.startIno, fl.startAt = st.Sys().(*syscall.Stat_t).Ino, st.Size()
	}
	return fl, what, nil
}

func (fl *follower) close() {
	if fl.f != nil {
		fl.f.Close()
	}
}

type follower struct {
	path    string
	re      *regexp.Regexp
	f       *os.File
	ino     uint64
	pending []byte // the unfinished last line
	buf     []byte
	// The file and its size when the probe was prepared: reading starts there.
	startIno uint64
	startAt  int64
}

func (fl *follower) check(context.Context) error {
	if fl.f == nil {
		if err := fl.open(); err != nil {
			return err
		}
	}
	for {
		found, err := fl.scan()
		if found || err != nil {
			return err
		}
		st, err := os.Stat(fl.path)
		if err != nil || st.Sys().(*syscall.Stat_t).Ino == fl.ino {
			return fmt.Errorf("no line matches %q yet", fl.re)
		}
		fl.f.Close() // rotated: the old file is finished, go on with the new one
		if err := fl.open(); err != nil {
			return err
		}
	}
}

func (fl *follower) open() error {
	f, err := os.Open(fl.path)
	if err != nil {
		fl.f = nil
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	fl.f, fl.ino, fl.pending = f, st.Sys().(*syscall.Stat_t).Ino, nil
	if fl.ino == fl.startIno && fl.startAt > 0 && fl.startAt <= st.Size() {
		if _, err := f.Seek(fl.startAt, io.SeekStart); err != nil {
			f.Close()
			fl.f = nil
			return err
		}
	}
	fl.startAt = 0 // a file opened later (rotated in) is new: read it whole
	return nil
}

// scan reads to the end of the open file, testing each line (and the
// unfinished last one) against the pattern.
func (fl *follower) scan() (bool, error) {
	if fl.buf == nil {
		fl.buf = make([]byte, 256<<10)
	}
	if pos, err := fl.f.Seek(0, io.SeekCurrent); err == nil {
		if st, err := fl.f.Stat(); err == nil && st.Size() < pos {
			fl.f.Seek(0, io.SeekStart) // truncated in place (backups = 0)
			fl.pending = nil
		}
	}
	for {
		n, err := fl.f.Read(fl.buf)
		data := append(fl.pending, fl.buf[:n]...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			if fl.re.Match(data[:i]) {
				return true, nil
			}
			data = data[i+1:]
		}
		if len(data) > maxLine {
			data = data[len(data)-maxLine:]
		}
		fl.pending = append(fl.pending[:0:0], data...)
		if err == io.EOF || n == 0 {
			return len(fl.pending) > 0 && fl.re.Match(fl.pending), nil
		}
		if err != nil {
			return false, err
		}
	}
}
