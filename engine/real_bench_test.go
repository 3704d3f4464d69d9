package engine_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/launcher"
	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/monitor"
	"github.com/starvisor/starvisor/engine/plan"
)

// The engine with the real launcher, log files and state file, in-process, for
// timings the daemon's ms-resolution event lines cannot give. Children are /bin/sh
// or sleep(1); each benchmark kills every process group it started.

// spawnLog wraps the real launcher and notes when each spawn returned.
type spawnLog struct {
	engine.Launcher
	mu     sync.Mutex
	at     map[string][]time.Time // process -> spawn times
	called map[string][]time.Time // process -> when Start was called
	reaped map[string][]time.Time // process -> Exit.Time (reaped, before the output settled)
	pgids  []int
}

// exitNote passes the exit on, noting its Time, through the real handle's NotifyExit
// as the engine uses it (no goroutine per process, as in production).
type exitNote struct {
	engine.Handle
	note func(engine.Exit)
}

func (h *exitNote) NotifyExit(fn func(engine.Exit)) {
	h.Handle.(interface{ NotifyExit(func(engine.Exit)) }).NotifyExit(func(e engine.Exit) {
		h.note(e)
		fn(e)
	})
}

// Forget and Close reach the real launcher, as they would without the wrapper.
func (l *spawnLog) Forget(names ...string) { l.Launcher.(engine.LauncherCloser).Forget(names...) }
func (l *spawnLog) Close()                 { l.Launcher.(engine.LauncherCloser).Close() }

func (l *spawnLog) Start(spec engine.Spec) (engine.Handle, error) {
	called := time.Now()
	h, err := l.Launcher.Start(spec)
	now := time.Now()
	if err != nil {
		return h, err
	}
	name := spec.Program.ProcessName
	l.mu.Lock()
	if l.called == nil {
		l.called, l.reaped = map[string][]time.Time{}, map[string][]time.Time{}
	}
	l.at[name] = append(l.at[name], now)
	l.called[name] = append(l.called[name], called)
	l.pgids = append(l.pgids, h.Pid())
	l.mu.Unlock()
	return &exitNote{Handle: h, note: func(e engine.Exit) {
		l.mu.Lock()
		l.reaped[name] = append(l.reaped[name], e.Time)
		l.mu.Unlock()
	}}, nil
}

func (l *spawnLog) killAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, pg := range l.pgids {
		syscall.Kill(-pg, syscall.SIGKILL)
	}
}

