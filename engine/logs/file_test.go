package logs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
	"golang.org/x/sys/unix"

	"github.com/starvisor/starvisor/engine/plan"
)

func open(t *testing.T, l plan.Log) *File {
	t.Helper()
	f, err := Open(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// numbered returns n lines "line 000001 xxxx\n" of the given total width.
func numbered(n, width int) []string {
	lines := make([]string, n)
	for i := range lines {
		s := fmt.Sprintf("line %06d ", i)
		lines[i] = s + strings.Repeat("x", width-len(s)-1) + "\n"
	}
	return lines
}

// backups returns the contents of path.N ... path.1, path (oldest first).
func backups(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	for i := 1; ; i++ {
		b, err := os.ReadFile(fmt.Sprintf("%s.%d", path, i))
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append([]string{string(b)}, out...)
	}
	return append(out, read(t, path))
}

func TestRotationNamingAndSizes(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "sub", "dir", "app.log") // parents created
	f := open(t, plan.Log{Path: path, MaxBytes: 100, Backups: 2})
	lines := numbered(10, 30)
	for _, l := range lines {
		_, err := f.Write([]byte(l))
		is.NoErr(err)
	}
	files := backups(t, path)
	is.Equal(len(files), 3) // app.log.2, app.log.1, app.log; no app.log.3
	_, err := os.Stat(path + ".3")
	is.True(errors.Is(err, os.ErrNotExist))
	// 30-byte lines, limit 100: each full file holds 3 lines; the 4th is carried over.
	is.Equal(files[0], strings.Join(lines[3:6], ""))
	is.Equal(files[1], strings.Join(lines[6:9], ""))
	is.Equal(files[2], lines[9])
	for _, c := range files {
		is.True(len(c) <= 100)
	}
	st, err := os.Stat(path)
	is.NoErr(err)
	is.Equal(st.Mode().Perm(), os.FileMode(0o644))
	st, err = os.Stat(filepath.Dir(path))
	is.NoErr(err)
	is.Equal(st.Mode().Perm(), os.FileMode(0o755))
}

func TestBackupsZeroTruncatesInPlace(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path, MaxBytes: 100, Backups: 0})
	lines := numbered(10, 30)
	for _, l := range lines {
		f.Write([]byte(l))
	}
	is.Equal(read(t, path), lines[9]) // truncated at each rollover; only the tail survives
	_, err := os.Stat(path + ".1")
	is.True(errors.Is(err, os.ErrNotExist))
	is.Equal(f.Rotations(), 3)
}

func TestMaxBytesZeroNeverRotates(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path, MaxBytes: 0, Backups: 3})
	lines := numbered(1000, 100)
	for _, l := range lines {
		f.Write([]byte(l))
	}
	is.Equal(read(t, path), strings.Join(lines, ""))
	is.Equal(f.Rotations(), 0)
}

func TestReopenAppends(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f, err := Open(plan.Log{Path: path})
	is.NoErr(err)
	f.Write([]byte("one\n"))
	is.NoErr(f.Close())
	_, err = f.Write([]byte("late\n"))
	is.True(errors.Is(err, ErrClosed))
	f = open(t, plan.Log{Path: path})
	f.Write([]byte("two\n"))
	is.Equal(read(t, path), "one\ntwo\n")
}

func TestOversizedFileRotatesOnFirstWrite(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	old := strings.Repeat("old line\n", 50)
	is.NoErr(os.WriteFile(path, []byte(old), 0o644))
	f := open(t, plan.Log{Path: path, MaxBytes: 100, Backups: 1})
	f.Write([]byte("new\n"))
	is.Equal(read(t, path+".1"), old)
	is.Equal(read(t, path), "new\n")
}

// A line longer than max_bytes cannot fit anywhere: it is cut, but nothing is lost.
func TestLongLineIsCutNotLost(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path, MaxBytes: 10, Backups: 5})
	f.Write([]byte("0123456789abcdefghij\n"))
	is.Equal(strings.Join(backups(t, path), ""), "0123456789abcdefghij\n")
	is.Equal(read(t, path+".2"), "0123456789")
}

