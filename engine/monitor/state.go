package monitor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/natefinch/atomic"
	"github.com/shirou/gopsutil/v4/process"
	"github.com/starvisor/starvisor/engine"
)

// Entry is one started process as the state file records it.
type Entry struct {
	Pid   int   `json:"pid"`
	Start int64 `json:"start"` // creation time, ms since the epoch: tells a recycled pid apart
}

// StateFile records the daemon's live children in Path (JSON, written atomically
// on every change), so the next daemon can stop those this one left behind.
// The zero value plus a Path is ready; it is the engine's Recorder.
type StateFile struct {
	Path  string
	Grace time.Duration // how long CleanStrays waits after TERM before KILL; 0 means 2s

	mu      sync.Mutex
	entries map[string]Entry
	dirty   bool
	writing bool
	err     error
}

// Started records pid as process's current incarnation.
func (f *StateFile) Started(proc string, pid int) {
	e := Entry{Pid: pid}
	if p, err := process.NewProcess(int32(pid)); err == nil {
		e.Start, _ = p.CreateTime()
	}
	f.change(func(m map[string]Entry) { m[proc] = e })
}

// Exited forgets process if pid is still its recorded incarnation.
func (f *StateFile) Exited(proc string, pid int) {
	f.change(func(m map[string]Entry) {
		if m[proc].Pid == pid {
			delete(m, proc)
		}
	})
}

// Err returns the last error writing the file, if any.
func (f *StateFile) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Entries returns a copy of what the file records.
func (f *StateFile) Entries() map[string]Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]Entry, len(f.entries))
	for k, v := range f.entries {
		out[k] = v
	}
	return out
}

// change applies edit and writes the file. Writes are coalesced: while one caller
// writes, others only mark the state dirty and return, and the writer loops until
// it has written the latest state. Starts never queue behind fsyncs.
func (f *StateFile) change(edit func(map[string]Entry)) {
	f.mu.Lock()
	if f.entries == nil {
		f.entries = map[string]Entry{}
	}
	edit(f.entries)
	f.dirty = true
	if f.writing {
		f.mu.Unlock()
		return
	}
	f.writing = true
	for f.dirty {
		f.dirty = false
		data, err := json.MarshalIndent(f.entries, "", "  ")
		f.mu.Unlock()
		if err == nil {
			err = os.MkdirAll(filepath.Dir(f.Path), 0o755)
		}
		if err == nil {
			err = atomic.WriteFile(f.Path, bytes.NewReader(append(data, '\n')))
		}
		f.mu.Lock()
		if err != nil {
			f.err = fmt.Errorf("monitor: write state %s: %w", f.Path, err)
		}
	}
	f.writing = false
	f.mu.Unlock()
}

var _ engine.Recorder = (*StateFile)(nil)
