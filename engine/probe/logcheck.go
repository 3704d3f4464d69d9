package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/plan"
)

// maxLine bounds how much of an unfinished line is kept between attempts.
const maxLine = 64 << 10

// logCheck follows the program's stdout log, and its stderr log when that is a file of
// its own (Python's logging, uvicorn and gunicorn write stderr), from their ends at the
// time of the call (Prepare's, just before the spawn: what an earlier run left does not
// count), then what is appended, across rotations (logs.Follower). Lines are matched as
// the program wrote them, without the time stamp a log with timestamps adds.
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
	if !regularOrAbsent(pr.Stdout.Path) {
		return nil, what, fmt.Errorf("the program's stdout goes to %s, not a log file", pr.Stdout.Path)
	}
	fl := &follower{re: re, buffered: pr.BufferedPython(os.LookupEnv)} // the daemon's env is what it inherits
	fl.add(*pr.Stdout)
	if e := pr.Stderr; e != nil && !pr.RedirectStderr && e.Path != "" && e.Path != pr.Stdout.Path && regularOrAbsent(e.Path) {
		fl.add(*e)
	}
	return fl, what, nil
}

// regularOrAbsent: a log file, or one its program has not written yet.
func regularOrAbsent(path string) bool {
	st, err := os.Stat(path)
	return err != nil || st.Mode().IsRegular()
}

func (fl *follower) close() {
	for _, s := range fl.streams {
		s.r.Close()
	}
}

type follower struct {
	buffered bool  // a Python program with block-buffered output (plan.BufferedPython)
	read     int64 // bytes read from the logs so far
	re       *regexp.Regexp
	streams  []*stream
	buf      []byte
}

// stream is one log the probe reads.
type stream struct {
	r       *logs.Follower
	stamped bool   // lines begin with a time stamp and a space
	pending []byte // the unfinished last line
}

func (fl *follower) add(l plan.Log) {
	fl.streams = append(fl.streams, &stream{r: logs.FollowFrom(l, logs.MarkEnd(l)), stamped: l.Timestamps})
}

// check reads what the logs gained since the last attempt, testing each line (and the
// unfinished last one) against the pattern.
func (fl *follower) check(context.Context) error {
	if fl.buf == nil {
		fl.buf = make([]byte, 256<<10)
	}
	for _, s := range fl.streams {
		if ok, err := fl.match(s); ok || err != nil {
			return err
		}
	}
	if fl.buffered && fl.read == 0 {
		// The classic half hour: the program prints, the pipe holds it.
		return fmt.Errorf("no line matches %q yet: nothing written (Python runs without -u or PYTHONUNBUFFERED: its output reaches the log 8 KiB at a time)", fl.re)
	}
	return fmt.Errorf("no line matches %q yet", fl.re)
}

// match reads s to its end; true when a line matched.
func (fl *follower) match(s *stream) (bool, error) {
	for {
		n, err := s.r.Read(fl.buf)
		fl.read += int64(n)
		data := append(s.pending, fl.buf[:n]...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			if fl.re.Match(s.unstamped(data[:i])) {
				return true, nil
			}
			data = data[i+1:]
		}
		if len(data) > maxLine {
			// An unfinished line longer than what is kept: tested before its head goes
			// (a "ready" at the start of a line that goes on to dump a config was never
			// seen once the line spanned two reads).
			if fl.re.Match(s.unstamped(data)) {
				return true, nil
			}
			data = data[len(data)-maxLine:]
		}
		s.pending = append(s.pending[:0:0], data...)
		if err == io.EOF {
			return len(s.pending) > 0 && fl.re.Match(s.unstamped(s.pending)), nil
		}
		if err != nil {
			return false, err
		}
	}
}

// unstamped is line without the time stamp its log put before it, if any: where the
// log stamps lines, and where a line starts with one (timestamps turned on by an apply
// while the probe waits).
func (s *stream) unstamped(line []byte) []byte {
	i := bytes.IndexByte(line, ' ')
	if i < 0 {
		return line
	}
	if s.stamped {
		return line[i+1:]
	}
	if _, err := time.Parse(logs.StampLayout, string(line[:i])); err == nil {
		return line[i+1:]
	}
	return line
}
