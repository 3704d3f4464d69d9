package api

import (
	"bytes"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// started is when the daemon's process began serving, near enough: the package is
// initialised at process start.
var started = time.Now()

// DaemonResponse answers GET /v1/daemon: the daemon process's own resource use, so a
// test or an operator can watch it for leaks from outside.
type DaemonResponse struct {
	Pid        int     `json:"pid"`
	Goroutines int     `json:"goroutines"`
	FDs        int     `json:"fds"`       // open descriptors; -1 when /proc cannot say
	RSSBytes   int64   `json:"rss_bytes"` // resident set; -1 when /proc cannot say
	UptimeS    float64 `json:"uptime_s"`
	// Where the Go runtime's own memory goes (runtime.MemStats): live heap spans and
	// goroutine stacks, the two that grow with the number of programs.
	HeapBytes  uint64 `json:"heap_bytes"`
	StackBytes uint64 `json:"stack_bytes"`
	Threads    int    `json:"threads"`
	// Version: the build the daemon runs (Server.Version); Replaced: its binary was
	// replaced or removed since it started (an upgrade that needs a restart to take).
	Version  string `json:"version,omitempty"`
	Replaced bool   `json:"replaced,omitempty"`
}

// daemon reads the figures fresh on each request; it takes no lock the engine holds.
func (s *Server) daemon(w http.ResponseWriter, r *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m) // stops the world for microseconds; this is a debug request
	threads, _ := runtime.ThreadCreateProfile(nil)
	writeJSON(w, http.StatusOK, DaemonResponse{
		HeapBytes:  m.HeapInuse,
		StackBytes: m.StackInuse,
		Threads:    threads,
		Pid:        os.Getpid(),
		Goroutines: runtime.NumGoroutine(),
		FDs:        openFDs(),
		RSSBytes:   rssBytes(),
		UptimeS:    time.Since(started).Seconds(),
		Version:    s.Version,
		Replaced:   replaced(),
	})
}

// replaced says whether this process's binary is no longer at its path (deleted, or a
// new one moved over it: the kernel names it "(deleted)").
func replaced() bool {
	exe, err := os.Readlink("/proc/self/exe")
	return err == nil && strings.HasSuffix(exe, " (deleted)")
}

// openFDs counts /proc/self/fd, less the descriptor the listing itself holds open.
func openFDs() int {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return -1
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return -1
	}
	return len(names) - 1
}

// rssBytes is the second field of /proc/self/statm (resident pages) in bytes.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return -1
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}
