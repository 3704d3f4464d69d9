package monitor

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/natefinch/atomic"
	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/plan"
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
	Path string
	Name string // how messages name it, when Path is not for people (/proc/self/fd/N/...)
	// Previous is the identity ("pid.start", see Self) of the bundle's last daemon as
	// another record kept it (the bundle's lock): its children are found by it when
	// the file names no daemon (removed with its folder, or corrupt) and it died.
	Previous string
	Grace    time.Duration // how long CleanStrays waits after TERM before KILL; 0 means 2s
	// StopAs says how CleanStrays stops a stray of the named process: as its program
	// is stopped. Not found (or nil): TERM to its group, KILL after Grace.
	StopAs func(process string) (StopSpec, bool)
	// Stopping, when set, hears which strays CleanStrays (or StopLeft) is about to stop,
	// which may take their stop timeouts: said before, a start-up waiting on them was
	// silent.
	Stopping func([]Stray)
	// Hurry, when closed, has CleanStrays (StopLeft) kill what is left at once, their stop
	// timeouts cut short: a second Ctrl-C of a starting up.
	Hurry <-chan struct{}
	// Warn, when set, hears when writing the file starts failing (its error) and when it
	// works again (nil): the daemon's log says so as it happens. Called with the file's
	// lock held.
	Warn func(err error)
	// PreviousDaemon is the pid of the daemon that wrote the file and died, once
	// CleanStrays read it (0: none): its cgroups may hold what no record names.
	PreviousDaemon int

	mu      sync.Mutex
	written *sync.Cond // broadcast after each write
	entries map[string]Entry
	gen     uint64 // bumped by every change
	saved   uint64 // the last gen written (or that failed to be)
	writing bool
	buf     []byte   // the writer's; reused across writes
	names   []string // the writer's too
	err     error
}

// Started records pid as process's current incarnation, and returns once the file
// has it: a daemon killed right after the engine reports the start still leaves its
// successor a way to find the process. startTicks, when not 0, saves reading the
// process's start time from /proc (a path walk of ~50 µs in a start burst).
func (f *StateFile) Started(proc string, pid int, startTicks uint64) {
	e := Entry{Pid: pid}
	if startTicks != 0 {
		e.Start, _ = startAt(startTicks)
	} else {
		e.Start, _ = startMillis(pid)
	}
	f.change(func(m map[string]Entry) { m[proc] = e })
}

// Exited forgets process if pid is still its recorded incarnation, and returns once
// the file says so (the engine calls it off its own path).
func (f *StateFile) Exited(proc string, pid int) {
	f.change(func(m map[string]Entry) {
		if m[proc].Pid == pid {
			delete(m, proc)
		}
	})
}

// MoveTo writes the file at path from now on, and once there at once: its folder was
// removed (rm -rf run/) and made again, and the next daemon looks for it there.
func (f *StateFile) MoveTo(path string) {
	f.mu.Lock()
	f.Path = path
	f.mu.Unlock()
	f.change(func(map[string]Entry) {})
}

// Err returns the error of the last write of the file, if it failed.
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

// change applies edit and returns once a write that includes it is done. Writes are
// group commits: changes made during a write wait for the next, which writes them
// all. The next write is made by a caller that needs it, not by a goroutine of the
// file's own: in a burst of 200 starts such a goroutine waited behind the spawning
// ones for a CPU (13 to 40 ms each time, on 2 cores), and every start with it.
func (f *StateFile) change(edit func(map[string]Entry)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.entries == nil {
		f.entries = map[string]Entry{}
		f.written = sync.NewCond(&f.mu)
	}
	edit(f.entries)
	f.gen++
	mine := f.gen
	for f.saved < mine {
		if f.writing {
			f.written.Wait()
			continue
		}
		f.write()
	}
}

func (f *StateFile) name() string {
	if f.Name != "" {
		return f.Name
	}
	return f.Path
}

// write writes the latest state. It is called with mu held and no write under way,
// and releases mu during the I/O.
func (f *StateFile) write() {
	f.writing = true
	// Let the goroutines ready to run make their changes first (each then waits for
	// this write): in a start of 200 they are the other spawns finishing, and one write
	// for several of them costs less than one each. Alone, this is a no-op.
	f.mu.Unlock()
	runtime.Gosched()
	f.mu.Lock()
	gen := f.gen
	f.buf, f.names = appendEntries(f.buf[:0], f.names[:0], f.entries)
	data, path := f.buf, f.Path
	f.mu.Unlock()
	err := WriteAtomic(path, data)
	if errors.Is(err, fs.ErrNotExist) { // the folder went away (or was never made)
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			err = WriteAtomic(path, data)
		}
	}
	f.mu.Lock()
	was := f.err
	f.err = nil
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // it names a temporary file through /proc/self/fd/N
		}
		f.err = fmt.Errorf("state file %s: %w", f.name(), err)
	}
	if f.Warn != nil && (f.err == nil) != (was == nil) {
		f.Warn(f.err)
	}
	f.saved = gen
	f.writing = false
	f.written.Broadcast()
}

// appendEntries encodes the entries as a JSON object, one per line, sorted by name:
// what json.MarshalIndent made, without its garbage (a write for every start and
// exit of a burst re-encodes all of them).
// names is scratch space for the sorted names, returned for reuse.
func appendEntries(b []byte, names []string, entries map[string]Entry) ([]byte, []string) {
	if len(entries) == 0 {
		return append(b, "{}\n"...), names
	}
	names = slices.AppendSeq(names, maps.Keys(entries))
	slices.Sort(names)
	b = append(b, '{')
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		e := entries[name]
		b = append(b, "\n  "...)
		b = plan.AppendJSONString(b, name)
		b = append(b, `: {"pid": `...)
		b = strconv.AppendInt(b, int64(e.Pid), 10)
		b = append(b, `, "start": `...)
		b = strconv.AppendInt(b, e.Start, 10)
		b = append(b, '}')
	}
	return append(b, "\n}\n"...), names
}

// WriteAtomic writes path so that readers see the old content or the new, never a
// part, but without fsync: for files that matter only while this machine stays up
// (the state file: after a crash no child is left to find; the pidfile). The fsync
// of each state write held a burst of 200 starts up by ~60 ms, the pidfile's the
// first spawn by 1-2 ms (tens when the disk is busy). The temporary file is named as
// natefinch/atomic names its own, so RemoveTemps finds one a killed daemon left.
//
// The new file is swapped in (renameat2 RENAME_EXCHANGE) and the old one, now under
// the temporary name, removed. Why not a plain rename over the old file: ext4 takes
// that for an unsynced replacement and starts writing the new file to disk on the
// spot (auto_da_alloc), which here doubled the CPU of a write and tripled its time
// (160 vs 80 us of CPU, 270 vs 80 us), 60 times in a start of 200 programs. Readers
// see the old file or the new one either way. The first write, and file systems or
// kernels without the exchange, use natefinch/atomic's rename.
func WriteAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+"*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if st, serr := os.Lstat(path); serr == nil && st.Mode().IsRegular() && exchange(tmp.Name(), path) == nil {
			os.Remove(tmp.Name()) // the old content; RemoveTemps takes it if this fails
			return nil
		}
		err = atomic.ReplaceFile(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

var _ engine.Recorder = (*StateFile)(nil)