func realPlan(b *testing.B, dir string, n int, mod func(*plan.Program)) *plan.Plan {
	var progs []plan.Program
	for i := range n {
		pr := plan.Defaults()
		pr.Name = "p" + strconv.Itoa(i)
		pr.ProcessName = pr.Name
		pr.Command = []string{"sleep", "3600"}
		pr.StartSecs = 0
		pr.Stdout = plan.DefaultLog(filepath.Join(dir, "log", pr.Name+".log"))
		pr.Stderr = plan.DefaultLog(filepath.Join(dir, "log", pr.Name+".err.log"))
		if mod != nil {
			mod(&pr)
		}
		progs = append(progs, pr)
	}
	p := &plan.Plan{Root: dir, Entry: "deploy.star", Programs: progs}
	if err := p.Finish(); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkRealStart200: Apply to all RUNNING for 200 start_secs=0 sleeps, with the
// production collaborators (log files, state file).
func BenchmarkRealStart200(b *testing.B) {
	for _, withState := range []bool{false, true} {
		b.Run(fmt.Sprintf("statefile=%v", withState), func(b *testing.B) {
			for b.Loop() {
				dir := b.TempDir()
				l := &spawnLog{Launcher: launcher.New(), at: map[string][]time.Time{}}
				b.Cleanup(l.killAll)
				running := make(chan struct{}, 200)
				o := engine.Options{Launcher: l, Logs: logs.Opener{}, OnEvent: func(e engine.Event) {
					if e.To == engine.Running {
						running <- struct{}{}
					}
				}}
				if withState {
					o.Recorder = &monitor.StateFile{Path: filepath.Join(dir, "state.json")}
				}
				s := engine.New(o)
				p := realPlan(b, dir, 200, nil)
				t0 := time.Now()
				if _, err := s.Apply(context.Background(), p); err != nil {
					b.Fatal(err)
				}
				for range 200 {
					<-running
				}
				b.ReportMetric(time.Since(t0).Seconds()*1000, "ms-to-running")
				if err := s.Shutdown(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCrashRestart: programs that crash (exit 1) after running 1.1 s, past
// start_secs and the 1-s respawn spacing, so each exit is restarted at once. The
// child (bash) writes the time just before it exits, with a builtin ($EPOCHREALTIME:
// no process of its own, whose exit and the shell's wake-up would count too); the
// latency is from there to the launcher's return for the next process (the child's
// own exit, reap, log settle, engine, fork+exec).
// "together": the four crash at the same moment, each restart competing with three
// others; "alone": their run times differ (1.1, 1.35, 1.6, 1.85 s), so a crash mostly
// has the machine to itself.
func BenchmarkCrashRestart(b *testing.B) {
	for _, stagger := range []time.Duration{0, 250 * time.Millisecond} {
		b.Run(map[bool]string{true: "together", false: "alone"}[stagger == 0], func(b *testing.B) {
			crashRestart(b, stagger)
		})
	}
}

func crashRestart(b *testing.B, stagger time.Duration) {
	const progs, cycles = 4, 5
	bash, err := exec.LookPath("bash")
	if err != nil {
		b.Skip("no bash: its $EPOCHREALTIME stamps the crash")
	}
	for b.Loop() {
		dir := b.TempDir()
		l := &spawnLog{Launcher: launcher.New(), at: map[string][]time.Time{}}
		b.Cleanup(l.killAll)
		i := 0
		p := realPlan(b, dir, progs, func(pr *plan.Program) {
			stamp := filepath.Join(dir, pr.Name+".exit")
			run := 1100*time.Millisecond + time.Duration(i)*stagger
			i++
			// The stamp is the last thing before exit, in microseconds.
			pr.Command = []string{bash, "-c", fmt.Sprintf("sleep %.3f; echo ${EPOCHREALTIME/[.,]/} >> %s; exit 1", run.Seconds(), stamp)}
			pr.StartSecs = 1
			pr.Autorestart = plan.RestartUnexpected
		})
		s := engine.New(engine.Options{Launcher: l, Logs: logs.Opener{},
			Recorder: &monitor.StateFile{Path: filepath.Join(dir, "state.json")}})
		if _, err := s.Apply(context.Background(), p); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(time.Duration(cycles+3) * (1500*time.Millisecond + progs*stagger))
		for {
			l.mu.Lock()
			done := true
			for _, pr := range p.Programs {
				done = done && len(l.at[pr.ProcessName]) > cycles
			}
			l.mu.Unlock()
			if done {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("not enough restarts")
			}
			time.Sleep(50 * time.Millisecond) // polling real processes; nothing to wait on
		}
		if err := s.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
		var lat, reap, engineLat, spawn []time.Duration
		for _, pr := range p.Programs {
			data, err := os.ReadFile(filepath.Join(dir, pr.Name+".exit"))
			if err != nil {
				b.Fatal(err)
			}
			var exits []time.Time
			for _, f := range slices.Collect(func(yield func(string) bool) {
				start := 0
				for i, c := range data {
					if c == '\n' {
						if !yield(string(data[start:i])) {
							return
						}
						start = i + 1
					}
				}
			}) {
				us, err := strconv.ParseInt(f, 10, 64)
				if err != nil {
					b.Fatal(err)
				}
				exits = append(exits, time.UnixMicro(us))
			}
			l.mu.Lock()
			spawns := l.at[pr.ProcessName]
			l.mu.Unlock()
			called, reaped := l.called[pr.ProcessName], l.reaped[pr.ProcessName]
			for k := 0; k < cycles && k+1 < len(spawns) && k < len(exits) && k < len(reaped); k++ {
				lat = append(lat, spawns[k+1].Sub(exits[k]))
				reap = append(reap, reaped[k].Sub(exits[k]))
				engineLat = append(engineLat, called[k+1].Sub(reaped[k]))
				spawn = append(spawn, spawns[k+1].Sub(called[k+1]))
			}
		}
		for _, part := range []struct {
			name string
			d    []time.Duration
		}{{"reap", reap}, {"settle+engine", engineLat}, {"fork+exec", spawn}} {
			slices.Sort(part.d)
			b.ReportMetric(float64(part.d[len(part.d)/2].Microseconds())/1000, "ms-median-"+part.name)
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-median")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "ms-worst")
		b.ReportMetric(float64(len(lat)), "restarts")
	}
}

// BenchmarkRealMemory: where the daemon's memory per supervised process goes (Go
// heap and goroutine stacks), for 500 sleeps with log files.
func BenchmarkRealMemory(b *testing.B) {
	const n = 500
	for b.Loop() {
		dir := b.TempDir()
		l := &spawnLog{Launcher: launcher.New(), at: map[string][]time.Time{}}
		b.Cleanup(l.killAll)
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		g0 := runtime.NumGoroutine()
		running := make(chan struct{}, n)
		s := engine.New(engine.Options{Launcher: l, Logs: logs.Opener{}, OnEvent: func(e engine.Event) {
			if e.To == engine.Running {
				running <- struct{}{}
			}
		}})
		if _, err := s.Apply(context.Background(), realPlan(b, dir, n, nil)); err != nil {
			b.Fatal(err)
		}
		for range n {
			<-running
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/n/1024, "KiB-heap/proc")
		b.ReportMetric(float64(int64(m1.StackInuse)-int64(m0.StackInuse))/n/1024, "KiB-stack/proc") // may be < 0: stacks shrink
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/proc")
		if err := s.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
