package app

import (
	"os/exec"
	"slices"
	"testing"
	"time"
)

// BenchmarkStatusCLI200 times `starvisor status --socket S` end to end, from the CLI
// process's start to its exit, against a daemon running 200 programs. The target is a
// median under 5 ms; the metric is reported as median-ms.
func BenchmarkStatusCLI200(b *testing.B) {
	bin := starvisorBin(b)
	_, sock := startDaemon(b, sleepers(200), 200)
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		out, err := exec.Command(bin, "status", "--socket", sock).Output()
		times = append(times, time.Since(start))
		if err != nil || len(out) == 0 {
			b.Fatalf("status: %v\n%s", err, out)
		}
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
}
