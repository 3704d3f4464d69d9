package logs

import (
	"bytes"
	"io"
)

// MaxPending bounds how much of an unfinished line a Labeller holds before it writes it
// out anyway (a progress bar drawn with \r, a line of a megabyte).
const MaxPending = 64 << 10

// A Labeller writes what is written to it to w, each line whole after a label
// ("web    | ..."), as `logs -f` of several processes and `up --logs` show them: the
// lines of processes sharing w never mix. An unfinished line waits for its end, however
// long its writer pauses ("Connecting... " then, later, "ok"), up to MaxPending bytes:
// what is held then goes out as a line, and the rest of that line follows after the
// label marked as a continuation ("web    + ..."). Flush writes out a line that will
// get no end (its process exited, the follow ends). Not safe for concurrent use.
type Labeller struct {
	w       io.Writer
	head    []byte // label + " | "
	cont    []byte // label + " + ": the rest of a line cut at MaxPending
	pending []byte
	cut     bool // the line under way was cut: what follows continues it
	buf     []byte
}

// NewLabeller writes lines to w after label (padded by the caller to its column).
func NewLabeller(w io.Writer, label string) *Labeller {
	return &Labeller{w: w, head: []byte(label + " | "), cont: []byte(label + " + ")}
}

// Relabel takes label (padded anew) for the lines from now on: a wider one joined the
// column (logs -f of all, a longer name added by an apply).
func (l *Labeller) Relabel(label string) {
	l.head, l.cont = []byte(label+" | "), []byte(label+" + ")
}

func (l *Labeller) Write(b []byte) (int, error) {
	n := len(b)
	l.buf = l.buf[:0]
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		if len(l.pending) > 0 {
			l.pending = append(l.pending, b[:i+1]...)
			l.put(l.pending)
		} else {
			l.put(b[:i+1])
		}
		l.pending, l.cut, b = l.pending[:0], false, b[i+1:]
	}
	l.pending = append(l.pending, b...)
	if len(l.pending) >= MaxPending {
		k := len(l.pending) / MaxPending * MaxPending
		l.put(l.pending[:k])
		l.pending = append(l.pending[:0], l.pending[k:]...)
	}
	if len(l.buf) == 0 {
		return n, nil
	}
	_, err := l.w.Write(l.buf)
	return n, err
}

// put adds line (ended by its newline, or a run of whole MaxPending parts) to buf in
// parts of at most MaxPending bytes, each after the first marked as a continuation: a
// line of megabytes written at once went out as one.
func (l *Labeller) put(line []byte) {
	for len(line) > 0 {
		part := line[:min(len(line), MaxPending)]
		line = line[len(part):]
		// A newline alone after a cut only ends the line already written: no empty line.
		if l.cut && len(part) == 1 && part[0] == '\n' {
			break
		}
		l.buf = append(append(l.buf, l.label()...), part...)
		if part[len(part)-1] != '\n' {
			l.buf = append(l.buf, '\n')
			l.cut = true
		}
	}
}

// Flush writes out, ended, the line under way.
func (l *Labeller) Flush() error {
	if len(l.pending) == 0 {
		l.cut = false // what comes next is a line of its own
		return nil
	}
	line := append(append(append([]byte(nil), l.label()...), l.pending...), '\n')
	l.pending, l.cut = l.pending[:0], false
	_, err := l.w.Write(line)
	return err
}

// label is what goes before the next line written: the head, or after a cut the
// continuation mark.
func (l *Labeller) label() []byte {
	if l.cut {
		return l.cont
	}
	return l.head
}
