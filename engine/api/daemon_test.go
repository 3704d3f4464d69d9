package api

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The figures are the serving process's own: opening descriptors and starting goroutines
// in this process must show in the next answer.
func TestDaemonReportsItsOwnResources(t *testing.T) {
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a")
	c, _, dir := serve(t, fb)
	ctx := context.Background()

	before, err := c.Daemon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before.Pid != os.Getpid() {
		t.Errorf("pid %d, want %d", before.Pid, os.Getpid())
	}
	if before.FDs <= 0 || before.Goroutines <= 0 {
		t.Errorf("fds %d, goroutines %d: want both positive", before.FDs, before.Goroutines)
	}
	if before.HeapBytes == 0 || before.StackBytes == 0 || before.Threads <= 0 {
		t.Errorf("heap %d, stacks %d, threads %d: want all positive", before.HeapBytes, before.StackBytes, before.Threads)
	}
	if before.RSSBytes < 1<<20 {
		t.Errorf("rss %d bytes; a Go process holds at least 1 MiB", before.RSSBytes)
	}
	if before.UptimeS <= 0 || before.UptimeS > time.Since(started).Seconds()+1 {
		t.Errorf("uptime %.3fs", before.UptimeS)
	}

	const extra = 5
	for i := range extra {
		f, err := os.Create(filepath.Join(dir, "f"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	release := make(chan struct{})
	defer close(release)
	const more = 50 // goroutines started; a few transient ones of the server may end meanwhile
	for range more {
		go func() { <-release }()
	}
	after, err := c.Daemon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The client reuses its connection, so the descriptors opened above are the whole
	// difference; one more is tolerated in case the transport dialled again.
	if d := after.FDs - before.FDs; d < extra || d > extra+1 {
		t.Errorf("fds %d then %d after opening %d files", before.FDs, after.FDs, extra)
	}
	if d := after.Goroutines - before.Goroutines; d < more-5 {
		t.Errorf("goroutines %d then %d after starting %d", before.Goroutines, after.Goroutines, more)
	}
	if after.UptimeS < before.UptimeS {
		t.Errorf("uptime went back: %.3f then %.3f", before.UptimeS, after.UptimeS)
	}
}
