package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// levels splits members into runs of equal rank, as plan.Levels does.
func levels(tab *table, members []int, wholeGroups bool) [][]int {
	if tab.plan == nil {
		return nil
	}
	return tab.plan.Levels(members, wholeGroups)
}

// dependsOn reports whether process i's program depends on process j's program.
func (tab *table) dependsOn(i, j int) bool {
	return slices.Contains(tab.plan.Programs[i].DependsOn, tab.plan.Programs[j].Name)
}

// deps lists the positions of every process that process i depends on.
func (tab *table) deps(i int) []int {
	var out []int
	if len(tab.plan.Programs[i].DependsOn) == 0 {
		return nil
	}
	for j := range tab.procs {
		if j != i && tab.dependsOn(i, j) {
			out = append(out, j)
		}
	}
	return out
}

// markPending counts a start on its way for each member until the returned func runs;
// it then wakes the watchers, since a dependent may now have to give up.
func (s *Supervisor) markPending(tab *table, members []int) func() {
	for _, i := range members {
		tab.procs[i].pending.Add(1)
	}
	return sync.OnceFunc(func() {
		for _, i := range members {
			tab.procs[i].pending.Add(-1)
		}
		s.broadcast()
	})
}

// batch is a set of starts in flight.
type batch struct {
	issued chan struct{} // every member was spawned or is waiting for its dependencies
	done   chan struct{} // every member has its outcome in errs
	errs   []error       // *ProcessError per failed member, in start order once done
}

