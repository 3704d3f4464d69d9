package monitor

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/procfs"
)

// childrenOf lists pid's direct children from the process table.
func childrenOf(pid int) []int { return childMap(scanProcs())[pid] }

// A round measures every requested pid once: a tree counts grandchildren, the CPU
// of a busy descendant shows in its own figure and in every tree above it, and a
// pid that is gone is absent.
func TestSampleAllMeasuresTreesInOneRound(t *testing.T) {
	is := is.New(t)
	// root sh -> mid sh (busy) -> sleep (grandchild); root also has a sleep.
	root := spawn(t, "sh -c 'sleep 1000 & while :; do :; done' & sleep 1000 & wait")
	dead := spawn(t, "exec sleep 1000")
	var mid, grand int
	eventually(t, "the tree", func() bool {
		tree := descendants(scanProcs(), root.Process.Pid)
		if len(tree) != 4 {
			return false
		}
		for _, c := range childrenOf(root.Process.Pid) {
			if g := childrenOf(c); len(g) == 1 {
				mid, grand = c, g[0]
			}
		}
		return grand != 0
	})
	b := New().(engine.BatchSampler)
	pids := []int{root.Process.Pid, mid, grand, dead.Process.Pid}
	var got map[int]engine.Usage
	eventually(t, "a busy CPU reading", func() bool {
		got = b.SampleAll(pids)
		return got[mid].CPUPercent > 30
	})
	is.Equal(len(got), 4)
	for _, pid := range pids {
		is.True(got[pid].RSSBytes > 0)
	}
	r, m, g := got[root.Process.Pid], got[mid], got[grand]
	is.Equal(g.TreeRSSBytes, g.RSSBytes) // a leaf
	is.Equal(m.TreeRSSBytes, m.RSSBytes+g.RSSBytes)
	is.True(r.TreeRSSBytes > r.RSSBytes+m.TreeRSSBytes) // plus root's own sleep
	is.True(r.TreeCPUPercent >= m.CPUPercent)
	is.True(r.CPUPercent < 30) // root only waits

	syscall.Kill(dead.Process.Pid, syscall.SIGKILL)
	eventually(t, "the killed pid to be reaped", func() bool { return !leaderAlive(dead.Process.Pid) })
	got = b.SampleAll(pids)
	_, ok := got[dead.Process.Pid]
	is.True(!ok)
	is.Equal(len(got), 3)
	_, err := b.Sample(dead.Process.Pid)
	is.True(err != nil)
}

// CPU is measured since the previous mark of the same process; a recycled pid (same
// pid, another start time) starts afresh from its own start.
func TestCPUMarkIsKeyedByStartTime(t *testing.T) {
	is := is.New(t)
	s := New().(*Sampler)
	t0 := time.Now()
	uptime := 1000.0                                                // s since boot
	p := procfs.Stat{Pid: 7, StartTicks: 90000, CPUTicks: 500}      // started at 900 s, 5 s used
	is.Equal(s.cpuPercent(&p, t0, uptime), 5.0)                     // 5 s of 100 s since it started
	p.CPUTicks += 100                                               // 1 s more
	is.Equal(s.cpuPercent(&p, t0.Add(2*time.Second), uptime), 50.0) // over the 2 s since the mark
	other := procfs.Stat{Pid: 7, StartTicks: 99000, CPUTicks: 300}  // same pid, started at 990 s
	is.Equal(s.cpuPercent(&other, t0.Add(4*time.Second), uptime), 30.0)
}

// BenchmarkSampleAll200 is one round over 200 live children.
func BenchmarkSampleAll200(b *testing.B) {
	pids := make([]int, 0, 200)
	for range 200 {
		cmd := exec.Command("sleep", "1000")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		b.Cleanup(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		})
		pids = append(pids, cmd.Process.Pid)
	}
	s := New().(engine.BatchSampler)
	if got := s.SampleAll(pids); len(got) != 200 {
		b.Fatalf("measured %d of 200", len(got))
	}
	b.ResetTimer()
	for b.Loop() {
		s.SampleAll(pids)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
	b.ReportMetric(float64(len(scanProcs())), "procs")
}

// BenchmarkUnrecordedScan: what a starting daemon spends looking for children of a dead
// predecessor that its state file did not list (one read of each process's environ).
func BenchmarkUnrecordedScan(b *testing.B) {
	dead := Entry{Pid: 999999, Start: 1}
	n := len(scanProcs())
	for b.Loop() {
		unrecorded(dead, nil, scanProcs())
	}
	b.ReportMetric(float64(n), "host-processes")
}
