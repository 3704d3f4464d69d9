package monitor

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/procfs"
)

// forget drops the CPU mark of a process not sampled for this long.
const forget = 10 * time.Minute

// ticksPerSec is USER_HZ (gopsutil assumes the same by default).
const ticksPerSec = procfs.TicksPerSec

// Sampler measures CPU and RSS of processes and their trees in one pass over the
// process table per call (see scanProcs). CPU percent is over the time since the
// previous sample of that process (since the process started, at the first one).
type Sampler struct {
	mu       sync.Mutex // one round at a time: the marks are read and replaced
	last     map[key]mark
	pageSize uint64
}

// key tells a recycled pid apart by its start time.
type key struct {
	pid   int
	start uint64 // clock ticks after boot
}

type mark struct {
	cpu uint64 // utime+stime ticks
	at  time.Time
}

// New returns a Sampler.
func New() engine.Sampler {
	return &Sampler{last: map[key]mark{}, pageSize: uint64(os.Getpagesize())}
}

// Sample measures pid alone and with all its descendants.
func (s *Sampler) Sample(pid int) (engine.Usage, error) {
	u, ok := s.SampleAll([]int{pid})[pid]
	if !ok {
		return engine.Usage{}, fmt.Errorf("monitor.Sample: pid %d: no such process", pid)
	}
	return u, nil
}

// SampleAll measures each pid alone and with all its descendants, reading the
// process table once; a pid that is gone (or a zombie: it has exited) is absent from
// the result.
func (s *Sampler) SampleAll(pids []int) map[int]engine.Usage {
	return s.SampleGroups(pids, nil)
}

// SampleGroups is SampleAll with, in the tree of each pid of members, the processes
// listed for it and their descendants, each counted once (engine.GroupSampler).
func (s *Sampler) SampleGroups(pids []int, members map[int][]int) map[int]engine.Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	uptime, err := uptimeSecs()
	if err != nil {
		uptime = -1 // first samples then show 0% instead of a wrong figure
	}
	procs := scanProcs()
	byPid := make(map[int]*procfs.Stat, len(procs))
	for i := range procs {
		if !procs[i].Zombie() {
			byPid[procs[i].Pid] = &procs[i]
		}
	}
	children := childMap(procs)
	own := map[int]engine.Usage{} // per process, each measured once even if in two trees
	measure := func(p *procfs.Stat) engine.Usage {
		if u, ok := own[p.Pid]; ok {
			return u
		}
		u := engine.Usage{RSSBytes: p.RSSPages * s.pageSize, CPUPercent: s.cpuPercent(p, now, uptime)}
		own[p.Pid] = u
		return u
	}
	out := make(map[int]engine.Usage, len(pids))
	for _, pid := range pids {
		p, ok := byPid[pid]
		if !ok {
			continue
		}
		u := measure(p)
		u.TreeCPUPercent, u.TreeRSSBytes = u.CPUPercent, u.RSSBytes
		tree := treeOf(children, pid)
		if extra := members[pid]; len(extra) > 0 {
			seen := map[int]bool{}
			for _, q := range tree {
				seen[q] = true
			}
			for _, m := range extra {
				for _, q := range treeOf(children, m) {
					if !seen[q] {
						seen[q] = true
						tree = append(tree, q)
					}
				}
			}
		}
		for _, child := range tree[1:] {
			if c, ok := byPid[child]; ok {
				cu := measure(c)
				u.TreeCPUPercent += cu.CPUPercent
				u.TreeRSSBytes += cu.RSSBytes
			}
		}
		out[pid] = u
	}
	for k, m := range s.last {
		if now.Sub(m.at) > forget {
			delete(s.last, k)
		}
	}
	return out
}

// cpuPercent is p's CPU use since its previous mark, or since it started, and
// leaves a new mark. Called with s.mu held.
func (s *Sampler) cpuPercent(p *procfs.Stat, now time.Time, uptime float64) float64 {
	k := key{p.Pid, p.StartTicks}
	prev, ok := s.last[k]
	s.last[k] = mark{cpu: p.CPUTicks, at: now}
	var dt float64
	var used uint64
	if ok {
		dt = now.Sub(prev.at).Seconds()
		used = p.CPUTicks - min(prev.cpu, p.CPUTicks)
	} else {
		dt = uptime - float64(p.StartTicks)/ticksPerSec
		used = p.CPUTicks
	}
	if dt <= 0 {
		return 0
	}
	return float64(used) / ticksPerSec / dt * 100
}

// uptimeSecs reads the seconds since boot, the clock of stat's start times.
func uptimeSecs() (float64, error) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, fmt.Errorf("monitor.uptimeSecs: %w", err)
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0, fmt.Errorf("monitor.uptimeSecs: empty /proc/uptime")
	}
	return strconv.ParseFloat(string(f[0]), 64)
}
