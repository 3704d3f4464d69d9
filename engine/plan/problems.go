package plan

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxProblems is how many problems an error lists: one mistake in a script that
// generates a fleet (a depends_on off by one) is otherwise thousands of lines of CI log.
// The rest are counted on a last line.
const MaxProblems = 20

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
	ps.add(pr.Pos, fmt.Sprintf("program %q", Short(pr.Name)), field, format, args...)
}

// group records a problem with one group.
func (ps *problems) group(g *Group, field, format string, args ...any) {
	ps.add(g.Pos, fmt.Sprintf("group %q", Short(g.Name)), field, format, args...)
}

// err joins everything found, in the order found; nil when nothing was. Past
// MaxProblems, the rest are counted, not listed.
func (ps *problems) err() error { return JoinProblems(ps.errs) }

// JoinProblems is errors.Join of the first MaxProblems of errs, and then
// "... and N more problems" when there are more.
func JoinProblems(errs []error) error {
	if len(errs) <= MaxProblems {
		return errors.Join(errs...)
	}
	out := append(errs[:MaxProblems:MaxProblems], fmt.Errorf("... and %d more problems", len(errs)-MaxProblems))
	return errors.Join(out...)
}

// shortName is the longest name messages print whole; a longer one is cut to its first
// shortPrefix bytes.
const (
	shortName   = 64
	shortPrefix = 40
)

// Short is a name as messages print it: whole when it is short, else its first 40 bytes
// and its length ("xxxx…(5000 bytes)"), so a generated name does not fill the screen,
// once per message that names it.
func Short(name string) string {
	if len(name) <= shortName {
		return name
	}
	cut := shortPrefix
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(%d bytes)", name[:cut], len(name))
}