// Writes of random sizes split lines anywhere; across 50+ rotations every line is
// kept whole, in order, and no file exceeds max_bytes.
func TestNoLineLostAcrossRotations(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path, MaxBytes: 1000, Backups: 100})
	all := strings.Join(numbered(3000, 20), "")
	for p, step := all, 1; len(p) > 0; step = step*7%173 + 1 {
		n := min(step, len(p))
		f.Write([]byte(p[:n]))
		p = p[n:]
	}
	is.True(f.Rotations() >= 50)
	checkFiles(t, path, 1000, all)
}

// checkFiles asserts the rotated set holds want exactly, split on line boundaries.
func checkFiles(t *testing.T, path string, limit int, want string) {
	t.Helper()
	files := backups(t, path)
	if got := strings.Join(files, ""); got != want {
		t.Fatalf("content differs: got %d bytes, want %d", len(got), len(want))
	}
	for i, c := range files {
		if len(c) > limit {
			t.Errorf("file %d of %d: %d bytes > max %d", i, len(files), len(c), limit)
		}
		if i < len(files)-1 && !strings.HasSuffix(c, "\n") {
			t.Errorf("file %d of %d ends mid-line: %q", i, len(files), c[max(0, len(c)-20):])
		}
	}
}

func TestConcurrentWritersKeepLinesWhole(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path, MaxBytes: 1 << 20, Backups: 10})
	const n = 5000
	var wg sync.WaitGroup
	for _, name := range []string{"out", "err"} {
		wg.Go(func() {
			for i := range n {
				f.Write(fmt.Appendf(nil, "%s %05d\n", name, i))
			}
		})
	}
	wg.Wait()
	next := map[string]int{}
	for l := range strings.Lines(strings.Join(backups(t, path), "")) {
		var name string
		var i int
		_, err := fmt.Sscanf(l, "%s %d\n", &name, &i)
		is.NoErr(err)           // every line intact
		is.Equal(i, next[name]) // in order per writer
		next[name]++
	}
	is.Equal(next["out"], n)
	is.Equal(next["err"], n)
}

func TestTimestampsPrefixEachLine(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path, Timestamps: true})
	clock := time.Date(2026, 11, 25, 16, 52, 42, 547e6, time.UTC)
	f.now = func() time.Time { return clock }
	f.Write([]byte("a\nb"))
	clock = clock.Add(time.Second)
	f.Write([]byte("c\n\n"))
	is.Equal(read(t, path),
		"2026-11-25T16:52:42.547Z a\n"+
			"2026-11-25T16:52:42.547Z bc\n"+ // stamped by the write that began the line
			"2026-11-25T16:52:43.547Z \n")
}

func TestWriteErrorIsRecordedAndFileReopened(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path})
	f.Write([]byte("one\n"))
	ro, err := os.Open(path) // a read-only handle makes the next write fail
	is.NoErr(err)
	f.mu.Lock()
	f.f.Close()
	f.f = ro
	f.mu.Unlock()
	n, err := f.Write([]byte("lost\n"))
	is.NoErr(err) // the writer (a pipe reader) never sees the failure
	is.Equal(n, 5)
	is.True(errors.Is(f.Err(), syscall.EBADF))
	is.NoErr(f.Err()) // reported once
	f.Write([]byte("two\n"))
	is.Equal(read(t, path), "one\n[starvisor: 5 bytes of output lost here: the log could not be written]\ntwo\n")
}

func TestDiskFullDoesNotBlock(t *testing.T) {
	is := is.New(t)
	f := open(t, plan.Log{Path: "/dev/full"})
	data := strings.Repeat("0123456789abcde\n", 1<<16) // 1 MiB, more than a pipe holds
	pumpAll(t, f, pipeFrom(t, data, true))             // drained although every byte was refused
	is.True(errors.Is(f.Err(), syscall.ENOSPC))
}

