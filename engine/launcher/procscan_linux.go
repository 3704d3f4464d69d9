package launcher

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// procInfo is what tree signalling and orphan reaping need from /proc/PID/stat.
type procInfo struct {
	pid, ppid, pgid, sid int
	state                byte
	start                uint64 // start time after boot, in ticks: tells a recycled pid apart
}

// statBuf holds any /proc/PID/stat line: 52 numbers and a comm of at most 64 bytes.
const statBuf = 2048

// readProc parses /proc/PID/stat with plain syscalls into buf. comm may hold
// spaces and parentheses, so the fields are counted from the last ')'.
func readProc(pid int, buf []byte) (procInfo, bool) {
	fd, err := syscall.Open("/proc/"+strconv.Itoa(pid)+"/stat", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return procInfo{}, false
	}
	n, err := syscall.Read(fd, buf)
	syscall.Close(fd)
	if err != nil || n <= 0 {
		return procInfo{}, false
	}
	b := buf[:n]
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procInfo{}, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 || len(f[0]) == 0 {
		return procInfo{}, false
	}
	num := func(k int) int { v, _ := strconv.Atoi(string(f[k])); return v }
	start, _ := strconv.ParseUint(string(f[19]), 10, 64)
	return procInfo{pid: pid, state: f[0][0], ppid: num(1), pgid: num(2), sid: num(3), start: start}, true
}

// scanProcs reads every process's stat in one pass over /proc.
func scanProcs() []procInfo {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	out := make([]procInfo, 0, len(names))
	var buf [statBuf]byte
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if p, ok := readProc(pid, buf[:]); ok {
			out = append(out, p)
		}
	}
	return out
}

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
	procs []procInfo // read-only once done is closed
}

var scans struct {
	mu      sync.Mutex
	current *scanResult  // the scan running now, nil when none
	pending *scanResult  // the next scan: its waiters asked after current began
	count   atomic.Int64 // scans run, for tests
}

// freshScan returns a /proc scan that began after the call.
func freshScan() []procInfo {
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
func runScan(r *scanResult) []procInfo {
	scans.current = r
	scans.mu.Unlock()
	scans.count.Add(1)
	r.procs = scanProcs()
	scans.mu.Lock()
	scans.current = nil
	scans.mu.Unlock()
	close(r.done)
	return r.procs
}
