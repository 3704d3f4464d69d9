package engine

import (
	"sync"
	"sync/atomic"
	"time"
)

// Sampling costs CPU for every live process (a BatchSampler reads /proc once per
// round, but that is still a read per process on the host), so the daemon samples only while someone looks: every sampleEvery
// for watchFor after the last Status call, and not at all when nobody asks. An
// idle daemon therefore uses no CPU. A Status call that finds no sample, or one
// older than staleAfter, asks for a fresh one and waits for it, at most freshWait
// (a round of 200 processes takes a few milliseconds): a lone `status` shows
// figures, and a sampler that hangs does not hold status up. An action's answer
// reads States, which does not count as watching.
const (
	sampleEvery = 2 * time.Second
	watchFor    = time.Minute
	staleAfter  = 2 * sampleEvery
	freshWait   = 100 * time.Millisecond
)

// sampling is the Supervisor's sampler state.
type sampling struct {
	last     atomic.Pointer[usageSample]
	lastRead atomic.Int64  // unix ns of the last Status call
	kick     chan struct{} // capacity 1: "sample now"

	mu    sync.Mutex
	fresh chan struct{} // closed when the next sample is stored; nil: nobody waits
}

type usageSample struct {
	at time.Time
	by map[int]Usage // pid -> usage
}

func (g *sampling) init() { g.kick = make(chan struct{}, 1) }

// usage returns the latest sample for Status, and asks for a fresh one (and waits for
// it a moment) when it is stale or misses a live process (one just restarted).
func (s *Supervisor) usage(now time.Time) map[int]Usage {
	g := &s.samples
	if s.o.Sampler == nil {
		return nil
	}
	g.lastRead.Store(now.UnixNano())
	u := g.last.Load()
	if u == nil || now.Sub(u.at) > staleAfter || s.unsampled(u) {
		g.mu.Lock()
		if g.fresh == nil {
			g.fresh = make(chan struct{})
		}
		fresh := g.fresh
		g.mu.Unlock()
		select {
		case g.kick <- struct{}{}:
		default:
		}
		late := make(chan struct{})
		t := s.clock.AfterFunc(freshWait, func() { close(late) })
		select {
		case <-fresh:
			u = g.last.Load()
		case <-late:
		}
		t.Stop()
	}
	if u == nil {
		return nil
	}
	return u.by
}

// unsampled says whether a live process was spawned after u was taken, so has no
// figures in it. (One u missed for another reason, /proc unreadable, does not count: a
// new sample would miss it too.)
func (s *Supervisor) unsampled(u *usageSample) bool {
	for _, p := range s.tab.Load().procs {
		if sn := p.snap.Load(); sn.Pid > 0 && sn.State.Active() && !sn.Started.Before(u.at) {
			if _, ok := u.by[sn.Pid]; !ok {
				return true
			}
		}
	}
	return false
}

// stored tells the Status calls waiting for a fresh sample that it is there.
func (g *sampling) stored() {
	g.mu.Lock()
	if g.fresh != nil {
		close(g.fresh)
		g.fresh = nil
	}
	g.mu.Unlock()
}

// sampleLoop measures live processes off the process goroutines: every
// sampleEvery while watched, else only when Status asks.
func (s *Supervisor) sampleLoop() {
	defer s.bg.Done()
	g := &s.samples
	tick := make(chan struct{}, 1)
	watched := false
	for {
		var t Timer
		wasWatched := watched
		watched = s.clock.Now().UnixNano()-g.lastRead.Load() < int64(watchFor)
		if watched {
			t = s.clock.AfterFunc(sampleEvery, func() {
				select {
				case tick <- struct{}{}:
				default:
				}
			})
		} else if wasWatched && s.o.OnUnwatched != nil {
			s.o.OnUnwatched()
		}
		select {
		case <-s.ctx.Done():
			if t != nil {
				t.Stop()
			}
			return
		case <-tick:
		case <-g.kick:
			if t != nil {
				t.Stop()
			}
		}
		s.sampleOnce()
		s.checkAllLogs() // log errors reach OnLogError while someone watches
	}
}

func (s *Supervisor) sampleOnce() {
	// Stamped before the pids are gathered: a process spawned during the round is newer
	// than the sample, and a Status call takes a fresh one for it (unsampled).
	at := s.clock.Now()
	var pids []int
	for _, p := range s.tab.Load().procs {
		if sn := p.snap.Load(); sn.Pid > 0 {
			pids = append(pids, sn.Pid)
		}
	}
	var m map[int]Usage
	if b, ok := s.o.Sampler.(BatchSampler); ok {
		m = b.SampleAll(pids) // one pass over the process table for the round
	} else {
		m = map[int]Usage{}
		for _, pid := range pids {
			if s.ctx.Err() != nil {
				return // shutting down: Shutdown waits for this loop
			}
			if u, err := s.o.Sampler.Sample(pid); err == nil {
				m[pid] = u
			}
		}
	}
	s.samples.last.Store(&usageSample{at: at, by: m})
	s.samples.stored()
}
