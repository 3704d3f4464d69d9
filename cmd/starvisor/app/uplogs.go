package app

import (
	"cmp"
	"io"
	"path/filepath"
	"sync"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/logs"
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

	mu      sync.Mutex
	numbers map[string]int // each process's colour, in the order they first open a log
	width   int            // the labels' column: the widest any plan needed so far
	open    map[*teeWriter]bool
}

// number is process's colour number: given at its first log, kept across the applies
// that reopen it (its place in the plan moved with each: two of them shared a colour,
// and one changed colour mid-session).
func (t *teeOpener) number(process string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.numbers == nil {
		t.numbers = map[string]int{}
	}
	n, ok := t.numbers[process]
	if !ok {
		n = len(t.numbers)
		t.numbers[process] = n
	}
	return n
}

func (t *teeOpener) Open(l *plan.Log) (io.WriteCloser, error) {
	w, err := t.LogOpener.Open(l)
	if err != nil {
		return nil, err
	}
	name, width, process := filepath.Base(l.Path), 0, ""
	if p := t.running(); p != nil {
		found := false
		for _, pr := range p.Programs {
			// The labels of the plan's processes share one width: the columns line up
			// whichever process speaks first (as logs -f all prints them), a stderr's
			// "web.err" too.
			width = max(width, logs.Width(pr.ProcessName))
			if pr.Stdout != nil && pr.Stderr != nil && !pr.RedirectStderr {
				width = max(width, logs.Width(pr.ProcessName)+len(".err"))
			}
			if found {
				continue
			}
			if pr.Stdout != nil && pr.Stdout.Path == l.Path {
				name, found, process = pr.ProcessName, true, pr.ProcessName
			} else if pr.Stderr != nil && pr.Stderr.Path == l.Path {
				name, found, process = pr.ProcessName+".err", true, pr.ProcessName // as logs labels it beside stdout
				if pr.Stdout == nil {
					name = pr.ProcessName
				}
			}
		}
	}
	n := t.number(cmp.Or(process, name)) // in order of first speech: neighbours differ
	tw := &teeWriter{WriteCloser: w, owner: t}
	tw.label = func(width int) string { // under t.mu
		label := logs.Pad(name, width)
		if t.color {
			label = colorLabel(label, n)
		}
		return label
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if width > t.width {
		// A longer name joined (an apply): the labels already shown widen with it, so
		// the columns still line up.
		t.width = width
		for o := range t.open {
			o.relabel(width)
		}
	}
	tw.lines = logs.NewLabeller(t.out, tw.label(t.width))
	if t.open == nil {
		t.open = map[*teeWriter]bool{}
	}
	t.open[tw] = true
	return tw, nil
}

// teeWriter writes to its log and, each line whole after its process's name, to out;
// the log writer's other powers (rotation settings, reopening, its errors) pass through.
type teeWriter struct {
	io.WriteCloser
	owner *teeOpener
	label func(width int) string
	mu    sync.Mutex // stdout and stderr may share a writer (redirect_stderr)
	lines *logs.Labeller
}

// plain takes the colours off the labels, those shown from now on and those to come:
// the lines go to a file now (the terminal hung up).
func (t *teeOpener) plain() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.color = false
	for o := range t.open {
		o.relabel(t.width)
	}
}

func (t *teeWriter) relabel(width int) {
	t.mu.Lock()
	t.lines.Relabel(t.label(width))
	t.mu.Unlock()
}

func (t *teeWriter) Close() error {
	t.owner.mu.Lock()
	delete(t.owner.open, t)
	t.owner.mu.Unlock()
	return t.WriteCloser.Close()
}

func (t *teeWriter) Write(b []byte) (int, error) {
	n, err := t.WriteCloser.Write(b)
	t.mu.Lock()
	t.lines.Write(b)
	t.mu.Unlock()
	return n, err
}

// EndOfStream ends a line the process left unfinished as its output ended (it exited):
// in its log, and on the terminal, whole.
func (t *teeWriter) EndOfStream() {
	if e, ok := t.WriteCloser.(interface{ EndOfStream() }); ok {
		e.EndOfStream()
	}
	t.mu.Lock()
	t.lines.Flush()
	t.mu.Unlock()
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
