package engine

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// Sampling costs CPU for every live process (a BatchSampler reads /proc once per
// round, but that is still a read per process on the host), so the daemon samples only while someone looks: every sampleEvery
// for watchFor after the last Status call, and not at all when nobody asks. An
// idle daemon therefore uses no CPU. A Status call that finds no sample, or one
// older than staleAfter, asks for a fresh one and waits for it, at most freshWait
// (a round of 200 processes takes a few milliseconds): a lone `status` shows
// figures, and a sampler that hangs does not hold status up. An action's answer
// reads States, which does not count as watching.
// A program with memory_max has its tree measured every memoryEvery even while nobody
// looks (pm2 checks every 30 s): only plans that ask for it pay for it.
const memoryEvery = 5 * time.Second

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
		if every := s.sampleEvery(watched); every > 0 {
			t = s.clock.AfterFunc(every, func() {
				select {
				case tick <- struct{}{}:
				default:
				}
			})
		}
		if !watched && wasWatched && s.o.OnUnwatched != nil {
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
		s.checkMemory()
		s.checkAllLogs() // log errors reach OnLogError while someone watches
	}
}

// sampleEvery is the pause before the next round: sampleEvery while someone watches,
// memoryEvery while a program has memory_max, else 0 (none: until Status asks).
func (s *Supervisor) sampleEvery(watched bool) time.Duration {
	if watched {
		return sampleEvery
	}
	if p := s.tab.Load().plan; p != nil && slices.ContainsFunc(p.Programs, func(pr plan.Program) bool { return pr.MemoryMax > 0 }) {
		return memoryEvery
	}
	return 0
}

// checkMemory restarts, by the last round, each RUNNING process whose tree's RSS is over
// its memory_max (pm2's max_memory_restart): a leaking worker is replaced before the
// kernel's OOM killer picks a victim, maybe another program.
func (s *Supervisor) checkMemory() {
	u := s.samples.last.Load()
	tab := s.tab.Load()
	if u == nil || tab.plan == nil {
		return
	}
	for i, p := range tab.procs {
		limit := tab.plan.Programs[i].MemoryMax
		if limit <= 0 {
			continue
		}
		sn := p.snap.Load()
		use, ok := u.by[sn.Pid]
		if sn.State != Running && sn.State != Starting || sn.Pid == 0 || !ok { // a leak at start-up, a job's too
			continue
		}
		if rss := max(use.TreeRSSBytes, use.RSSBytes); rss > uint64(limit) {
			p.call(cmdMemory{why: fmt.Sprintf("memory_max: %s of RSS (its process tree), over %s", mib(rss), mib(uint64(limit)))})
		}
	}
}

// mib writes n bytes in MiB, as status shows memory.
func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// memberLists gives, of each running process with memory_max, the processes of its
// cgroup: a worker that daemonized (setsid, its parent gone) left the tree memory_max
// weighed, while the stop that memory_max makes kills it with the rest. Only those: a
// cgroup's list is a read per process per round.
func (s *Supervisor) memberLists() map[int][]int {
	tab := s.tab.Load()
	var out map[int][]int
	for i, p := range tab.procs {
		sn := p.snap.Load()
		ml := p.members.Load()
		if sn.Pid <= 0 || ml == nil || tab.plan.Programs[i].MemoryMax <= 0 {
			continue
		}
		if out == nil {
			out = map[int][]int{}
		}
		out[sn.Pid] = (*ml).Members()
	}
	return out
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
	if g, ok := s.o.Sampler.(GroupSampler); ok {
		m = g.SampleGroups(pids, s.memberLists()) // one pass over the process table
	} else if b, ok := s.o.Sampler.(BatchSampler); ok {
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
