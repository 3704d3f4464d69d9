package engine

import (
	"context"
	"sync"
	"time"
)

// realClock is the system clock; inside a testing/synctest bubble it is the fake one.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// dispatcher hands events to Options.OnEvent (log errors to OnLogError, probe results
// to OnReady) from one goroutine, in the order they were pushed. The queue is unbounded
// so a slow callback never stalls a process goroutine, and the callback may call back
// into the Supervisor without deadlock.
type dispatcher struct {
	o    *Options
	mu   sync.Mutex
	q    []note
	wake chan struct{} // capacity 1: "the queue is not empty"
	stop chan struct{}
	done chan struct{}
}

// note is one queued callback.
type note struct {
	kind noteKind
	ev   Event // Process only, for the other kinds
	err  error
	why  string // noteBlocked's
}

type noteKind uint8

const (
	noteEvent noteKind = iota
	noteLogError
	noteReady
	noteBlocked
)

func newDispatcher(o Options) *dispatcher {
	d := &dispatcher{o: &o, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go d.run()
	return d
}

func (d *dispatcher) push(n note) {
	d.mu.Lock()
	d.q = append(d.q, n)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		select {
		case <-d.wake:
			d.drain()
		case <-d.stop:
			d.drain()
			return
		}
	}
}

func (d *dispatcher) drain() {
	for {
		d.mu.Lock()
		batch := d.q
		d.q = nil
		d.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for _, n := range batch {
			switch {
			case n.kind == noteEvent && d.o.OnEvent != nil:
				d.o.OnEvent(n.ev)
			case n.kind == noteLogError && d.o.OnLogError != nil:
				d.o.OnLogError(n.ev.Process, n.err)
			case n.kind == noteReady && d.o.OnReady != nil:
				d.o.OnReady(n.ev.Process, n.err, n.ev.Time)
			case n.kind == noteBlocked && d.o.OnBlocked != nil:
				d.o.OnBlocked(n.ev.Process, n.why)
			}
		}
	}
}

// close delivers what is queued and ends the goroutine.
func (d *dispatcher) close() {
	close(d.stop)
	<-d.done
}

// watch returns a channel closed at the next snapshot publication. Check the condition
// after calling watch and wait only if it does not hold yet, so no change is missed.
func (s *Supervisor) watch() <-chan struct{} {
	s.chMu.Lock()
	defer s.chMu.Unlock()
	s.watched = true
	return s.changed
}

// broadcast wakes every watcher; it costs nothing while nobody watches.
func (s *Supervisor) broadcast() {
	s.chMu.Lock()
	if s.watched {
		close(s.changed)
		s.changed = make(chan struct{})
		s.watched = false
	}
	s.chMu.Unlock()
}

// waitFor blocks until cond reports done or fails, re-checking after every change.
func (s *Supervisor) waitFor(ctx context.Context, cond func() (bool, error)) error {
	for {
		ch := s.watch()
		if ok, err := cond(); ok || err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Supervisor) emit(ev Event) {
	if s.events != nil && s.o.OnEvent != nil {
		s.events.push(note{kind: noteEvent, ev: ev})
	}
}

func (s *Supervisor) emitLogError(process string, err error) {
	if s.events != nil && s.o.OnLogError != nil {
		s.events.push(note{kind: noteLogError, ev: Event{Process: process}, err: err})
	}
}

func (s *Supervisor) emitReady(process string, err error) {
	if s.events != nil && s.o.OnReady != nil {
		s.events.push(note{kind: noteReady, ev: Event{Time: s.clock.Now(), Process: process}, err: err})
	}
}

func (s *Supervisor) emitBlocked(process, why string) {
	if s.events != nil && s.o.OnBlocked != nil {
		s.events.push(note{kind: noteBlocked, ev: Event{Process: process}, why: why})
	}
}

// recordExit tells the Recorder of an exit on a goroutine of its own, so a process
// goroutine does not wait for the state file's write and fsync between a crash and
// its respawn. The calls run concurrently, which lets the state file fold a burst
// of exits (a shutdown) into a few writes. A late Exited is harmless: it forgets the
// pid only if it is still the process's recorded one, and the next daemon checks a
// recorded pid's start time anyway. Shutdown waits for them.
func (s *Supervisor) recordExit(process string, pid int) {
	if r := s.o.Recorder; r != nil {
		s.recording.Go(func() { r.Exited(process, pid) })
	}
}
