package app

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// stampLayout is the time at the head of each line of the daemon's output, as its
// event lines have it.
const stampLayout = "2006-01-02T15:04:05.000"

// lineBacklog bounds what waits for a reader of the daemon's output: 10,000 lines of
// events, a few hundred KiB more than an idle daemon's size, and only while it stalls.
const lineBacklog = 1 << 20

// lineWriter serialises whole lines from the engine's callbacks, the control server and
// the loop, and writes them on a goroutine of its own: a reader of `up`'s output that
// stops reading (a paused pager, a pipe nobody drains) must stall neither the events
// nor the control server nor a shutdown. Past lineBacklog bytes waiting, lines are
// dropped, and how many is said once the reader takes output again.
type lineWriter struct {
	w     io.Writer     // under mu (redirect)
	wake  chan struct{} // capacity 1: something waits
	stamp bool          // lines without a time of their own get one (the daemon's log)

	mu      sync.Mutex
	buf     []byte        // waiting, whole lines
	dropped int           // lines dropped after those in buf
	busy    bool          // the writer holds a batch
	wrote   chan struct{} // closed and renewed after each batch written
}

func newLineWriter(w io.Writer) *lineWriter {
	l := &lineWriter{w: w, wake: make(chan struct{}, 1), wrote: make(chan struct{})}
	go l.run()
	return l
}

// redirect sends the lines from the next batch on to w (its terminal is gone).
func (l *lineWriter) redirect(w io.Writer) {
	l.mu.Lock()
	l.w = w
	l.mu.Unlock()
}

// printf queues a line of the daemon's own (with its time, when stamping).
func (l *lineWriter) printf(format string, args ...any) { l.add(l.stamp, format, args...) }

// line queues s as it is: an event line, which carries its own time, or a line that
// belongs to the one before (a reload's delta).
func (l *lineWriter) line(s string) { l.add(false, "%s\n", s) }

// Write queues whole lines (a logs.Labeller's), each as line does.
func (l *lineWriter) Write(b []byte) (int, error) {
	for _, s := range strings.SplitAfter(string(b), "\n") {
		if s != "" {
			l.add(false, "%s", s)
		}
	}
	return len(b), nil
}

func (l *lineWriter) add(stamp bool, format string, args ...any) {
	var now time.Time
	if stamp {
		now = time.Now()
	}
	l.mu.Lock()
	if l.dropped > 0 || len(l.buf) >= lineBacklog {
		l.dropped++
	} else {
		if stamp {
			l.buf = now.AppendFormat(l.buf, stampLayout+" ")
		}
		l.buf = fmt.Appendf(l.buf, format, args...)
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run writes what waits, a batch at a time, for the life of the process: a write to a
// reader that never reads again blocks it for good, and nothing else with it.
func (l *lineWriter) run() {
	var spare []byte
	for range l.wake {
		for {
			l.mu.Lock()
			batch, dropped := l.buf, l.dropped
			if len(batch) == 0 && dropped == 0 {
				l.mu.Unlock()
				break
			}
			l.buf, l.dropped, l.busy = spare[:0], 0, true
			w := l.w
			l.mu.Unlock()
			w.Write(batch)
			if dropped > 0 {
				fmt.Fprintf(w, "starvisor: %s of output dropped: its reader did not take them\n", plural(dropped, "line"))
			}
			if cap(batch) <= lineBacklog*2 {
				spare = batch
			}
			l.mu.Lock()
			l.busy = false
			close(l.wrote)
			l.wrote = make(chan struct{})
			l.mu.Unlock()
		}
	}
}

// flush waits until every line is written, or until the writer has made no progress for
// patience: a reader gone quiet must not keep a stopped daemon from exiting.
func (l *lineWriter) flush(patience time.Duration) {
	for {
		l.mu.Lock()
		idle := !l.busy && len(l.buf) == 0 && l.dropped == 0
		wrote := l.wrote
		l.mu.Unlock()
		if idle {
			return
		}
		select {
		case l.wake <- struct{}{}:
		default:
		}
		select {
		case <-wrote:
		case <-time.After(patience):
			return
		}
	}
}
