package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/plan"
)

// maxLine bounds how much of an unfinished line is kept between attempts.
const maxLine = 64 << 10

// logCheck follows the program's stdout log from its end at the time of the call
// (Prepare's, just before the spawn: what an earlier run left does not count), then
// what is appended, across rotations (logs.Follower).
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
	if st, err := os.Stat(pr.Stdout.Path); err == nil && !st.Mode().IsRegular() {
		return nil, what, fmt.Errorf("the program's stdout goes to %s, not a log file", pr.Stdout.Path)
	}
	r := logs.FollowFrom(*pr.Stdout, logs.MarkEnd(pr.Stdout.Path))
	return &follower{r: r, re: re}, what, nil
}

func (fl *follower) close() { fl.r.Close() }

type follower struct {
	r       *logs.Follower
	re      *regexp.Regexp
	pending []byte // the unfinished last line
	buf     []byte
}

// check reads what the log gained since the last attempt, testing each line (and the
// unfinished last one) against the pattern.
func (fl *follower) check(context.Context) error {
	if fl.buf == nil {
		fl.buf = make([]byte, 256<<10)
	}
	for {
		n, err := fl.r.Read(fl.buf)
		data := append(fl.pending, fl.buf[:n]...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			if fl.re.Match(data[:i]) {
				return nil
			}
			data = data[i+1:]
		}
		if len(data) > maxLine {
			data = data[len(data)-maxLine:]
		}
		fl.pending = append(fl.pending[:0:0], data...)
		if err == io.EOF {
			if len(fl.pending) > 0 && fl.re.Match(fl.pending) {
				return nil
			}
			return fmt.Errorf("no line matches %q yet", fl.re)
		}
		if err != nil {
			return err
		}
	}
}
