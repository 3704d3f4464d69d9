package engine

import (
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// countingSampler counts rounds (SampleAll calls); each usage is the round number.
type countingSampler struct {
	n       atomic.Int32
	single  atomic.Int32 // Sample calls: the engine should batch instead
	lastLen atomic.Int32 // pids asked for in the latest round
}

func (c *countingSampler) Sample(pid int) (Usage, error) {
	c.single.Add(1)
	return Usage{}, nil
}

func (c *countingSampler) SampleAll(pids []int) map[int]Usage {
	n := c.n.Add(1)
	c.lastLen.Store(int32(len(pids)))
	m := map[int]Usage{}
	for _, pid := range pids {
		m[pid] = Usage{RSSBytes: uint64(n), CPUPercent: float64(pid)}
	}
	return m
}

// A round is one SampleAll call for every live process, never a Sample per pid;
// each process gets the usage measured for its own pid.
func TestSamplingRoundIsOneBatchCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &countingSampler{}
		r := newRig(t, func(o *Options) { o.Sampler = c })
		defer r.shutdown()
		r.apply(planOf(t, prog("a"), prog("b"), prog("c"), prog("d", manual)))
		r.sup.Status()
		synctest.Wait()
		if n, l, s := c.n.Load(), c.lastLen.Load(), c.single.Load(); n != 1 || l != 3 || s != 0 {
			t.Fatalf("%d SampleAll calls for %d pids and %d Sample calls, want 1 for 3 and 0", n, l, s)
		}
		for _, name := range []string{"a", "b", "c"} {
			st := r.status(name)
			if st.Usage.CPUPercent != float64(st.Pid) || st.Usage.RSSBytes != 1 {
				t.Errorf("%s (pid %d): usage %+v", name, st.Pid, st.Usage)
			}
		}
		if u := r.status("d").Usage; u != (Usage{}) {
			t.Errorf("d (stopped) usage %+v", u)
		}
	})
}

// Nobody reads Status: nothing is sampled. A Status call samples at once, then every
// 2 s for a minute, then sampling stops again.
func TestSamplingOnlyWhileWatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &countingSampler{}
		var unwatched atomic.Int32
		r := newRig(t, func(o *Options) { o.Sampler = c; o.OnUnwatched = func() { unwatched.Add(1) } })
		defer r.shutdown()
		r.apply(planOf(t, prog("a")))
		time.Sleep(10 * time.Minute)
		if n, u := c.n.Load(), unwatched.Load(); n != 0 || u != 0 {
			t.Fatalf("%d samples and %d OnUnwatched calls while nobody looked", n, u)
		}
		if u := r.status("a").Usage; u.RSSBytes != 1 {
			t.Errorf("first Status: usage %+v, want the sample it asked and waited for", u)
		}
		if u := r.status("a").Usage; u.RSSBytes != 1 {
			t.Errorf("second Status: usage %+v, want the same sample", u)
		}
		time.Sleep(9 * time.Second)
		if n := c.n.Load(); n != 5 { // at 0, 2, 4, 6, 8 s
			t.Errorf("%d samples in the 9 s after a Status call, want 5", n)
		}
		time.Sleep(10 * time.Minute)
		if n := c.n.Load(); n > 32 {
			t.Errorf("%d samples: still sampling long after the last Status call", n)
		}
		if u := unwatched.Load(); u != 1 {
			t.Errorf("OnUnwatched called %d times once watching ended, want 1", u)
		}
		before := c.n.Load()
		time.Sleep(10 * time.Minute)
		if n := c.n.Load(); n != before {
			t.Errorf("sampling went on unwatched: %d -> %d", before, n)
		}
		if u := unwatched.Load(); u != 1 {
			t.Errorf("OnUnwatched called %d times, want still 1", u)
		}
	})
}

// States (what an action's answer reads) neither samples nor starts watching, and
// carries no figures; it describes the same processes as Status.
func TestStatesDoNotWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &countingSampler{}
		r := newRig(t, func(o *Options) { o.Sampler = c })
		defer r.shutdown()
		r.apply(planOf(t, prog("a"), prog("b", manual)))
		time.Sleep(2 * time.Second) // past start_secs
		for range 3 {
			st := r.sup.States()
			if len(st) != 2 || st[0].Name != "a" || st[0].State != Running || st[0].Pid == 0 || st[1].State != Stopped {
				t.Fatalf("States: %+v", st)
			}
			time.Sleep(time.Second)
		}
		synctest.Wait()
		if n := c.n.Load(); n != 0 {
			t.Fatalf("%d samples after States calls only, want 0", n)
		}
		r.sup.Status()
		synctest.Wait()
		if n := c.n.Load(); n != 1 {
			t.Fatalf("%d samples after a Status call, want 1", n)
		}
		if u := r.sup.States()[0].Usage; u != (Usage{}) {
			t.Errorf("States carries usage %+v", u)
		}
	})
}

// hangingSampler never returns until released.
type hangingSampler struct{ release chan struct{} }

func (h *hangingSampler) Sample(int) (Usage, error) { <-h.release; return Usage{RSSBytes: 7}, nil }

