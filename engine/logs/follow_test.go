package logs

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/engine/plan"
)

// TestFollowerRandomLooks: a Follower read at random moments between random writes
// yields exactly the bytes written since it started, in order, as long as fewer
// rotations than backups pass between two looks: nothing lost when several rotations
// pass, no carried partial line read twice, lines longer than a whole file included.
// When more pass, the loss is said in the stream (gapNote).
// (The api package's follow test runs the reader concurrently with the writer.)
func TestFollowerRandomLooks(t *testing.T) {
	const seeds = 60
	skipped := 0
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 11))
		maxBytes := int64(100 + rng.IntN(400))
		backups := 1 + rng.IntN(5)
		l := plan.Log{Path: filepath.Join(t.TempDir(), "f.log"), MaxBytes: maxBytes, Backups: backups}
		f := open(t, l)
		var want, got bytes.Buffer
		// An earlier run's lines, not to be read. Without them the file does not exist
		// when marked, and the first look must come before a rotation: the follower
		// then starts at the start of the file it finds.
		earlier := rng.IntN(2) == 0
		if earlier {
			f.Write([]byte("earlier\nand a partial li"))
		}
		fl := FollowFrom(l, MarkEnd(l))
		line, rotated, lossy := 0, f.Rotations(), false
		look := func() {
			// A write that rotates more than once (a long line, a big carry) can take
			// the rotations since the last look past backups: the file being read is
			// gone then, and so are bytes. Such seeds are not compared.
			lossy = lossy || f.Rotations()-rotated > backups
			if _, err := io.Copy(&got, fl); err != nil {
				t.Fatal(err)
			}
			rotated = f.Rotations()
		}
		if earlier && rng.IntN(2) == 0 {
			look() // else the first look comes after rotations
		}
		for range 100 {
			n := rng.IntN(120)
			if rng.IntN(40) == 0 {
				n = int(maxBytes) + rng.IntN(100) // longer than a file
			}
			line++
			b := fmt.Appendf(nil, "%d %s\n", line, bytes.Repeat([]byte("x"), n))
			for len(b) > 0 {
				k := min(len(b), 1+rng.IntN(70))
				f.Write(b[:k])
				want.Write(b[:k])
				b = b[k:]
				if f.Rotations()-rotated >= backups || rng.IntN(6) == 0 || !earlier && line == 1 {
					look()
				}
			}
		}
		look()
		fl.Close()
		if err := f.Err(); err != nil {
			t.Fatal(err)
		}
		if lossy {
			// What was lost is said in the stream, where it was lost.
			if !bytes.Contains(got.Bytes(), []byte(gapNote)) {
				t.Fatalf("seed %d: bytes rotated away unread, and no note of it", seed)
			}
			skipped++
			continue
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			g, w := got.Bytes(), want.Bytes()
			i := 0
			for i < len(g) && i < len(w) && g[i] == w[i] {
				i++
			}
			t.Fatalf("seed %d (max %d, backups %d): read %d bytes of %d, apart from %d:\ngot  %q\nwant %q",
				seed, maxBytes, backups, len(g), len(w), i, g[i:min(len(g), i+60)], w[i:min(len(w), i+60)])
		}
	}
	if skipped > seeds/5 {
		t.Fatalf("%d of %d seeds rotated past their backups between two looks: too few compared", skipped, seeds)
	}
}

// A mark taken before a rotation still finds its file, now a backup: the lines
// written after the mark are read from there on (the log probe marks the log before
// the spawn and reads it later).
func TestFollowFromAMarkRotatedAway(t *testing.T) {
	is := is.New(t)
	l := plan.Log{Path: filepath.Join(t.TempDir(), "m.log"), MaxBytes: 30, Backups: 3}
	f := open(t, l)
	f.Write([]byte("old run\n"))
	m := MarkEnd(l)
	f.Write([]byte("new 1\nnew 2 long enough to rotate\nnew 3\n"))
	is.True(f.Rotations() >= 1)
	fl := FollowFrom(l, m)
	defer fl.Close()
	b, err := io.ReadAll(fl)
	is.NoErr(err)
	is.Equal(string(b), "new 1\nnew 2 long enough to rotate\nnew 3\n")

	// No file when marked: everything in the file, once it appears.
	l.Path = filepath.Join(t.TempDir(), "n.log")
	fl2 := FollowFrom(l, MarkEnd(l))
	defer fl2.Close()
	b, err = io.ReadAll(fl2)
	is.NoErr(err)
	is.Equal(string(b), "")
	is.NoErr(os.WriteFile(l.Path, []byte("first\n"), 0o644))
	b, err = io.ReadAll(fl2)
	is.NoErr(err)
	is.Equal(string(b), "first\n")

	// No file when marked, and it rotated before the first look (a program's first
	// run): read from the oldest file made since, not from a backup that was there.
	dir := t.TempDir()
	l = plan.Log{Path: filepath.Join(dir, "r.log"), MaxBytes: 30, Backups: 3}
	is.NoErr(os.WriteFile(l.Path+".3", []byte("an earlier day\n"), 0o644))
	m = MarkEnd(l)
	f = open(t, l)
	f.Write([]byte("ready 1\nready 2 long enough to rotate\nready 3\n"))
	is.True(f.Rotations() >= 1)
	fl3 := FollowFrom(l, m)
	defer fl3.Close()
	b, err = io.ReadAll(fl3)
	is.NoErr(err)
	is.Equal(string(b), "ready 1\nready 2 long enough to rotate\nready 3\n")
}

