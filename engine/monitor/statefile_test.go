package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/matryer/is"
)

// TestStateFileIsNeverHalfWritten hammers one StateFile with Started and Exited from many
// goroutines while a reader keeps reading the file: every read must be a whole JSON map
// (writes go through a temporary file and a rename), and once the writers are done the
// file must hold exactly the final state (coalesced writes lose no change).
func TestStateFileIsNeverHalfWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "state.json")
	f := &StateFile{Path: path}
	const writers, rounds = 32, 51 // the last round (50) keeps its entry
	var stop atomic.Bool
	var reads, empty atomic.Int64
	readerDone := make(chan error, 1)
	go func() {
		for !stop.Load() {
			b, err := os.ReadFile(path)
			if os.IsNotExist(err) {
				empty.Add(1)
				continue
			}
			if err != nil {
				readerDone <- err
				return
			}
			var m map[string]Entry
			if err := json.Unmarshal(b, &m); err != nil {
				readerDone <- fmt.Errorf("read %d bytes of invalid JSON: %w: %q", len(b), err, b)
				return
			}
			reads.Add(1)
		}
		readerDone <- nil
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				name := fmt.Sprintf("p%02d", w)
				pid := 4_000_000 + w*rounds + r // no such process: Start stays 0, which is fine here
				f.Started(name, pid, 0)
				if r%3 != 2 {
					f.Exited(name, pid)
				}
				f.Exited(name, pid-1) // an older incarnation: must not remove the newer entry
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]Entry
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]Entry{}
	for w := range writers {
		// Replay each writer's sequence.
		for r := range rounds {
			name := fmt.Sprintf("p%02d", w)
			pid := 4_000_000 + w*rounds + r
			want[name] = Entry{Pid: pid}
			if r%3 != 2 {
				delete(want, name)
			}
		}
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(f.Entries(), want) {
		t.Fatalf("final state file differs from the final state:\nfile    %v\nentries %v\nwant    %v", got, f.Entries(), want)
	}
	if reads.Load() == 0 {
		t.Fatal("the reader never saw the file")
	}
	// No temporary files are left next to the state file.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("state dir holds %v, want only state.json", names)
	}
	t.Logf("%d valid reads during %d writes", reads.Load(), writers*rounds*3)
}

