package launcher

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/starvisor/starvisor/engine/procfs"
)

// environHas reports whether pid's environment holds the exact entry kv
// ("KEY=VALUE"). A zombie, or a process of another user, has none readable.
func environHas(pid int, kv string) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	want := []byte(kv + "\x00")
	return bytes.HasPrefix(env, want) || bytes.Contains(env, append([]byte{0}, want...))
}

// A burst of group stops (stop all, shutdown) signals hundreds of trees at once, and each
// needs a /proc scan taken after its request, or a process forked just before it would be
// missed. freshScan coalesces them: a caller that finds a scan already running joins the
// next one, which starts when that one ends, so a burst costs two scans instead of one
// per process.
type scanResult struct {
	done  chan struct{}
	procs []procfs.Stat // read-only once done is closed
}

var scans struct {
	mu      sync.Mutex
	current *scanResult  // the scan running now, nil when none
	pending *scanResult  // the next scan: its waiters asked after current began
	count   atomic.Int64 // scans run, for tests
}

// freshScan returns a /proc scan that began after the call.
func freshScan() []procfs.Stat {
	scans.mu.Lock()
	if scans.current == nil {
		r := scans.pending
		if r == nil {
			r = &scanResult{done: make(chan struct{})}
		}
		scans.pending = nil
		return runScan(r)
	}
	if scans.pending == nil {
		scans.pending = &scanResult{done: make(chan struct{})}
	}
	mine := scans.pending
	for {
		cur := scans.current
		scans.mu.Unlock()
		select {
		case <-mine.done:
			return mine.procs
		case <-cur.done:
		}
		scans.mu.Lock()
		if scans.current == nil && scans.pending == mine {
			scans.pending = nil
			return runScan(mine)
		}
		if scans.current == nil { // mine ran and ended meanwhile
			scans.mu.Unlock()
			<-mine.done
			return mine.procs
		}
	}
}

// runScan runs r with scans.mu held and no scan running; it returns with the lock released.
func runScan(r *scanResult) []procfs.Stat {
	scans.current = r
	scans.mu.Unlock()
	scans.count.Add(1)
	r.procs = procfs.Scan()
	scans.mu.Lock()
	scans.current = nil
	scans.mu.Unlock()
	close(r.done)
	return r.procs
}