// A path that is not a file (/dev/zero here; /dev/stdout in an imported config) is never
// read: there is nothing there yet, for good.
func TestFollowerReadsOnlyFiles(t *testing.T) {
	is := is.New(t)
	fl := FollowFrom(plan.Log{Path: "/dev/zero"}, MarkEnd(plan.Log{Path: "/dev/zero"}))
	defer fl.Close()
	n, err := fl.Read(make([]byte, 10))
	is.Equal(n, 0)
	is.Equal(err, io.EOF)
}

// A log cut by someone else (logrotate's copytruncate) while followed is read again from
// its start a moment later: the follower went silent, reading on at its old position
// until the file grew past it, and lost everything written meanwhile.
func TestFollowAfterCopytruncate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	if err := os.WriteFile(path, []byte("one\ntwo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	fl := Follow(plan.Log{Path: path, MaxBytes: 1 << 20, Backups: 3}, fh)
	defer fl.Close()
	if b, _ := io.ReadAll(fl); string(b) != "one\ntwo\n" {
		t.Fatalf("read %q", b)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.WriteString("new\n")
	var got []byte
	deadline := time.Now().Add(10 * time.Second)
	for !bytes.Contains(got, []byte("new\n")) {
		if time.Now().After(deadline) {
			t.Fatalf("after the cut: read %q", got)
		}
		b, _ := io.ReadAll(fl)
		got = append(got, b...)
		time.Sleep(10 * time.Millisecond) // the follower's next look, as logs -f polls
	}
	if string(got) != "new\n" {
		t.Errorf("after the cut: read %q", got)
	}
}

// followingAfterFirst writes "first" to l's file and returns a follower that read it.
func followingAfterFirst(t *testing.T, l plan.Log) (*File, *Follower, *bytes.Buffer) {
	t.Helper()
	f := open(t, l)
	f.Write([]byte("first\n"))
	fl := FollowFrom(l, MarkEnd(l))
	var got bytes.Buffer
	if _, err := io.Copy(&got, fl); err != nil {
		t.Fatal(err)
	}
	return f, fl, &got
}

// More rotations than backups between two looks: the files between were rotated away
// unread, and the stream says so where they were (logs -f skipped them in silence).
// Fewer: every line, no note.
func TestFollowerSaysLinesRotatedAway(t *testing.T) {
	is := is.New(t)
	for _, c := range []struct {
		lines int
		lost  bool
	}{{3, false}, {12, true}} {
		l := plan.Log{Path: filepath.Join(t.TempDir(), "f.log"), MaxBytes: 100, Backups: 2}
		f, fl, got := followingAfterFirst(t, l)
		var want bytes.Buffer
		for i := range c.lines {
			line := fmt.Appendf(nil, "%02d %s\n", i, bytes.Repeat([]byte("x"), 56))
			f.Write(line)
			want.Write(line)
		}
		_, err := io.Copy(got, fl)
		is.NoErr(err)
		fl.Close()
		is.Equal(bytes.Contains(got.Bytes(), []byte(gapNote)), c.lost)
		if !c.lost {
			is.Equal(got.String(), want.String())
		} else {
			is.True(bytes.HasSuffix(got.Bytes(), fmt.Appendf(nil, "%02d %s\n", c.lines-1, bytes.Repeat([]byte("x"), 56))))
		}
	}
}

// A look in the middle of a rotation (the oldest backup removed, the current file not
// yet renamed) after files went unread still says so: by the disk alone no backup was
// missing the look could tell, and thousands of lines went in silence. One whose file
// was the one right before the current says nothing: nothing was skipped.
func TestFollowerSaysAGapMidRotation(t *testing.T) {
	is := is.New(t)
	for _, c := range []struct {
		lines int
		lost  bool
	}{{0, false}, {3, true}} {
		l := plan.Log{Path: filepath.Join(t.TempDir(), "f.log"), MaxBytes: 100, Backups: 1}
		f, fl, got := followingAfterFirst(t, l)
		f.Write([]byte(strings.Repeat("a", 93) + "\n")) // fills the file: rotated
		for i := range c.lines {                        // each fills one: rotated
			f.Write(fmt.Appendf(nil, "%02d %s\n", i, bytes.Repeat([]byte("x"), 96)))
		}
		// The next rotation, caught between its removal of the oldest backup and its
		// rename of the current file.
		is.NoErr(os.Remove(l.Path + ".1"))
		_, err := io.Copy(got, fl)
		is.NoErr(err)
		fl.Close()
		f.Close()
		is.Equal(bytes.Contains(got.Bytes(), []byte(gapNote)), c.lost) // lines
	}
}

// A mark whose file rotated out of reach before the first look (logs -f -n 0 of a log
// rotating fast) says lines went unread: it went on in the current file in silence.
func TestFollowFromAMarkRotatedOutOfReach(t *testing.T) {
	is := is.New(t)
	l := plan.Log{Path: filepath.Join(t.TempDir(), "f.log"), MaxBytes: 100, Backups: 1}
	f := open(t, l)
	defer f.Close()
	f.Write([]byte("first\n"))
	m := MarkEnd(l)
	f.Write([]byte(strings.Repeat("a", 93) + "\n"))
	for i := range 3 {
		f.Write(fmt.Appendf(nil, "%02d %s\n", i, bytes.Repeat([]byte("x"), 96)))
	}
	f.Write([]byte("last\n"))
	fl := FollowFrom(l, m)
	defer fl.Close()
	b, err := io.ReadAll(fl)
	is.NoErr(err)
	is.Equal(string(b), gapNote+"last\n")
}

// A mark taken with no file there (logs -f of all, as an apply adds a program) whose
// first files rotated away before the first look says so: it began mid-stream in silence.
func TestFollowFromAnAbsentMarkRotatedOutOfReach(t *testing.T) {
	is := is.New(t)
	l := plan.Log{Path: filepath.Join(t.TempDir(), "f.log"), MaxBytes: 100, Backups: 1}
	m := MarkEnd(l)
	f := open(t, l)
	defer f.Close()
	for i := range 4 { // each fills a file: rotated
		f.Write(fmt.Appendf(nil, "%02d %s\n", i, bytes.Repeat([]byte("x"), 96)))
	}
	f.Write([]byte("last\n"))
	fl := FollowFrom(l, m)
	defer fl.Close()
	b, err := io.ReadAll(fl)
	is.NoErr(err)
	is.True(strings.HasPrefix(string(b), gapNote)) // b
	// Nothing rotated away: every line, no note.
	l.Path = filepath.Join(t.TempDir(), "g.log")
	m = MarkEnd(l)
	g := open(t, l)
	defer g.Close()
	g.Write([]byte("one\n"))
	fl2 := FollowFrom(l, m)
	defer fl2.Close()
	b, err = io.ReadAll(fl2)
	is.NoErr(err)
	is.Equal(string(b), "one\n")
}

// A log an external logrotate moved away (then SIGUSR2: a new file at the name) is read
// to its end, then the new file, with no note of lines lost: none were. The note came
// with every backup there, as if the daemon's own rotations had carried the file off.
func TestFollowAfterAnExternalMove(t *testing.T) {
	is := is.New(t)
	l := plan.Log{Path: filepath.Join(t.TempDir(), "w.log"), MaxBytes: 1000, Backups: 2}
	f := open(t, l)
	defer f.Close()
	for i := range 50 { // rotations: every backup there, and room in the current file
		f.Write(fmt.Appendf(nil, "%02d %s\n", i, bytes.Repeat([]byte("x"), 40)))
	}
	fl := FollowFrom(l, MarkEnd(l))
	defer fl.Close()
	var got bytes.Buffer
	_, err := io.Copy(&got, fl)
	is.NoErr(err)
	f.Write([]byte("before the move\n"))
	is.NoErr(os.Rename(l.Path, l.Path+"-20261127")) // logrotate's
	f.Write([]byte("after the move, before the reopen\n"))
	f.Reopen() // SIGUSR2
	f.Write([]byte("in the new file\n"))
	_, err = io.Copy(&got, fl)
	is.NoErr(err)
	is.Equal(got.String(), "before the move\nafter the move, before the reopen\nin the new file\n")
}

// A look between logrotate's create (an empty file at the name) and the writer's reopen
// stays with the moved file: the lines written there meanwhile reached the file but not
// logs -f, which had gone on to the empty one.
func TestFollowStaysWithAMovedFileTillItsWriterReopens(t *testing.T) {
	is := is.New(t)
	l := plan.Log{Path: filepath.Join(t.TempDir(), "w.log"), MaxBytes: 0}
	f := open(t, l)
	defer f.Close()
	f.Write([]byte("one\n"))
	fl := FollowFrom(l, MarkEnd(l))
	defer fl.Close()
	var got bytes.Buffer
	_, err := io.Copy(&got, fl) // following: the file open, at its end
	is.NoErr(err)
	is.NoErr(os.Rename(l.Path, l.Path+"-20261127")) // logrotate's create: moved,
	is.NoErr(os.WriteFile(l.Path, nil, 0o644))      // and an empty file made at the name
	f.Write([]byte("two, in the moved file\n"))
	_, err = io.Copy(&got, fl) // a look now
	is.NoErr(err)
	f.Write([]byte("three, still there\n"))
	f.Reopen() // SIGUSR2
	f.Write([]byte("four, in the new file\n"))
	_, err = io.Copy(&got, fl)
	is.NoErr(err)
	is.Equal(got.String(), "two, in the moved file\nthree, still there\nfour, in the new file\n")
}

// A file truncated in place and written again past where it was read between two looks
// (logrotate's copytruncate, then a burst) is read again from its start: by its size it
// looked merely grown, and the follower went on at its old offset, inside the new lines.
func TestFollowCopytruncateThenRegrown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	for _, from := range []string{"start", "end"} { // logs -f, and logs -f -n 0
		t.Run(from, func(t *testing.T) { copytruncateRegrown(t, path, from) })
	}
}

func copytruncateRegrown(t *testing.T, path, from string) {
	is := is.New(t)
	is.NoErr(os.WriteFile(path, []byte("2026-11-27T10:00:01 old line one\n2026-11-27T10:00:02 old line two\n"), 0o644))
	fl := Follow(plan.Log{Path: path}, nil)
	if from == "end" {
		f, err := os.Open(path)
		is.NoErr(err)
		_, err = f.Seek(0, io.SeekEnd)
		is.NoErr(err)
		fl = Follow(plan.Log{Path: path}, f)
	}
	defer fl.Close()
	var got bytes.Buffer
	_, err := io.Copy(&got, fl)
	is.NoErr(err)
	got.Reset()
	fresh := "2026-11-27T10:05:00 new line one\n2026-11-27T10:05:01 new line two\n2026-11-27T10:05:02 new line three\n"
	is.NoErr(os.WriteFile(path, []byte(fresh), 0o644)) // truncated, then longer than before
	_, err = io.Copy(&got, fl)
	is.NoErr(err)
	is.Equal(got.String(), fresh)
}

// Lines rotated away unread after half a line was read: the note ends that half line
// and stands on a line of its own, and reading resumes at a line's start (it was glued
// to the half line, and resumed as far into the next file as the half line was long).
func TestFollowerGapNoteOnALineOfItsOwn(t *testing.T) {
	is := is.New(t)
	l := plan.Log{Path: filepath.Join(t.TempDir(), "f.log"), MaxBytes: 100, Backups: 2}
	f := open(t, l)
	fl := FollowFrom(l, MarkEnd(l))
	defer fl.Close()
	var got bytes.Buffer
	half := "half " + strings.Repeat("y", 80)
	f.Write([]byte("first\n" + half))
	_, err := io.Copy(&got, fl)
	is.NoErr(err)
	f.Write([]byte(strings.Repeat("y", 30) + "\n")) // past max_bytes: the half line is carried into the next file
	for i := range 12 {
		f.Write(fmt.Appendf(nil, "%02d %s\n", i, bytes.Repeat([]byte("x"), 56)))
	}
	_, err = io.Copy(&got, fl)
	is.NoErr(err)
	before, after, found := bytes.Cut(got.Bytes(), []byte(gapNote))
	is.True(found)
	is.Equal(string(before), "first\n"+half+cutNote)
	is.True(len(after) > 0)
	for _, line := range bytes.SplitAfter(after, []byte("\n")) {
		if len(line) > 0 && !regexp.MustCompile(`^\d\d x{56}\n$`).Match(line) {
			t.Fatalf("after the note, %q: not a whole line", line)
		}
	}
}

// A follower that backs off looks for a file not there less often the longer it stays
// away, and still finds it within maxAbsentWait looks once it is there.
func TestFollowerBacksOffAnAbsentFile(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "quiet.log")
	fl := Follow(plan.Log{Path: path}, nil)
	fl.BackOffAbsent()
	defer fl.Close()
	buf := make([]byte, 64)
	for range 30 { // long enough away: the longest wait
		_, err := fl.Read(buf)
		is.Equal(err, io.EOF)
	}
	is.NoErr(os.WriteFile(path, []byte("hello\n"), 0o644))
	looks := 0
	for {
		looks++
		n, err := fl.Read(buf)
		if n > 0 {
			is.Equal(string(buf[:n]), "hello\n")
			break
		}
		is.Equal(err, io.EOF)
		is.True(looks <= maxAbsentWait+1) // found within a second of looks
	}
	is.True(looks > 1) // it did skip looks
}