// A rotation that cannot rename the file (here: its folder made immutable) loses
// nothing: the partial line cut off for the next file is put back, and the writes go
// on in the same file.
func TestFailedRotationKeepsTheCarriedLine(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	f := open(t, plan.Log{Path: path, MaxBytes: 20, Backups: 3})
	f.Write([]byte("0123456789\nabc")) // 14 bytes, "abc" unfinished
	if err := setImmutable(dir, true); err != nil {
		t.Skipf("cannot make %s immutable: %v", dir, err)
	}
	t.Cleanup(func() { setImmutable(dir, false) })
	f.Write([]byte("defghij")) // 21 bytes: rotation would carry "abcdefghij"
	is.True(f.Err() != nil)    // the rename failed
	is.Equal(f.Rotations(), 0)
	is.Equal(read(t, path), "0123456789\nabcdefghij")
	f.Write([]byte("\n"))
	is.Equal(read(t, path), "0123456789\nabcdefghij\n")
	is.NoErr(setImmutable(dir, false))
	f.Write([]byte("next\n")) // full: rotates first, then writes
	is.Equal(read(t, path+".1"), "0123456789\nabcdefghij\n")
	is.Equal(read(t, path), "next\n")
}

// setImmutable sets or clears a file's immutable attribute (chattr +i), which stops
// even root from renaming entries of a folder.
func setImmutable(name string, on bool) error {
	fh, err := os.Open(name)
	if err != nil {
		return err
	}
	defer fh.Close()
	const fsImmutable = 0x10 // FS_IMMUTABLE_FL
	flags, err := unix.IoctlGetUint32(int(fh.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return err
	}
	if on {
		flags |= fsImmutable
	} else {
		flags &^= fsImmutable
	}
	return unix.IoctlSetPointerInt(int(fh.Fd()), unix.FS_IOC_SETFLAGS, int(flags))
}

// After an external logrotate renamed the file, Reopen makes the next write go to a
// new file at the path (supervisord's SIGUSR2).
func TestReopenAfterRename(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path})
	f.Write([]byte("old\n"))
	is.NoErr(os.Rename(path, path+".rotated"))
	f.Write([]byte("still old\n")) // the open file follows its inode
	f.Reopen()
	f.Write([]byte("new\n"))
	is.Equal(read(t, path+".rotated"), "old\nstill old\n")
	is.Equal(read(t, path), "new\n")
}

// A log path that is a stream (/dev/stdout as a pipe or a terminal) takes the output:
// no seek, nothing to rotate.
func TestLogToAStream(t *testing.T) {
	is := is.New(t)
	r, w, err := os.Pipe()
	is.NoErr(err)
	defer r.Close()
	defer w.Close()
	f := open(t, plan.Log{Path: fmt.Sprintf("/proc/self/fd/%d", w.Fd())})
	f.Write([]byte("through the pipe\n"))
	is.NoErr(f.Err())
	buf := make([]byte, 64)
	n, err := r.Read(buf)
	is.NoErr(err)
	is.Equal(string(buf[:n]), "through the pipe\n")
}

// A log path that names a device (/dev/null, through a symlink here so that a failure
// could only rename the link) is never rotated: rotation renamed the device and put a
// regular file in its place, for the whole machine when the path was /dev/null.
func TestDeviceIsNeverRotated(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "null")
	is.NoErr(os.Symlink(os.DevNull, path))
	f := open(t, plan.Log{Path: path, MaxBytes: 100, Backups: 2})
	for _, line := range numbered(50, 20) {
		f.Write([]byte(line))
	}
	is.NoErr(f.Err())
	is.Equal(f.Rotations(), 0)
	target, err := os.Readlink(path)
	is.NoErr(err) // still the link
	is.Equal(target, os.DevNull)
	_, err = os.Lstat(path + ".1")
	is.True(errors.Is(err, os.ErrNotExist))
}

// A file cut by someone else (logrotate's copytruncate) rotates by its real size: not
// early, and with no line split between two files.
func TestExternalTruncateRotatesByRealSize(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path, MaxBytes: 1000, Backups: 2})
	lines := numbered(18, 100)
	for _, line := range lines[:6] {
		f.Write([]byte(line))
	}
	is.NoErr(os.Truncate(path, 0))
	for _, line := range lines[6:12] { // 600 bytes in a file of 600: no rotation yet
		f.Write([]byte(line))
	}
	is.NoErr(f.Err())
	is.Equal(f.Rotations(), 0)
	is.Equal(read(t, path), strings.Join(lines[6:12], ""))
	for _, line := range lines[12:] { // 1,200: one rotation, at a line's end
		f.Write([]byte(line))
	}
	is.NoErr(f.Err())
	is.Equal(f.Rotations(), 1)
	is.Equal(strings.Join(backups(t, path), ""), strings.Join(lines[6:], ""))
	for _, b := range backups(t, path) {
		is.True(b == "" || strings.HasSuffix(b, "\n"))
	}
}

