package app

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkStatusCLI200 times `starvisor status --socket S` end to end, from the CLI
// process's start to its exit, against a daemon running 200 programs. The target is a
// median under 5 ms; the metric is reported as median-ms. Each iteration also starts an
// empty Go program (empty-go-ms): this VM's speed drifts by a third within minutes, and
// the floor measured in the same loop tells what part of a figure is the machine.
func BenchmarkStatusCLI200(b *testing.B) {
	bin := starvisorBin(b)
	empty := emptyGoBin(b)
	_, sock := startDaemon(b, sleepers(200), 200)
	times := make([]time.Duration, 0, b.N)
	floor := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		times = append(times, runTimed(b, bin, "status", "--socket", sock))
		b.StopTimer()
		floor = append(floor, runTimed(b, empty))
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(median(times), "median-ms")
	b.ReportMetric(median(floor), "empty-go-ms")
}

// runTimed starts argv with its output to /dev/null, as a shell would, and returns the
// time from the start to the reaped exit. os/exec's Output would add a pipe, a reading
// goroutine and a copy of ~12 KB to each figure.
func runTimed(b *testing.B, argv ...string) time.Duration {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	start := time.Now()
	p, err := os.StartProcess(argv[0], argv, &os.ProcAttr{Files: []*os.File{nil, null, null}})
	if err != nil {
		b.Fatal(err)
	}
	st, err := p.Wait()
	d := time.Since(start)
	if err != nil || !st.Success() {
		b.Fatalf("%v: %v %v", argv, err, st)
	}
	return d
}

func median(ts []time.Duration) float64 {
	slices.Sort(ts)
	return float64(ts[len(ts)/2].Microseconds()) / 1000
}

// emptyGoBin builds `func main() {}` as the starvisor binary is built (static).
func emptyGoBin(b *testing.B) string {
	dir := b.TempDir()
	for name, text := range map[string]string{
		"go.mod":  "module empty\n\ngo 1.26\n",
		"main.go": "package main\n\nfunc main() {}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-o", "empty", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "empty")
}
