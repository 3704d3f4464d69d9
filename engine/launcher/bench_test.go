package launcher

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/plan"
)

// TestMain lets the test binary be a child that floods stdout:
// GO_WANT_HELPER_PROCESS=1 TOTAL SIZE writes TOTAL bytes of 100-byte lines in
// SIZE-byte write(2) calls.
func TestMain(m *testing.M) {
	if os.Getenv("GO_WANT_HELPER_PROCESS") == "1" {
		total, _ := strconv.Atoi(os.Args[len(os.Args)-2])
		size, _ := strconv.Atoi(os.Args[len(os.Args)-1])
		line := append(bytes.Repeat([]byte("x"), 99), '\n')
		block := bytes.Repeat(line, size/len(line)+1)[:size]
		for total > 0 {
			n, err := syscall.Write(1, block[:min(size, total)])
			if err != nil {
				os.Exit(1)
			}
			total -= n
		}
		os.Exit(0)
	}
	code := m.Run()
	if system.cgs != nil {
		system.cgs.removeIdle(nil) // cgroups kept by the tests' New() launchers, never closed
	}
	os.Exit(code)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// capture runs the helper through the launcher into a rotating log file (the
// default spec: 50 MB, 10 backups) and reports throughput and daemon CPU; after each
// run the same helper into `cat > file` (catRun), so both meet the same page cache.
func capture(b *testing.B, total, size int) (wall, cpu, catWall, catCPU time.Duration) {
	f, err := logs.Open(plan.Log{Path: filepath.Join(b.TempDir(), "x.log"), MaxBytes: 50 << 20, Backups: 10})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	spec := engine.Spec{
		Program: plan.Program{Command: []string{os.Args[0], "-test.run=^$", strconv.Itoa(total), strconv.Itoa(size)}},
		Env:     append(os.Environ(), "GO_WANT_HELPER_PROCESS=1"),
		Stdout:  f,
		Stderr:  f,
	}
	for b.Loop() {
		before, start := cpuTime(), time.Now()
		h, err := New().Start(spec)
		if err != nil {
			b.Fatal(err)
		}
		e := <-h.Done() // reported once the output reached the file
		wall += time.Since(start)
		cpu += cpuTime() - before
		syscall.Kill(-h.Pid(), syscall.SIGKILL)
		if e.Code != 0 {
			b.Fatalf("helper: %+v", e)
		}
		b.StopTimer()
		w, c := catRun(b, total, size)
		catWall, catCPU = catWall+w, catCPU+c
		b.StartTimer()
	}
	return wall, cpu, catWall, catCPU
}

// catRun runs the helper into `cat > file`: a pipe captured into a file by the plainest
// reader there is, no supervisor at all (cat blocks in read(2), 64 KiB at a time, and
// does nothing else). It returns the wall time and cat's CPU.
func catRun(b *testing.B, total, size int) (wall, cpu time.Duration) {
	out, err := os.Create(filepath.Join(b.TempDir(), "cat.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(out.Name()) // its pages gone with it, as a rotation drops a backup's
	defer out.Close()
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	writer := exec.Command(os.Args[0], "-test.run=^$", strconv.Itoa(total), strconv.Itoa(size))
	writer.Env = append(os.Environ(), "GO_WANT_HELPER_PROCESS=1")
	writer.Stdout = w
	cat := exec.Command("cat")
	cat.Stdin, cat.Stdout = r, out
	start := time.Now()
	if err := cat.Start(); err != nil {
		b.Fatal(err)
	}
	if err := writer.Start(); err != nil {
		b.Fatal(err)
	}
	r.Close()
	w.Close()
	werr, cerr := writer.Wait(), cat.Wait()
	wall = time.Since(start)
	if werr != nil || cerr != nil {
		b.Fatalf("cat: %v %v", werr, cerr)
	}
	return wall, cat.ProcessState.UserTime() + cat.ProcessState.SystemTime()
}

// BenchmarkCapture1GiB: 1 GiB in 1 MiB writes, captured to a rotating log; beside it the
// floor, the same into `cat > file`.
func BenchmarkCapture1GiB(b *testing.B) {
	const total = 1 << 30
	wall, cpu, catWall, catCPU := capture(b, total, 1<<20)
	b.ReportMetric(float64(total)*float64(b.N)/wall.Seconds()/1e6, "MB/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/GiB")
	b.ReportMetric(float64(total)*float64(b.N)/catWall.Seconds()/1e6, "cat-MB/s")
	b.ReportMetric(catCPU.Seconds()/float64(b.N), "cat-cpu-s/GiB")
}

// BenchmarkLines: 1 M lines of 100 bytes, one write(2) each; beside it the floor, the
// same into `cat > file`.
func BenchmarkLines(b *testing.B) {
	const lines = 1_000_000
	wall, cpu, catWall, catCPU := capture(b, lines*100, 100)
	b.ReportMetric(float64(lines)*float64(b.N)/wall.Seconds(), "lines/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(lines)*float64(b.N)/catWall.Seconds(), "cat-lines/s")
	b.ReportMetric(catCPU.Seconds()/float64(b.N), "cat-cpu-s/op")
}

// BenchmarkStart200: 200 parallel starts of a program that logs a line and exits.
func BenchmarkStart200(b *testing.B) {
	f, err := logs.Open(plan.Log{Path: filepath.Join(b.TempDir(), "x.log")})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	spec := engine.Spec{Program: plan.Program{Command: []string{"/bin/echo", "hi"}, Umask: "022"}, Stdout: f}
	for b.Loop() {
		var wg sync.WaitGroup
		for range 200 {
			wg.Go(func() {
				h, err := New().Start(spec)
				if err != nil {
					b.Error(err)
					return
				}
				<-h.Done()
			})
		}
		wg.Wait()
	}
	b.ReportMetric(200*float64(b.N)/b.Elapsed().Seconds(), "starts/s")
}

// BenchmarkBareSpawn200: for scale, what the start of 200 `sleep`s costs this machine
// with no supervisor around it: os/exec, 8 at a time, two pipes each, no cgroup, no log,
// no state file; the time until every fork+exec returned.
func BenchmarkBareSpawn200(b *testing.B) {
	var spawning time.Duration
	for b.Loop() {
		var mu sync.Mutex
		var procs []*os.Process
		var files []*os.File
		slots := make(chan struct{}, 8)
		var wg sync.WaitGroup
		start := time.Now()
		for range 200 {
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				r1, w1, err1 := os.Pipe()
				r2, w2, err2 := os.Pipe()
				if err1 != nil || err2 != nil {
					b.Error(err1, err2)
					return
				}
				p, err := os.StartProcess("/bin/sleep", []string{"sleep", "3600"}, &os.ProcAttr{
					Files: []*os.File{nil, w1, w2}, Sys: &syscall.SysProcAttr{Setpgid: true}})
				w1.Close()
				w2.Close()
				mu.Lock()
				defer mu.Unlock()
				files = append(files, r1, r2)
				if err != nil {
					b.Error(err)
					return
				}
				procs = append(procs, p)
			})
		}
		wg.Wait()
		spawning += time.Since(start)
		for _, p := range procs {
			syscall.Kill(-p.Pid, syscall.SIGKILL)
			p.Wait()
		}
		for _, f := range files {
			f.Close()
		}
	}
	b.ReportMetric(spawning.Seconds()/float64(b.N), "s-200-spawned")
}

// BenchmarkRestartCycle: one process name spawned and reaped over and over (/bin/true),
// as a crashing program's restarts: wall and this process's CPU (user + kernel, so
// the cgroup file operations count) per spawn-to-exit-reported cycle.
func BenchmarkRestartCycle(b *testing.B) {
	l := New()
	spec := engine.Spec{Program: plan.Program{Command: []string{"/bin/true"}},
		Env: []string{engine.EnvProcessName + "=r"}}
	before := cpuTime()
	for b.Loop() {
		h, err := l.Start(spec)
		if err != nil {
			b.Fatal(err)
		}
		<-h.Done()
	}
	b.ReportMetric(float64((cpuTime()-before).Microseconds())/float64(b.N), "cpu-µs/cycle")
	if c, ok := l.(interface{ Close() }); ok {
		c.Close()
	}
}

// BenchmarkStopAll200: 200 sleeps SIGTERMed at once; the time until every exit is
// reported, and this process's CPU meanwhile. Each round starts them again first
// (not timed), with the same names.
func BenchmarkStopAll200(b *testing.B) {
	l := New()
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		hs := make([]engine.Handle, 200)
		for i := range hs {
			h, err := l.Start(engine.Spec{Program: plan.Program{Command: []string{"sleep", "3600"}},
				Env: []string{"PATH=/bin:/usr/bin", engine.EnvProcessName + "=s" + strconv.Itoa(i)}})
			if err != nil {
				b.Fatal(err)
			}
			hs[i] = h
		}
		b.StartTimer()
		before := cpuTime()
		for _, h := range hs {
			h.Signal(syscall.SIGTERM, false)
		}
		for _, h := range hs {
			<-h.Done()
		}
		cpu += cpuTime() - before
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/stop-all")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/stop-all")
	if c, ok := l.(interface{ Close() }); ok {
		c.Close()
	}
}