// Two writers of one file (the daemon's own output and /dev/stdout when that output is
// the file; two programs given one path) never overwrite each other's bytes.
func TestLogAppendsBesideAnotherWriter(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "shared.log")
	other, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	is.NoErr(err)
	defer other.Close()
	f := open(t, plan.Log{Path: path})
	other.WriteString("a1\n")
	f.Write([]byte("b1\n"))
	other.WriteString("a2\n")
	f.Write([]byte("b2\n"))
	is.Equal(read(t, path), "a1\nb1\na2\nb2\n")
}

// Retune takes new rotation settings for the same file: a smaller max_bytes rotates
// at the next write, and time stamps start.
func TestRetune(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	f := open(t, plan.Log{Path: path, MaxBytes: 1 << 20, Backups: 1})
	f.Write([]byte("one\ntwo\n"))
	f.Retune(plan.Log{Path: path, MaxBytes: 10, Backups: 5})
	f.Write([]byte("three\n"))
	if f.Rotations() != 1 {
		t.Fatalf("%d rotations at the new max_bytes, want 1", f.Rotations())
	}
	f.Retune(plan.Log{Path: path, MaxBytes: 1 << 20, Backups: 5, Timestamps: true})
	f.Write([]byte("four\n"))
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "one\ntwo\n" || !strings.HasPrefix(string(cur), "three\n") || !strings.HasSuffix(string(cur), " four\n") || strings.HasSuffix(string(cur), "\nfour\n") {
		t.Errorf("backup %q, current %q", old, cur)
	}
	f.Retune(plan.Log{Path: path + ".other", MaxBytes: 1}) // another file: not this one's
	if f.max != 1<<20 {
		t.Errorf("max %d after a retune for another path", f.max)
	}
}

// A log file deleted (or moved) while written: at the next rotation the output goes on
// in a new file at the name. Renaming the gone name failed on every write, the
// unreachable file grew without bound, and only SIGUSR2 ended it.
func TestDeletedLogStartsAgainAtTheName(t *testing.T) {
	for _, how := range []string{"deleted", "moved"} {
		t.Run(how, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			path := filepath.Join(dir, "a.log")
			f := open(t, plan.Log{Path: path, MaxBytes: 1000, Backups: 2})
			lines := numbered(30, 100)
			for _, l := range lines[:5] {
				f.Write([]byte(l))
			}
			if how == "deleted" {
				is.NoErr(os.Remove(path))
			} else {
				is.NoErr(os.Rename(path, filepath.Join(dir, "elsewhere.log")))
			}
			for _, l := range lines[5:30] {
				f.Write([]byte(l))
			}
			is.NoErr(f.Err())
			is.True(!f.Failing())
			got := strings.Join(backups(t, path), "")
			is.True(strings.HasSuffix(got, strings.Join(lines[20:], ""))) // the latest lines are at the name
			st, err := os.Stat(path)
			is.NoErr(err)
			is.True(st.Size() <= 1000)
		})
	}
}

// A failed write (a full disk) can leave part of a line in the file: the first line
// written once there is room starts on a line of its own ("liline 1193" before).
func TestLineAfterAFailedWriteStartsAfresh(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path, MaxBytes: 1 << 20, Backups: 1})
	f.Write([]byte("line 1\n"))
	f.mu.Lock()
	n, err := f.f.Write([]byte("li")) // what the full disk took of "line 2\n"
	is.NoErr(err)
	f.size += int64(n)
	f.fail(syscall.ENOSPC)
	f.mu.Unlock()
	is.True(f.Failing())
	f.Write([]byte("line 3\n"))
	is.True(!f.Failing())
	is.Equal(read(t, path), "line 1\nli\nline 3\n")
	f.Write([]byte("line 4\n")) // only once
	is.Equal(read(t, path), "line 1\nli\nline 3\nline 4\n")
}