// allClosed returns a channel closed once every channel in chs is closed.
func allClosed(chs []chan struct{}) chan struct{} {
	out := make(chan struct{})
	go func() {
		for _, c := range chs {
			<-c
		}
		close(out)
	}()
	return out
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// startBatch starts members (table positions, start order). A priority level is
// issued only once every earlier level was spawned; within a level starts run in
// parallel. A member with depends_on counts as issued as soon as it waits for its
// dependencies, so a slow dependency holds back its dependents only.
func (s *Supervisor) startBatch(ctx context.Context, tab *table, members []int, persist bool) *batch {
	b := &batch{issued: make(chan struct{}), done: make(chan struct{})}
	n := len(members)
	acked := make([]chan struct{}, n)
	errs := make([]error, n)
	for k, i := range members {
		acked[k] = make(chan struct{})
		tab.procs[i].pending.Add(1) // until its goroutine below ends
	}
	var wg sync.WaitGroup
	pos := map[int]int{}
	for k, i := range members {
		pos[i] = k
	}
	gate := make(chan struct{})
	close(gate)
	for _, lv := range levels(tab, members, false) {
		var lvAcked []chan struct{}
		for _, i := range lv {
			k := pos[i]
			lvAcked = append(lvAcked, acked[k])
			wg.Add(1)
			p := tab.procs[i]
			p.queued.Add(1)
			stops := p.stops.Load()
			go func(gate chan struct{}) {
				defer wg.Done()
				ack := sync.OnceFunc(func() { close(acked[k]) })
				unqueue := sync.OnceFunc(func() { p.queued.Add(-1) })
				defer func() {
					unqueue()
					ack()
					p.pending.Add(-1)
					s.broadcast() // dependents watching this start re-check
				}()
				select {
				case <-gate:
				case <-ctx.Done():
					errs[k] = &ProcessError{Name: p.name, Err: ctx.Err()}
					return
				}
				// One already running answers "already started" (supervisorctl's words), its
				// dependencies' state aside: it said "dependency not ready" of a RUNNING one.
				if st := p.snap.Load().State; st != Running && st != Starting && len(tab.deps(i)) > 0 {
					ack()
					if err := s.waitDeps(ctx, p, stops, persist); err != nil {
						errs[k] = &ProcessError{Name: p.name, Err: err}
						return
					}
				}
				unqueue()
				if p.stops.Load() != stops {
					errs[k] = &ProcessError{Name: p.name, Err: ErrAbnormalTermination} // stopped meanwhile
					return
				}
				if err := startOne(ctx, p, ack); err != nil {
					errs[k] = &ProcessError{Name: p.name, Err: err}
				}
			}(gate)
		}
		gate = allClosed(lvAcked)
	}
	go func() {
		wg.Wait()
		for _, e := range errs {
			if e != nil {
				b.errs = append(b.errs, e)
			}
		}
		close(b.done)
	}()
	go func() {
		for _, a := range acked {
			<-a
		}
		close(b.issued)
	}()
	return b
}

// startOne asks p to start, calls ack once the spawn was attempted, and waits for the
// process to leave STARTING.
func startOne(ctx context.Context, p *proc, ack func()) error {
	c := cmdStart{acked: make(chan struct{}), reply: make(chan error, 1)}
	if err := p.call(c); err != nil {
		return err
	}
	<-c.acked
	ack()
	select {
	case err := <-c.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitDeps blocks until every dependency of p is ready (RUNNING and its probe passed).
// Dependencies are looked up in the current table, again whenever Apply replaces it, so
// a dependency restarted by a reload is followed to its new process. It fails when one
// cannot become ready: stopped, exited or fatal with no start on its way, or its probe
// gave up; unless persist (the daemon's own starts, not a client's): then it waits on,
// so a dependent starts once its dependency is fixed and started. It fails with
// ErrNoSuchProcess when p itself was replaced or removed meanwhile (the reload starts
// its successor), and ErrAbnormalTermination when p was stopped.
func (s *Supervisor) waitDeps(ctx context.Context, p *proc, stops uint64, persist bool) error {
	var cur *table
	var deps []*proc
	defer func() {
		p.waitingFor.Store(nil)
		if p.blocked.Swap(false) {
			s.broadcast()
		}
	}()
	wait := func(why string, blocked bool) (bool, error) {
		changed := false
		if w := p.waitingFor.Load(); w == nil || *w != why {
			p.waitingFor.Store(&why)
			changed = true
		}
		if was := p.blocked.Swap(blocked); was != blocked {
			s.broadcast() // its dependents re-check: it is on its way, or no longer
			changed = true
		}
		if blocked && changed {
			s.emitBlocked(p.name, "waiting for "+why) // said where the failure was: up fell silent
		}
		return false, nil
	}
	return s.waitFor(ctx, func() (bool, error) {
		if p.retired.Load() {
			return false, ErrNoSuchProcess // being replaced: the reload starts its successor
		}
		if p.stops.Load() != stops {
			return false, ErrAbnormalTermination // a stop came while it waited: the stop wins
		}
		if t := s.tab.Load(); t != cur {
			cur, deps = t, deps[:0]
			i, ok := t.index[p.name]
			if !ok || t.procs[i] != p {
				return false, ErrNoSuchProcess
			}
			for _, j := range t.deps(i) {
				deps = append(deps, t.procs[j])
			}
		}
		for _, d := range deps {
			ready, failed := d.asDependency()
			switch {
			case ready:
				continue
			case failed == nil:
				return wait(d.name, false) // on its way
			case !persist:
				return false, failed
			}
			if sn := d.snap.Load(); sn.State != Running {
				if d.blocked.Load() { // the cause is further down: say it
					return wait(d.name+" ("+sn.State.String()+", waiting for "+deref(d.waitingFor.Load())+")", true)
				}
				return wait(d.name+" ("+sn.State.String()+")", true)
			}
			return wait(d.name+" (not ready)", true)
		}
		return true, nil
	})
}

// asDependency says whether d is ready for its dependents, and if not, whether it is on
// its way (failed nil) or will not get ready by itself (why).
func (d *proc) asDependency() (ready bool, failed error) {
	sn := d.snap.Load()
	switch {
	case sn.ready() && sn.Job && (d.queued.Load() > 0 || d.pending.Load() > 0):
		if d.blocked.Load() { // the new run waits for a dependency that will not come
			return false, fmt.Errorf("%w: %s is to run again, waiting for %s", ErrDependency, d.name, deref(d.waitingFor.Load()))
		}
		return false, nil // a job done, to run again: its dependents wait for the new run
	case sn.ready():
		return true, nil
	case sn.ReadyErr != "" && sn.State == Running:
		return false, fmt.Errorf("%w: %s: %s", ErrDependency, d.name, sn.ReadyErr)
	case sn.State == Starting || sn.State == Backoff || sn.State == Running,
		d.pending.Load() > 0 && !d.blocked.Load():
		return false, nil
	case d.blocked.Load():
		return false, fmt.Errorf("%w: %s is %v, waiting for %s", ErrDependency, d.name, sn.State, deref(d.waitingFor.Load()))
	}
	return false, fmt.Errorf("%w: %s is %v", ErrDependency, d.name, sn.State)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// stopBatch stops members (table positions) in reverse start order: a priority level
// is stopped only once every later level is fully stopped, all of a level in parallel,
// and a process only after its dependents in the batch. It returns errors.Join of a
// *ProcessError per failure (ErrNotRunning for one already down).
func (s *Supervisor) stopBatch(ctx context.Context, tab *table, members []int) error {
	n := len(members)
	stopped := make([]chan struct{}, n)
	errs := make([]error, n)
	pos := map[int]int{}
	for k, i := range members {
		stopped[k] = make(chan struct{})
		pos[i] = k
	}
	var wg sync.WaitGroup
	gate := make(chan struct{})
	close(gate)
	lvs := levels(tab, members, true)
	for l := len(lvs) - 1; l >= 0; l-- {
		var lvStopped []chan struct{}
		for _, i := range lvs[l] {
			k := pos[i]
			lvStopped = append(lvStopped, stopped[k])
			var after []chan struct{} // dependents in this batch
			for _, j := range members {
				if j != i && tab.dependsOn(j, i) {
					after = append(after, stopped[pos[j]])
				}
			}
			wg.Add(1)
			go func(gate chan struct{}) {
				defer wg.Done()
				defer close(stopped[k])
				for _, c := range append([]chan struct{}{gate}, after...) {
					select {
					case <-c:
					case <-ctx.Done():
						errs[k] = &ProcessError{Name: tab.procs[i].name, Err: ctx.Err()}
						return
					}
				}
				if err := s.stopOne(ctx, tab.procs[i]); err != nil {
					errs[k] = &ProcessError{Name: tab.procs[i].name, Err: err}
				}
			}(gate)
		}
		gate = allClosed(lvStopped)
	}
	wg.Wait()
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return errors.Join(out...)
}

// stopOne stops p and cancels its queued starts (supervisord: a stop during a pending
// start wins); a process that was down but had a start queued counts as stopped.
func (s *Supervisor) stopOne(ctx context.Context, p *proc) error {
	queued := p.queued.Load() > 0
	p.stops.Add(1)
	if queued {
		s.broadcast() // the starts waiting for dependencies see the stop
	}
	c := cmdStop{reply: make(chan error, 1)}
	if err := p.call(c); err != nil {
		return err
	}
	select {
	case err := <-c.reply:
		if queued && errors.Is(err, ErrNotRunning) {
			return nil
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