// TestCorruptStateFilesAreNotFatal: whatever an earlier daemon or a disk left in the
// file, CleanStrays reports it, signals nothing it cannot vouch for, and leaves a valid file.
func TestCorruptStateFilesAreNotFatal(t *testing.T) {
	for name, c := range map[string]struct {
		content string
		corrupt bool // reported as an error
	}{
		"empty":        {"", false}, // what a machine crash can leave: no alarm
		"blank":        {"\n \n", false},
		"truncated":    {`{"web": {"pid": 12`, true},
		"garbage":      {"\x00\xff\xfe not json", true},
		"list":         {`[1, 2, 3]`, true},
		"wrong types":  {`{"web": {"pid": "12", "start": []}}`, true},
		"trailing":     {`{} {}`, true},
		"null":         {`null`, false},
		"empty object": {`{}`, false},
		// Parseable but not ours: pid 1, this process, its group, negative, absurd, and a
		// live process with the wrong start time. None may be signalled.
		"hostile pids": {fmt.Sprintf(`{"init": {"pid": 1}, "self": {"pid": %d}, "group": {"pid": %d},
			"neg": {"pid": -5}, "zero": {"pid": 0}, "huge": {"pid": 2147483647},
			"parent": {"pid": %d, "start": 1}, "extra": {"pid": 9, "start": 1, "unknown": true}}`,
			os.Getpid(), syscall.Getpgrp(), os.Getppid()), false},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			f := &StateFile{Path: path}
			strays, err := f.CleanStrays(context.Background())
			if c.corrupt != (err != nil) {
				t.Fatalf("err = %v, want corrupt = %v", err, c.corrupt)
			}
			if err != nil && !strings.Contains(err.Error(), "corrupt") {
				t.Errorf("error does not say the file is corrupt: %v", err)
			}
			if len(strays) != 0 {
				t.Errorf("found strays %+v in a file that records none of ours", strays)
			}
			if !onlySelf(t, path) {
				t.Errorf("state file after cleaning records more than this daemon")
			}
			f.Started("web", os.Getpid(), 0) // and the daemon can go on recording
			if err := f.Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestStateFileThatIsADirectory: an unusable path is an error from CleanStrays and from
// Err, never a panic; the daemon can warn and run on.
func TestStateFileThatIsADirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	f := &StateFile{Path: path}
	if _, err := f.CleanStrays(context.Background()); err == nil {
		t.Error("CleanStrays of a directory succeeded")
	}
	f.Started("web", os.Getpid(), 0)
	if f.Err() == nil {
		t.Error("writing over a directory reported no error")
	}
	if got := f.Entries()["web"].Pid; got != os.Getpid() {
		t.Errorf("in-memory state lost: %v", f.Entries())
	}
}

// A daemon killed between an atomic write's temporary file and its rename leaves
// state.json<digits> behind; the next start removes those, and nothing else.
func TestCleanStraysRemovesTemporaryFiles(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, name := range []string{"state.json123456", "state.json7", "state.json.bak", "state.json12x", "other42"} {
		is.NoErr(os.WriteFile(filepath.Join(dir, name), []byte("{"), 0o644))
	}
	f := &StateFile{Path: path}
	_, err := f.CleanStrays(context.Background())
	is.NoErr(err) // no state file: nothing to stop (it now records this daemon)
	var left []string
	ents, err := os.ReadDir(dir)
	is.NoErr(err)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	is.Equal(left, []string{"other42", "state.json", "state.json.bak", "state.json12x"})
}

// The state file's hand encoding is JSON that reads back to the same entries, whatever
// the names hold.
func TestAppendEntriesRoundTrips(t *testing.T) {
	for _, entries := range []map[string]Entry{
		{},
		{"web": {Pid: 42, Start: 1764115200123}},
		{"a:a_0": {Pid: 1}, `q"uo\te`: {Pid: 2, Start: -1}, "ü\n\x01": {Pid: 3, Start: 9}},
	} {
		var got map[string]Entry
		data, _ := appendEntries(nil, nil, entries)
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		if !reflect.DeepEqual(got, entries) {
			t.Errorf("%q read back as %v, want %v", data, got, entries)
		}
	}
}

// Each write swaps the new file in and removes the old one: after several, the folder
// holds the state file alone, with the latest state.
func TestStateWritesLeaveNoTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	f := &StateFile{Path: filepath.Join(dir, "state.json")}
	for i := range 5 {
		f.Started("p"+strconv.Itoa(i), os.Getpid(), 0)
	}
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "state.json" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v, want state.json alone", names)
	}
	var m map[string]Entry
	b, _ := os.ReadFile(f.Path)
	if err := json.Unmarshal(b, &m); err != nil || len(m) != 5 {
		t.Errorf("state file %q (%v), want 5 entries", b, err)
	}
}

// A write that fails is said once through Warn, and so is the next that works: the
// daemon's log and status tell when it cannot record its processes, not only its exit.
func TestStateFileWarnsWhenWritesFailAndResume(t *testing.T) {
	is := is.New(t)
	var heard []string
	f := &StateFile{Path: "/proc/no-such-dir/state.json", Warn: func(err error) { heard = append(heard, fmt.Sprint(err)) }}
	f.Started("a", os.Getpid(), 0)
	f.Started("b", os.Getpid(), 0)
	is.True(f.Err() != nil)
	f.Path = filepath.Join(t.TempDir(), "state.json")
	f.Started("c", os.Getpid(), 0)
	is.NoErr(f.Err())
	is.Equal(len(heard), 2)
	is.True(strings.Contains(heard[0], "state file /proc/no-such-dir/state.json: "))
	// Its path once, not again as the temporary file or folder the write failed on
	// (/proc/self/fd/10/state.json2369627189 in a daemon).
	is.Equal(strings.Count(heard[0], "/proc/no-such-dir"), 1)
	is.Equal(heard[1], "<nil>")
}

// Messages name a program once, however many groups it left (its background jobs read
// as more copies of it), by a pid that is there (a gone leader's named no process).
func TestStraysByProcess(t *testing.T) {
	me := os.Getpid()
	got := ByProcess([]Stray{
		{Process: "jobs", Pid: me, Pids: []int{me}},
		{Process: "jobs", Pid: me + 1<<22, Pids: []int{me}, Killed: true}, // leader gone
		{Process: "dfork", Pid: 1 << 22, Pids: []int{me}},
	})
	if len(got) != 2 || got[0].Process != "jobs" || len(got[0].Pids) != 2 || !got[0].Killed || got[1].Pid != me {
		t.Errorf("%+v", got)
	}
}
