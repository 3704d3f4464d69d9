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

// dispatcher hands events to Options.OnEvent from one goroutine, in the order the
// processes pushed them. The queue is unbounded so a slow callback never stalls a process
// goroutine, and the callback may call back into the Supervisor without deadlock.
type dispatcher struct {
	fn   func(Event)
	mu   sync.Mutex
	q    []Event
	wake chan struct{} // capacity 1: "the queue is not empty"
	stop chan struct{}
	done chan struct{}
}

func newDispatcher(fn func(Event)) *dispatcher {
	d := &dispatcher{fn: fn, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go d.run()
	return d
}

func (d *dispatcher) push(ev Event) {
	d.mu.Lock()
	d.q = append(d.q, ev)
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
		for _, ev := range batch {
			d.fn(ev)
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
	if s.events != nil {
		s.events.push(ev)
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
