package plan

import (
	"errors"
	"fmt"
)

// problems collects validation errors. Each is one line,
// "POS: SUBJECT: FIELD: MESSAGE", so the user can jump to the script line.
// Identical lines are kept once: the instances of a numprocs program share
// their declaration, and would otherwise report the same mistake N times.
type problems struct {
	errs []error
	seen map[string]bool
}

// add records one problem. pos may be empty (a plan built in Go has no positions).
func (ps *problems) add(pos, subject, field, format string, args ...any) {
	msg := subject + ": " + field + ": " + fmt.Sprintf(format, args...)
	if pos != "" {
		msg = pos + ": " + msg
	}
	if ps.seen == nil {
		ps.seen = map[string]bool{}
	}
	if ps.seen[msg] {
		return
	}
	ps.seen[msg] = true
	ps.errs = append(ps.errs, errors.New(msg))
}

// program records a problem with one program entry.
func (ps *problems) program(pr *Program, field, format string, args ...any) {
	ps.add(pr.Pos, fmt.Sprintf("program %q", pr.Name), field, format, args...)
}

// group records a problem with one group.
func (ps *problems) group(g *Group, field, format string, args ...any) {
	ps.add(g.Pos, fmt.Sprintf("group %q", g.Name), field, format, args...)
}

// err joins everything found, in the order found; nil when nothing was.
func (ps *problems) err() error { return errors.Join(ps.errs...) }
