package engine

import (
	"sync/atomic"
	"time"
)

// Sampling costs CPU for every live process (a BatchSampler reads /proc once per
// round, but that is still a read per process on the host), so the daemon samples only while someone looks: every sampleEvery
// for watchFor after the last Status call, and not at all when nobody asks. An
// idle daemon therefore uses no CPU. A Status call that finds the last sample
// older than staleAfter asks for a fresh one without waiting for it (Status never
// waits): that call shows the last sample taken, the next ones fresh figures. An
// action's answer reads States, which does not count as watching.
const (
	sampleEvery = 2 * time.Second
	watchFor    = time.Minute
	staleAfter  = 2 * sampleEvery
)

// sampling is the Supervisor's sampler state.
type sampling struct {
	last     atomic.Pointer[usageSample]
	lastRead atomic.Int64  // unix ns of the last Status call
	kick     chan struct{} // capacity 1: "sample now"
}

type usageSample struct {
	at time.Time
	by map[int]Usage // pid -> usage
}

func (g *sampling) init() { g.kick = make(chan struct{}, 1) }

// usage returns the latest sample for Status, and asks for a fresh one when it
// is stale.
func (s *Supervisor) usage(now time.Time) map[int]Usage {
	g := &s.samples
	if s.o.Sampler == nil {
		return nil
	}
	g.lastRead.Store(now.UnixNano())
	u := g.last.Load()
	if u == nil || now.Sub(u.at) > staleAfter {
		select {
		case g.kick <- struct{}{}:
		default:
		}
	}
	if u == nil {
		return nil
	}
	return u.by
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
	s.samples.last.Store(&usageSample{at: s.clock.Now(), by: m})
}
