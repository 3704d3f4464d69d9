package logs

import (
	"bytes"
	"io"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// Follower reads a rotating log file as one stream, across its rotations: `logs -f`
// and the log probe read it. Read returns what the files hold now and io.EOF when
// there is nothing more yet; the caller looks again later.
//
// Between two looks the file may rotate several times: the follower then reads each
// backup that came after the file it had, oldest first. A rotation cuts the
// unfinished last line off the file it renames and starts the next file with it
// (see rotate), so bytes read past a rotated file's final end are skipped at the
// next one's start. Only when more rotations than backups pass between two looks is
// something missed: it was gone from the disk.
type Follower struct {
	path    string
	backups int
	from    Mark     // where to start, until f is open
	f       *os.File // nil until the file exists
	next    *os.File // the file after f, once f was found rotated away
	// cutSince: when f was first seen shorter than read (see successor).
	cutSince time.Time
	// gap: the files after f were rotated away before they were read; said in the
	// stream before the next bytes (gapNote), not skipped in silence.
	gap bool
	// midLine: the last byte read did not end a line (the note then ends it first).
	midLine bool
	// absent counts the looks in a row that found no file, and wait the looks still to
	// skip, once BackOffAbsent asked for it: a program that never wrote (most of a big
	// bundle's sleepers) cost a stat and an open at every look, a third of a core for
	// logs -f of 500.
	backOff      bool
	absent, wait int
	// head: f's first headLen bytes once read past them, and looked: head was checked
	// since the last io.EOF (see sameHead).
	head   []byte
	looked bool
}

// headLen is how much of a file's start tells it apart from the same file truncated
// and written again (logrotate's copytruncate).
const headLen = 64

// BackOffAbsent makes the follower look for a file not there less often the longer it
// stays away, up to one look in maxAbsentWait: for a reader that looks at a steady pace
// (logs -f), not one that must see the file at its next look (a ready probe).
func (fl *Follower) BackOffAbsent() { fl.backOff = true }

// maxAbsentWait is how many looks a follower of a file not there skips at most: a
// second of them at logs -f's pace.
const maxAbsentWait = 10

// gapNote is the line a follower reads in place of the files rotated away unread.
const gapNote = "[starvisor: lines rotated out of the log before they were read: it rotates faster than it was followed]\n"

// cutNote ends a line whose end was rotated away unread, before gapNote.
const cutNote = " [starvisor: cut]\n"

// Follow reads l's file from f, an open handle on it positioned where reading
// starts; f nil means the file is not there yet, and is read from its start once it is.
func Follow(l plan.Log, f *os.File) *Follower {
	return &Follower{path: l.Path, backups: l.Backups, f: f}
}

// A Mark is a place in a log, kept without holding the file open: which file, and
// an offset in it; or, when no file was there, the backups that were (what the log
// holds from then on starts in the oldest file that is none of them).
type Mark struct {
	file    os.FileInfo // nil: no file was there
	gen     *uint64     // file's number among those this process's writer made (see fileGen); absent: the next one's
	off     int64
	absent  bool          // no file was there
	earlier []os.FileInfo // backups there when no file was
}

// MarkEnd marks the end of l's file now: what is written from now on follows the mark,
// even across rotations before the first Read.
func MarkEnd(l plan.Log) Mark {
	st, err := os.Stat(l.Path)
	if err == nil {
		m := Mark{file: st, off: st.Size()}
		if g, ok := fileGen(l.Path, st); ok {
			m.gen = &g
		}
		return m
	}
	next := nextGen(l.Path)
	m := Mark{absent: true, gen: &next}
	for i := 1; i <= l.Backups; i++ {
		if st, err := os.Stat(backupName(l.Path, i)); err == nil {
			m.earlier = append(m.earlier, st)
		}
	}
	return m
}

// FollowFrom reads l's file from m, even when that file was rotated away
// before the first Read; when it is gone or m is zero, from the start of the current file.
func FollowFrom(l plan.Log, m Mark) *Follower {
	return &Follower{path: l.Path, backups: l.Backups, from: m}
}

// open opens the file to start with: the marked one, where it is now, at the mark; or,
// when no file was there at the mark, the oldest one made since (it may have been
// rotated already).
func (fl *Follower) open() *os.File {
	if m := fl.from; m.absent {
		for i := fl.backups; i >= 1; i-- {
			f := openRegular(backupName(fl.path, i))
			if f == nil {
				continue
			}
			if st, err := f.Stat(); err == nil && !slices.ContainsFunc(m.earlier, func(e os.FileInfo) bool { return os.SameFile(e, st) }) {
				fl.from = Mark{}
				fl.gapSince(m, st)
				return f
			}
			f.Close()
		}
		f := openRegular(fl.path)
		if f != nil {
			fl.from = Mark{} // kept until a file is there: it may rotate before the next look
			if st, err := f.Stat(); err == nil {
				fl.gapSince(m, st)
			}
		}
		return f
	}
	if m := fl.from; m.file != nil {
		fl.from = Mark{}
		for i := 0; i <= fl.backups; i++ {
			f := openRegular(backupName(fl.path, i))
			if f == nil {
				continue
			}
			// The same inode may be a later file's: the marked one removed, its inode
			// reused (read at the mark's offset, it gave half a line of another file).
			if st, err := f.Stat(); err == nil && os.SameFile(st, m.file) && !fl.reused(m, st) {
				if _, err := f.Seek(m.off, io.SeekStart); err == nil {
					return f
				}
			}
			f.Close()
		}
		// Rotated out of reach before the first look: said as a gap found later is,
		// unless the current file came right after it.
		f := openRegular(fl.path)
		if f != nil && fl.backups > 0 {
			fl.gap = fl.gapBefore(m.file, m.gen, f)
		}
		return f
	}
	return openRegular(fl.path) // nil: not there yet
}

// gapBefore says whether files were made at the log's path between from (fromGen, its
// number, when a mark knew it) and next, the file read after it: by the writer's record
// of the files it made there; else by the disk: with every backup there, the ones
// after from were read by nobody.
func (fl *Follower) gapBefore(from os.FileInfo, fromGen *uint64, next *os.File) bool {
	if st, err := next.Stat(); err == nil {
		if gap, known := skipped(fl.path, from, fromGen, st); known {
			return gap
		}
	}
	_, err := os.Stat(backupName(fl.path, fl.backups))
	return err == nil
}

// gapSince sets gap when st, the first file read after m (marked with no file there),
// is not the first made since: those before it rotated away before the first look (a
// logs -f of all, when an apply adds a program that writes fast).
func (fl *Follower) gapSince(m Mark, st os.FileInfo) {
	if m.gen == nil || fl.backups == 0 {
		return
	}
	if g, ok := fileGen(fl.path, st); ok && g > *m.gen {
		fl.gap = true
	}
}

// reused says whether st, which has the marked file's inode, is a later file made with
// it, by this process's writer's record.
func (fl *Follower) reused(m Mark, st os.FileInfo) bool {
	if m.gen == nil {
		return false
	}
	g, ok := fileGen(fl.path, st)
	return ok && g != *m.gen
}

// openRegular opens name if it is a regular file. Not /dev/stdout and the like (an
// imported supervisord.conf may send output there): reading that would read the
// daemon's terminal, or /dev/zero forever.
func openRegular(name string) *os.File {
	f, err := OpenRead(name)
	if err != nil {
		return nil
	}
	return f
}

// ModTime is when the file it reads now was last written; zero before there is one.
func (fl *Follower) ModTime() time.Time {
	if fl.f == nil {
		return time.Time{}
	}
	st, err := fl.f.Stat()
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

// Read reads from the file it follows, moving to the next file of the rotation at
// the end of one; io.EOF when nothing more is there now.
func (fl *Follower) Read(p []byte) (int, error) {
	for {
		if fl.f == nil {
			if fl.wait > 0 {
				fl.wait--
				return 0, io.EOF
			}
			if fl.f = fl.open(); fl.f == nil {
				if fl.backOff {
					fl.absent = min(fl.absent+1, maxAbsentWait)
					fl.wait = fl.absent
				}
				return 0, io.EOF
			}
			fl.absent = 0
		}
		if fl.gap && fl.next == nil && len(p) > len(gapNote) { // once f, read to its end, is left
			note := gapNote
			if fl.midLine {
				// On a line of its own, not glued to the half line, which is said cut: its
				// end went with the files skipped.
				note = cutNote + note
			}
			fl.gap, fl.midLine = false, false
			return copy(p, note), nil
		}
		if !fl.looked {
			fl.looked = true
			if fl.head == nil {
				fl.keepHead() // from the first look: one started at the end (-n 0) reads nothing before a cut
			} else {
				fl.sameHead()
			}
		}
		n, err := fl.f.Read(p)
		if n > 0 {
			if n = fl.unCut(n); n == 0 {
				continue
			}
			fl.midLine = p[n-1] != '\n'
			if fl.head == nil {
				fl.keepHead()
			}
			return n, nil
		}
		fl.looked = false
		if err != nil && err != io.EOF {
			return 0, err
		}
		if fl.next == nil {
			if fl.next = fl.successor(); fl.next == nil {
				return 0, io.EOF
			}
			continue // renamed, f is final: read what it gained meanwhile first
		}
		// The carried line, already read, starts the next file; not after a gap: the
		// file resumed in is a later one, read from its start, a line's start.
		pos, err := fl.f.Seek(0, io.SeekCurrent)
		if st, serr := fl.f.Stat(); err == nil && serr == nil && pos > st.Size() && !fl.gap {
			fl.next.Seek(pos-st.Size(), io.SeekStart)
		}
		fl.f.Close()
		fl.f, fl.next, fl.head = fl.next, nil, nil
	}
}

// keepHead keeps f's first headLen bytes once it is that long.
func (fl *Follower) keepHead() {
	buf := make([]byte, headLen)
	if n, _ := fl.f.ReadAt(buf, 0); n == headLen {
		fl.head = buf
	}
}

// sameHead reads f again from its start when its first bytes are not those kept: it was
// truncated in place and written again past where it was read (logrotate's copytruncate,
// then a burst) between two looks, which its size alone could not tell. What was read
// past that point was the new content's, lines cut and skipped.
func (fl *Follower) sameHead() {
	if fl.head == nil {
		return
	}
	var buf [headLen]byte
	// Shorter now: cut, which the size tells (see successor), a rotation's own too.
	if n, _ := fl.f.ReadAt(buf[:], 0); n < headLen || bytes.Equal(buf[:], fl.head) {
		return
	}
	fl.f.Seek(0, io.SeekStart)
	fl.head = nil
}

// unCut returns how many of the n bytes just read are the file's. A read that races
// the truncation cutting a carried line off (rotate) can return that line's bytes as
// zeros. The kernel sets the new size before it zeroes the cut, so the size seen after
// the read tells: bytes past it are dropped here, and read where the rotation moved
// them. A file truncated in place (backups = 0) is read again from its start.
func (fl *Follower) unCut(n int) int {
	st, err := fl.f.Stat()
	if err != nil {
		return n
	}
	end, err := fl.f.Seek(0, io.SeekCurrent)
	if err != nil || st.Size() >= end {
		return n
	}
	if fl.backups == 0 {
		fl.f.Seek(0, io.SeekStart)
		return 0
	}
	// Back to the size, or to where this read began if that is further: bytes read
	// before it were real, and the next file starts with them (see Read).
	start := end - int64(n)
	fl.f.Seek(max(st.Size(), start), io.SeekStart)
	return int(max(0, st.Size()-start))
}

// Close closes the files it holds.
func (fl *Follower) Close() error {
	for _, f := range []*os.File{fl.f, fl.next} {
		if f != nil {
			f.Close()
		}
	}
	fl.f, fl.next = nil, nil
	return nil
}

// successor opens the file written after f: name.(k-1) when f is now name.k, the
// current file when f is name.1. It returns nil while f is the current file, and
// while a rotation is under way (the next look tries again). A file truncated in place
// (backups = 0) is read again from its start.
func (fl *Follower) successor() *os.File {
	cur, err := fl.f.Stat()
	if err != nil {
		return nil
	}
	now, err := os.Stat(fl.path)
	if err != nil {
		return nil // between the rename and the new file
	}
	if os.SameFile(cur, now) {
		// Cut shorter: truncated in place (backups = 0, or logrotate's copytruncate), read
		// again from its start. A rotation's own cut (the carried line) is followed by
		// its rename within moments: a cut that lasts a second is someone else's.
		pos, err := fl.f.Seek(0, io.SeekCurrent)
		switch {
		case err != nil || pos <= now.Size():
			fl.cutSince = time.Time{}
		case fl.backups == 0 || !fl.cutSince.IsZero() && time.Since(fl.cutSince) > time.Second:
			fl.f.Seek(0, io.SeekStart)
			fl.cutSince = time.Time{}
		case fl.cutSince.IsZero():
			fl.cutSince = time.Now()
		}
		return nil
	}
	// Upwards, the way a rotation moves files (name.i to name.i+1, highest first): a
	// rotation running meanwhile cannot carry f past the search.
	k := 0
	for i := 1; i <= fl.backups && k == 0; i++ {
		if st, err := os.Stat(backupName(fl.path, i)); err == nil && os.SameFile(cur, st) {
			k = i
		}
	}
	if k == 0 {
		// Rotated out of reach, removed or replaced: go on with the current file. With
		// every backup there, the ones after f were read by nobody: said. Not when f is
		// still on the disk (an external logrotate moved it, then SIGUSR2): the current
		// file, made at the reopen, is the one after it, and nothing was skipped.
		moved := false
		if sys, ok := cur.Sys().(*syscall.Stat_t); ok {
			moved = sys.Nlink > 0
		}
		if moved && now.Size() == 0 && time.Since(cur.ModTime()) < movedQuiet {
			// Moved by an external logrotate (create): its writer goes on in it until it
			// opens the name again (SIGUSR2, or its own look once a second), and the
			// file made at the name stays empty till then. Left at once, the lines
			// written meanwhile reached the file but not logs -f.
			return nil
		}
		nf := openRegular(fl.path)
		if nf == nil || fl.backups == 0 || moved {
			return nf
		}
		fl.gap = fl.gapBefore(cur, nil, nf)
		return nf
	}
	name := fl.path
	if k > 1 {
		name = backupName(fl.path, k-1)
	}
	nf := openRegular(name)
	if nf == nil {
		return nil
	}
	// f still at name.k after the open: no rotation moved the files in between.
	if st, err := os.Stat(backupName(fl.path, k)); err != nil || !os.SameFile(cur, st) {
		nf.Close()
		return nil
	}
	return nf
}

// movedQuiet is how long a log moved aside by an external logrotate is read on while
// the file made at its name stays empty: its writer reopens by name within a second.
const movedQuiet = 2 * time.Second

// backupName is name.i, and name itself for i = 0.
func backupName(path string, i int) string {
	if i == 0 {
		return path
	}
	return path + "." + strconv.Itoa(i)
}