// A log that is a FIFO nobody reads (a log shipper gone) never blocks the writer: the
// output is dropped and said so. It blocked the pump for good, with the file's lock
// held, and the daemon's status and stop waited for that lock.
func TestFIFOLogNeverBlocks(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "ship.pipe")
	is.NoErr(syscall.Mkfifo(path, 0o644))
	f := open(t, plan.Log{Path: path, MaxBytes: 1 << 20, Backups: 2})
	line := []byte(strings.Repeat("x", 99) + "\n")
	within := func(what string, write func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { defer close(done); write() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the write blocked", what)
		}
	}
	within("no reader", func() { f.Write(line) })
	is.True(f.Failing())
	is.True(strings.Contains(f.Err().Error(), "a pipe nobody reads"))

	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0) // a reader that never reads
	is.NoErr(err)
	defer r.Close()
	within("a full pipe", func() {
		for range 2000 { // 200 KB, more than a pipe holds
			f.Write(line)
		}
	})
	is.True(f.Failing())
	is.True(strings.Contains(f.Err().Error(), "pipe is full"))
}

// A log's health is read without the lock a write holds: a write blocked (a frozen
// file system) made status, which reads every log's health, wait for it.
func TestHealthReadsDoNotWaitForAWrite(t *testing.T) {
	f := open(t, plan.Log{Path: filepath.Join(t.TempDir(), "a.log")})
	f.mu.Lock() // a write in progress, blocked
	defer f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Failing()
		f.Err()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Failing and Err waited for the writer's lock")
	}
}

// A file that ends in half a line (a daemon killed mid-write) gets its line ended before
// the next writer's first: they were glued together.
func TestOpenEndsAHalfLine(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	is.NoErr(os.WriteFile(path, []byte("line 1\nli"), 0o644))
	f := open(t, plan.Log{Path: path, MaxBytes: 1 << 20, Backups: 1})
	f.Write([]byte("next daemon\n"))
	is.Equal(read(t, path), "line 1\nli\nnext daemon\n")
	is.NoErr(os.WriteFile(path+".b", []byte("whole\n"), 0o644))
	g := open(t, plan.Log{Path: path + ".b"})
	g.Write([]byte("more\n"))
	is.Equal(read(t, path+".b"), "whole\nmore\n")
}

// A log deleted (rm) or moved (logrotate without copytruncate or SIGUSR2) is made again
// at its path within a second: the output went on into the unlinked or renamed file,
// out of sight of `logs` and of anyone reading the path.
func TestLogFollowsItsName(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path})
	now := time.Unix(1000, 0)
	f.now = func() time.Time { return now }
	f.Write([]byte("one\n"))
	is.NoErr(os.Remove(path))
	f.Write([]byte("two\n")) // within the second: still the open (deleted) file
	now = now.Add(2 * time.Second)
	f.Write([]byte("three\n"))
	is.Equal(read(t, path), "three\n")

	is.NoErr(os.Rename(path, path+".1"))
	now = now.Add(2 * time.Second)
	f.Write([]byte("four\n"))
	is.Equal(read(t, path+".1"), "three\n")
	is.Equal(read(t, path), "four\n")
}

// A stream's end keeps the file's last line (the crash's words, ended with a newline if
// the process left it unfinished); the next run's lines do not change it until its own
// stream ends.
func TestEndOfStreamKeepsLastWords(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path})
	_, line, _ := f.LastWords()
	is.Equal(line, "")
	f.Write([]byte("starting\nTraceback (most recent call last):\nRuntimeError: boom"))
	f.EndOfStream()
	got, line, at := f.LastWords()
	is.Equal(got, path)
	is.Equal(line, "RuntimeError: boom")
	is.True(!at.IsZero())
	f.Write([]byte("starting again\n"))
	_, line, _ = f.LastWords()
	is.Equal(line, "RuntimeError: boom")
	is.Equal(read(t, path), "starting\nTraceback (most recent call last):\nRuntimeError: boom\nstarting again\n")
	f.EndOfStream()
	_, line, _ = f.LastWords()
	is.Equal(line, "starting again")
	f.EndOfStream() // a run that wrote nothing: no words of its own, not the last run's
	_, line, _ = f.LastWords()
	is.Equal(line, "")
}
