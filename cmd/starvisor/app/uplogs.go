package app

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/plan"
)

// logOpener is the engine's log opener; with up --logs, one whose writers also print
// each whole line to out after the process's name, as `logs -f all` shows them: the
// programs' output among the state changes, in one terminal (foreman, docker compose
// up), and nothing lost between a spawn and a follower's first look.
func (c *UpCmd) logOpener(o engine.LogOpener, out *lineWriter, running func() *plan.Plan, color bool) engine.LogOpener {
	if !c.Logs || c.Detach {
		return o
	}
	return &teeOpener{LogOpener: o, out: out, running: running, color: color}
}

// teeOpener names each log it opens by the process that writes it in the running plan
// (the engine opens a process's logs at its first spawn, once its plan runs).
type teeOpener struct {
	engine.LogOpener
	out     *lineWriter
	running func() *plan.Plan
	color   bool // labels in their process's colour (a terminal)
}

func (t *teeOpener) Open(l *plan.Log) (io.WriteCloser, error) {
	w, err := t.LogOpener.Open(l)
	if err != nil {
		return nil, err
	}
	name, width, number := filepath.Base(l.Path), 0, 0
	if p := t.running(); p != nil {
		found := false
		for i, pr := range p.Programs {
			// The labels of the plan's processes share one width: the columns line up
			// whichever process speaks first (as logs -f all prints them).
			width = max(width, len(pr.ProcessName))
			if found {
				continue
			}
			if pr.Stdout != nil && pr.Stdout.Path == l.Path {
				name, found, number = pr.ProcessName, true, i
			} else if pr.Stderr != nil && pr.Stderr.Path == l.Path {
				name, found, number = pr.ProcessName+".err", true, i // as logs labels it beside stdout
				if pr.Stdout == nil {
					name = pr.ProcessName
				}
			}
		}
	}
	label := fmt.Sprintf("%-*s", width, name)
	if t.color {
		label = colorLabel(label, number) // the process's place in the plan: neighbours differ
	}
	return &teeWriter{WriteCloser: w, prefix: label + " | ", out: t.out}, nil
}

// teeWriter writes to its log and, line by line, to out; the log writer's other powers
// (rotation settings, reopening, its errors) pass through.
type teeWriter struct {
	io.WriteCloser
	prefix  string
	out     *lineWriter
	mu      sync.Mutex
	pending []byte // an unfinished line
	writes  int    // for showLater: writes since
	later   bool   // a showLater timer runs
}

// partialAfter is how long an unfinished line waits for its end before it is shown (a
// prompt, a crash's last words without a newline), as logs -f does.
var partialAfter = 100 * time.Millisecond

// showLater prints the unfinished line once partialAfter passed with no write. Called
// with mu held.
func (t *teeWriter) showLater() {
	if t.later {
		return
	}
	t.later = true
	seen := t.writes
	time.AfterFunc(partialAfter, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.later = false
		switch {
		case len(t.pending) == 0:
		case t.writes != seen:
			t.showLater() // more came: wait again
		default:
			t.out.line(t.prefix + string(t.pending))
			t.pending = t.pending[:0]
		}
	})
}

func (t *teeWriter) Write(b []byte) (int, error) {
	n, err := t.WriteCloser.Write(b)
	t.mu.Lock()
	t.pending = append(t.pending, b...)
	for {
		i := bytes.IndexByte(t.pending, '\n')
		if i < 0 {
			break
		}
		t.out.line(t.prefix + string(t.pending[:i]))
		t.pending = t.pending[i+1:]
	}
	if len(t.pending) > 64<<10 { // a line without end (a progress bar): shown in parts
		t.out.line(t.prefix + string(t.pending))
		t.pending = t.pending[:0]
	}
	t.writes++
	if len(t.pending) > 0 {
		t.showLater()
	}
	t.mu.Unlock()
	return n, err
}

func (t *teeWriter) Retune(l plan.Log) {
	if r, ok := t.WriteCloser.(interface{ Retune(plan.Log) }); ok {
		r.Retune(l)
	}
}

func (t *teeWriter) Reopen() {
	if r, ok := t.WriteCloser.(interface{ Reopen() }); ok {
		r.Reopen()
	}
}

func (t *teeWriter) Err() error {
	if r, ok := t.WriteCloser.(interface{ Err() error }); ok {
		return r.Err()
	}
	return nil
}

func (t *teeWriter) Failing() bool {
	if r, ok := t.WriteCloser.(interface{ Failing() bool }); ok {
		return r.Failing()
	}
	return false
}
