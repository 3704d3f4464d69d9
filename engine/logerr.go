package engine

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// logErrHold is how long a log writer's error stays in Status after it was last seen,
// when no writer can say it works again (a writer without Failing, or none left once
// the logs are closed). Writers report errors only on write (logs.File drops the bytes
// and keeps the error for Err, which forgets it once read), so a quiet program would
// otherwise lose the error at the next check.
const logErrHold = time.Minute

// errReporter is a log writer that keeps its write failures for the engine to read
// (logs.File): Err returns the last failure since the previous call and forgets it.
type errReporter interface{ Err() error }

// failReporter is a writer that knows whether its last bytes were dropped (logs.File):
// true while the disk is full, false from the first write that lands again. With it the
// error clears as soon as writing resumes, and stays while a quiet writer is still
// broken, instead of following logErrHold.
type failReporter interface{ Failing() bool }

// wordsKeeper is a writer that keeps its file's last line as each stream written to it
// ended (logs.File).
type wordsKeeper interface {
	LastWords() (path, line string, at time.Time)
}

// lastWords is the last line the writers kept (stderr's first: a crash's traceback),
// with its log's path and when its stream ended.
func (h *logHealth) lastWords() (path, line string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.ws) - 1; i >= 0; i-- {
		if k, ok := h.ws[i].(wordsKeeper); ok {
			if path, line, at = k.LastWords(); line != "" {
				return path, line, at
			}
		}
	}
	return "", "", time.Time{}
}

// logHealth is what the engine knows of one process's log writers. The process
// goroutine sets the writers; Status, exits and the sampler's slow timer check them.
type logHealth struct {
	mu   sync.Mutex
	ws   []errReporter // the writers that report errors (stdout, stderr once each)
	err  string        // the last error seen, shown in Status
	seen time.Time     // when err was last reported by a writer, or known to hold
	// failed is when a write last failed: a writer quiet since may have room again (a
	// file removed from a full disk), which only its next write can tell.
	failed time.Time
}

// setWriters records the process's writers (nil to forget them); the last error stays.
func (h *logHealth) setWriters(ws ...io.Writer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ws = h.ws[:0]
	for i, w := range ws {
		if r, ok := w.(errReporter); ok && (i == 0 || w != ws[0]) {
			h.ws = append(h.ws, r)
		}
	}
}

// check reads the writers' errors. It returns the error to show and, when that error
// is new (none was shown, or a different one), the error to announce once. A shown
// error clears once every writer reports it writes again (failReporter): then again
// is true, once; or else logErrHold after it was last seen.
func (h *logHealth) check(now time.Time) (show string, announce error, again bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var found error
	// Err before Failing: a write that fails between the two keeps Failing true, and
	// one that failed and then succeeded before this check is still shown once. Both
	// writers' errors: stderr's hid that stdout's output was dropped too.
	var msgs []string
	for _, w := range h.ws {
		if err := w.Err(); err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) > 0 {
		found = errors.New(strings.Join(msgs, "; "))
	}
	known, failing := len(h.ws) > 0, false
	for _, w := range h.ws {
		if f, ok := w.(failReporter); !ok {
			known = false
		} else if f.Failing() {
			failing = true
		}
	}
	switch {
	case found != nil:
		if found.Error() != h.err {
			announce = found
		}
		h.err, h.seen, h.failed = found.Error(), now, now
	case h.err == "":
	case known && !failing:
		h.err, again = "", true // every writer writes again
	case known:
		h.seen = now // still broken, only quiet
		if quiet := now.Sub(h.failed); quiet >= quietSaid {
			return h.err + fmt.Sprintf(" (its last write failed %s ago, none since)", roundS(quiet)), nil, false
		}
	case now.Sub(h.seen) >= logErrHold:
		h.err = ""
	}
	return h.err, announce, again
}

// quietSaid is how long after its last failed write a log error says so: a program that
// has written nothing since may find room again (only its next write can tell), and the
// error read as a current one.
const quietSaid = 5 * time.Second

// checkLogs checks p's log writers and announces through OnLogError a new error, and
// (with a nil error) that the logs are written again.
func (p *proc) checkLogs(now time.Time) string {
	show, announce, again := p.logs.check(now)
	if announce != nil {
		p.sup.emitLogError(p.name, announce)
	} else if again {
		p.sup.emitLogError(p.name, nil)
	}
	return show
}

// healthNotifier is a log writer that says when it starts dropping output and when it
// writes again (logs.File): told at once, not at the next status or sampling round.
type healthNotifier interface{ OnHealth(func()) }

// watchLogs has p's writers announce their failures and recoveries as they happen.
func (p *proc) watchLogs(ws ...io.Writer) {
	for _, w := range ws {
		if n, ok := w.(healthNotifier); ok {
			n.OnHealth(func() { p.checkLogs(p.sup.clock.Now()) })
		}
	}
}

// checkAllLogs checks every process's log writers (the sampler's slow timer).
func (s *Supervisor) checkAllLogs() {
	now := s.clock.Now()
	for _, p := range s.tab.Load().procs {
		p.checkLogs(now)
	}
}
