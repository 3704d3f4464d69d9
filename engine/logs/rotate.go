package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// tailWindow bounds how far back rotation looks for the last newline.
const tailWindow = 64 << 10

// room returns how many bytes fit before the next rotation, rotating first when
// the file is already full (an earlier run may have left it big). 0 means no
// limit, including when rotation failed: writing past max_bytes beats losing
// output. ok is false when rotation lost the file handle.
func (f *File) room() (room int64, ok bool) {
	if f.max <= 0 || f.stream {
		return 0, true
	}
	if f.size >= f.max {
		f.rotate()
		if f.f == nil {
			return 0, false
		}
		if f.size >= f.max {
			return 0, true
		}
	}
	return f.max - f.size, true
}

// rotateIfFull rotates as supervisord does, right after the write that filled the file.
func (f *File) rotateIfFull() {
	if f.max > 0 && f.f != nil && !f.stream && f.size >= f.max {
		f.rotate()
	}
}

// rotate shifts name -> name.1 -> ... -> name.N (or truncates in place when
// backups is 0) and starts the new file with the old file's unfinished last line.
// On error nothing written so far is lost: the old file keeps its bytes.
func (f *File) rotate() {
	// The name may no longer lead to the open file: deleted (rm, a cleanup cron), moved
	// (the bundle's folder renamed) or replaced. Renaming it would fail on every write
	// while the unreachable file grew without bound: go on in a new file at the name,
	// as after Reopen.
	own, ownErr := f.f.Stat() // one fstat for both checks below
	if st, err := os.Stat(f.at(f.base)); err != nil || ownErr != nil || !os.SameFile(own, st) {
		f.trim(f.f, f.size)
		f.f.Close()
		f.f = nil
		if err := f.open(false); err != nil {
			f.noteErr(fmt.Errorf("%s is gone and cannot be made again: %w (output is dropped until it can)", f.path, err))
			f.setFailing(true)
			return
		}
		if f.size < f.max {
			return
		}
	} else if own.Size() != f.size {
		// The size counted is wrong: logrotate's copytruncate cut the file, or another
		// writer appended to it. The file's own size decides.
		f.size, f.reserved = own.Size(), 0
		if f.size < f.max {
			return
		}
	}
	carry, err := f.partialLine()
	if err != nil {
		f.noteErr(err)
		carry = nil // cut at the limit instead
	}
	if f.backups == 0 {
		err = f.truncateInPlace()
	} else {
		err = f.shift(carry)
	}
	if err != nil {
		f.noteErr(fmt.Errorf("rotate %s: %w (it grows past max_bytes until it can rotate)", f.path, err))
		return
	}
	f.rotations++
	if len(carry) > 0 {
		n, err := f.f.Write(carry)
		f.size += int64(n)
		if err != nil {
			f.fail(err)
		}
	}
}

// partialLine returns a copy of the bytes after the last newline near the end of
// the file, or nil when the file ends with a newline or none is in reach.
func (f *File) partialLine() ([]byte, error) {
	n := min(int64(tailWindow), f.size)
	if n == 0 {
		return nil, nil
	}
	if cap(f.tailBuf) < int(n) {
		f.tailBuf = make([]byte, tailWindow)
	}
	buf := f.tailBuf[:n]
	if _, err := f.f.ReadAt(buf, f.size-n); err != nil {
		return nil, fmt.Errorf("rotate %s: read tail: %w", f.path, err)
	}
	i := bytes.LastIndexByte(buf, '\n')
	if i < 0 || i == len(buf)-1 {
		return nil, nil
	}
	return bytes.Clone(buf[i+1:]), nil
}

func (f *File) truncateInPlace() error {
	f.reserved = 0 // the truncation frees them
	if err := f.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	if _, err := f.f.Seek(0, 0); err != nil {
		f.fail(err)
		return fmt.Errorf("seek: %w", err)
	}
	f.size = 0
	return nil
}

// shift renames the backups and the current file and opens a fresh one. The carried
// partial line is cut off the old file before its rename, so a rotated file is final
// when it gets its new name: a reader following the log (`logs -f`) that read past
// that end has read the first bytes of the file after it, and skips them there.
func (f *File) shift(carry []byte) error {
	if err := shiftBackups(f.at(f.base), f.backups); err != nil {
		return err
	}
	old, oldSize := f.f, f.size
	cut := oldSize - int64(len(carry))
	if len(carry) == 0 {
		f.trim(old, oldSize)
	} else {
		f.reserved = 0 // the truncation frees them
		if err := old.Truncate(cut); err != nil {
			return fmt.Errorf("truncate: %w", err)
		}
	}
	// putBack undoes the cut when the rotation fails: the old file keeps every byte. The
	// file ends at the cut, and appending (O_APPEND) puts the line back there.
	putBack := func() {
		if len(carry) > 0 {
			if _, err := old.Write(carry); err != nil {
				f.noteErr(fmt.Errorf("rotate %s: restore the last line: %w", f.path, err))
			}
		}
	}
	if err := os.Rename(f.at(f.base), f.backup(1)); err != nil {
		putBack()
		return err
	}
	f.f = nil
	if err := f.open(true); err != nil {
		putBack()
		old.Close() // its bytes, carry included, are safe in name.1
		return err
	}
	if err := old.Close(); err != nil {
		f.noteErr(fmt.Errorf("rotate %s: close: %w", f.path, err))
	}
	return nil
}

// backup names backup i in the log's held folder (see File.at): its rotation renames and
// removes nothing a folder swapped on the way since would lead elsewhere.
func (f *File) backup(i int) string { return backupName(f.at(f.base), i) }

// shiftBackups makes room for a new path.1: path.backups goes, path.i becomes path.i+1.
func shiftBackups(path string, backups int) error {
	// Remove the oldest first so that no rename replaces a file: on ext4 a
	// replacing rename forces writeback of the renamed file (auto_da_alloc).
	// Only the backups there are, path.1 up to the first one missing: with backups = 10^6
	// every rotation made a million renames, with the log's lock held.
	n := 0
	for n < backups {
		if _, err := os.Lstat(backupName(path, n+1)); err != nil {
			break
		}
		n++
	}
	if n == backups {
		if err := removeAside(backupName(path, backups)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n--
	}
	for i := n; i >= 1; i-- {
		err := os.Rename(backupName(path, i), backupName(path, i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Rotate renames path to path.1, the older backups up by one, the oldest of backups
// (at least 1) removed: File's naming, for a file written by someone else (the
// detached daemon's own output). The caller opens the new path.
func Rotate(path string, backups int) error {
	if err := shiftBackups(path, max(backups, 1)); err != nil {
		return err
	}
	return os.Rename(path, backupName(path, 1))
}

// removeAside removes the file at name without freeing its blocks and cached pages on
// this goroutine: held open, the unlink only drops the name, and the last close, on a
// goroutine of its own, frees the rest. Freeing a 50 MB backup took 4.6-7.2 ms, and
// meanwhile nobody drained the pipe of the child being rotated. A file that cannot be
// opened is removed the ordinary way.
func removeAside(name string) error {
	// Not following a symlink, nor waiting for a writer: a program allowed to write its
	// log folder may have put a link or a FIFO at the name (a FIFO's open hung the
	// daemon's rotation, and with it its shutdown, for good).
	fh, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return os.Remove(name)
	}
	if st, err := fh.Stat(); err != nil || !st.Mode().IsRegular() {
		fh.Close()
		return os.Remove(name)
	}
	err = os.Remove(name)
	go fh.Close()
	return err
}
