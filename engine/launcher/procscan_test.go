package launcher

import (
	"os"
	"sync"
	"testing"
)

// TestFreshScanCoalesces: a burst of concurrent callers (a stop of many group programs)
// shares scans instead of running one each, and every caller sees the live processes.
func TestFreshScanCoalesces(t *testing.T) {
	const callers = 50
	before := scans.count.Load()
	start := make(chan struct{})
	var wg sync.WaitGroup
	found := make([]bool, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for _, p := range freshScan() {
				if p.Pid == os.Getpid() {
					found[i] = true
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	for i, ok := range found {
		if !ok {
			t.Fatalf("caller %d: its scan does not list this process", i)
		}
	}
	if n := scans.count.Load() - before; n >= callers/2 {
		t.Errorf("%d callers ran %d scans; want them shared", callers, n)
	} else {
		t.Logf("%d callers, %d scans", callers, n)
	}
}