// Status waits for a fresh sample a moment only: a sampler that hangs (a /proc read
// stuck behind a process's mm lock) does not hold status up; it shows no figures.
func TestStatusWaitsForASampleAMomentOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &hangingSampler{release: make(chan struct{})}
		r := newRig(t, func(o *Options) { o.Sampler = h })
		defer r.shutdown()
		r.apply(planOf(t, prog("a")))
		start := time.Now()
		if u := r.status("a").Usage; u != (Usage{}) {
			t.Errorf("usage %+v from a sampler that has not answered", u)
		}
		if waited := time.Since(start); waited != freshWait {
			t.Errorf("Status waited %v, want %v", waited, freshWait)
		}
		close(h.release)
		synctest.Wait()
		if u := r.status("a").Usage; u.RSSBytes != 7 {
			t.Errorf("usage %+v once the sampler answered", u)
		}
	})
}

// A process restarted since the last sample (a new pid) makes Status take a fresh one:
// it showed no figures until the next round.
func TestStatusSamplesARestartedProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &countingSampler{}
		r := newRig(t, func(o *Options) { o.Sampler = c })
		defer r.shutdown()
		r.apply(planOf(t, prog("a", startSecs(0))))
		if u := r.status("a").Usage; u.RSSBytes != 1 {
			t.Fatalf("first Status: usage %+v", u)
		}
		time.Sleep(time.Second) // within sampleEvery: the sample is fresh
		if err := r.sup.Restart(t.Context(), "a"); err != nil {
			t.Fatal(err)
		}
		st := r.status("a")
		if st.Usage.RSSBytes != 2 || st.Usage.CPUPercent != float64(st.Pid) {
			t.Errorf("after the restart (pid %d): usage %+v, want a sample of the new pid", st.Pid, st.Usage)
		}
	})
}

// memSampler reports rss bytes for every process tree.
type memSampler struct{ rss atomic.Uint64 }

func (m *memSampler) Sample(pid int) (Usage, error) { return Usage{TreeRSSBytes: m.rss.Load()}, nil }

// groupSampler records the members it is given to add to each tree.
type groupSampler struct {
	memSampler
	mu   sync.Mutex
	seen map[int][]int
}

func (g *groupSampler) SampleGroups(pids []int, members map[int][]int) map[int]Usage {
	g.mu.Lock()
	g.seen = members
	g.mu.Unlock()
	out := map[int]Usage{}
	for _, pid := range pids {
		out[pid], _ = g.Sample(pid)
	}
	return out
}

// memory_max weighs the program's cgroup, daemonized workers included (a setsid double
// fork leaves the tree by parent links, and ran on unweighed): the handle's members go
// to the sampler, for the programs that have memory_max only (a read each, per round).
func TestMemoryMaxWeighsTheCgroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &groupSampler{}
		g.rss.Store(100 << 20)
		r := newRig(t, func(o *Options) { o.Sampler = g })
		defer r.shutdown()
		r.apply(planOf(t, prog("leaky", startSecs(0), func(pr *plan.Program) { pr.MemoryMax = 512 << 20 }), prog("plain", startSecs(0))))
		time.Sleep(6 * time.Second)
		pid := r.status("leaky").Pid
		g.mu.Lock()
		defer g.mu.Unlock()
		if want := map[int][]int{pid: {pid, pid + 1000}}; !reflect.DeepEqual(g.seen, want) {
			t.Errorf("members %v, want %v", g.seen, want)
		}
	})
}

// A program with memory_max has its tree measured every 5 s though nobody looks, and is
// restarted (stopped, then started: an automatic restart) once it is over the limit.
func TestMemoryMaxRestartsTheProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &memSampler{}
		m.rss.Store(100 << 20)
		r := newRig(t, func(o *Options) { o.Sampler = m })
		defer r.shutdown()
		r.apply(planOf(t, prog("leaky", startSecs(0), func(pr *plan.Program) { pr.MemoryMax = 512 << 20 })))
		time.Sleep(62 * time.Second) // between rounds
		eq(t, "spawns under the limit", r.l.lines("spawn"), []string{"0s leaky spawn 100"})
		m.rss.Store(600 << 20)
		time.Sleep(6 * time.Second)
		m.rss.Store(100 << 20)
		eq(t, "spawns", r.l.lines("spawn"), []string{"0s leaky spawn 100", "1m5s leaky spawn 101"})
		var why string
		r.mu.Lock()
		for _, e := range r.reasons {
			if strings.HasPrefix(e, "leaky RUNNING>STOPPING") {
				why = e
			}
		}
		r.mu.Unlock()
		if !strings.Contains(why, "memory_max: 600.0 MiB of RSS (its process tree), over 512.0 MiB") {
			t.Errorf("stop reason %q", why)
		}
		if st := r.status("leaky"); st.State != Running || st.Restarts != 1 {
			t.Errorf("leaky: %v, %d automatic restarts", st.State, st.Restarts)
		}
	})
}

// memory_max holds from the spawn: a process still STARTING (a long start_secs, a job
// running) over it is restarted too.
func TestMemoryMaxHoldsWhileStarting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &memSampler{}
		m.rss.Store(600 << 20)
		r := newRig(t, func(o *Options) { o.Sampler = m })
		defer r.shutdown()
		r.apply(planOf(t, prog("slow", startSecs(30), func(pr *plan.Program) { pr.MemoryMax = 512 << 20 })))
		time.Sleep(7 * time.Second)
		if n := len(r.l.lines("slow spawn")); n < 2 {
			t.Errorf("%d spawns of a process over memory_max while STARTING, want it restarted", n)
		}
	})
}
