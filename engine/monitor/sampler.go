package monitor

import (
	"fmt"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/process"
	"github.com/starvisor/starvisor/engine"
)

// forget drops the CPU mark of a pid not sampled for this long.
const forget = 10 * time.Minute

// Sampler measures CPU and RSS with gopsutil. CPU percent is over the time since
// the previous sample of that pid (since the process started, at the first one).
type Sampler struct {
	mu   sync.Mutex
	last map[int]mark
}

type mark struct {
	created int64   // ms since the epoch, tells a recycled pid apart
	cpu     float64 // user+system seconds
	at      time.Time
}

// New returns a Sampler.
func New() engine.Sampler { return &Sampler{last: map[int]mark{}} }

// Sample measures pid alone and with all its descendants.
func (s *Sampler) Sample(pid int) (engine.Usage, error) {
	now := time.Now()
	cpu, rss, err := s.measure(pid, now)
	if err != nil {
		return engine.Usage{}, fmt.Errorf("monitor.Sample: pid %d: %w", pid, err)
	}
	u := engine.Usage{CPUPercent: cpu, RSSBytes: rss, TreeCPUPercent: cpu, TreeRSSBytes: rss}
	for _, child := range descendants(scanProcs(), pid)[1:] {
		if cpu, rss, err := s.measure(child, now); err == nil { // it may just have exited
			u.TreeCPUPercent += cpu
			u.TreeRSSBytes += rss
		}
	}
	s.prune(now)
	return u, nil
}

func (s *Sampler) measure(pid int, now time.Time) (float64, uint64, error) {
	p, err := process.NewProcess(int32(pid))
	if err != nil {
		return 0, 0, err
	}
	created, err := p.CreateTime()
	if err != nil {
		return 0, 0, err
	}
	times, err := p.Times()
	if err != nil {
		return 0, 0, err
	}
	mem, err := p.MemoryInfo()
	if err != nil {
		return 0, 0, err
	}
	total := times.User + times.System
	s.mu.Lock()
	prev, ok := s.last[pid]
	s.last[pid] = mark{created: created, cpu: total, at: now}
	s.mu.Unlock()
	if !ok || prev.created != created {
		prev = mark{at: time.UnixMilli(created)}
	}
	pct := 0.0
	if dt := now.Sub(prev.at).Seconds(); dt > 0 {
		pct = max(0, (total-prev.cpu)/dt*100)
	}
	return pct, mem.RSS, nil
}

func (s *Sampler) prune(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for pid, m := range s.last {
		if now.Sub(m.at) > forget {
			delete(s.last, pid)
		}
	}
}
