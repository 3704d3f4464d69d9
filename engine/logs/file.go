package logs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/starvisor/starvisor/engine/plan"
)

// ErrClosed is returned by writes to a closed File.
var ErrClosed = errors.New("log file closed")

// File is a rotating log file. It is safe for concurrent use, so the stdout and
// stderr readers of one process may share it.
//
// The file (and its folders) is created lazily, by the first byte written: a
// program that writes nothing costs no file, and the creation happens in the
// pipe reader, off the engine's start path.
//
// A failed open or write (disk full, folder removed) never reaches the writer:
// the bytes are dropped, the error is kept for Err, and the next write reopens
// the file. The reader of a child's pipe therefore keeps draining and the child
// never blocks.
type File struct {
	path    string
	max     int64
	backups int
	stamps  bool
	trust   trustedLinks        // owners of symlinks followed on the way to the file
	owners  trustedLinks        // besides trust, who may own the file (its program's user)
	moved   func(string) string // see Opener.Moved
	now     func() time.Time    // tests may replace it

	// Health, read by status without mu (a write holding mu may be blocked: a frozen
	// file system): healthMu guards err, failing is atomic.
	healthMu sync.Mutex
	err      error       // last error, kept until Err reads it
	failing  atomic.Bool // the last bytes were dropped; false again once bytes reach the file
	lost     int64       // bytes dropped since the last that reached the file (under mu)
	health   func()      // see OnHealth (under mu)

	mu        sync.Mutex
	f         *os.File // nil until the first byte, and after a failure until reopened
	size      int64
	closed    bool
	stream    bool // not a regular file (/dev/null, a terminal, a pipe): never rotated
	broken    bool // a write failed: the file may end in a part of a line
	partial   bool // the last write did not end its line (stamps, EndOfStream)
	stampBuf  []byte
	tailBuf   []byte
	rotations int
	reserved  int64     // blocks are allocated up to this offset, past the end (see reserve)
	noReserve bool      // the file system has no fallocate
	writes    int       // count of writes, for Quiet
	looked    time.Time // when followName last compared the open file with its path
	dir       *os.File  // the log's folder, held from the first open on (see openIn)
	base      string    // the log's name in dir
	quietSet  bool      // a Quiet timer runs

	words atomic.Pointer[lastWords] // see LastWords
	wrote bool                      // bytes came since the last stream's end (under mu)
}

// Open returns a rotating log file described by l. It touches no file: the
// first write creates (or appends to) l.Path; see File.
func Open(l plan.Log) (*File, error) {
	if l.Path == "" {
		return nil, errors.New("logs.Open: empty path")
	}
	if l.MaxBytes < 0 || l.Backups < 0 {
		return nil, fmt.Errorf("logs.Open: %s: negative max_bytes or backups", l.Path)
	}
	return &File{path: l.Path, max: l.MaxBytes, backups: l.Backups, stamps: l.Timestamps, now: time.Now}, nil
}

// Path returns the file's name.
func (f *File) Path() string { return f.path }

// Err returns the last write error since the previous call, and forgets it.
func (f *File) Err() error {
	f.healthMu.Lock()
	defer f.healthMu.Unlock()
	err := f.err
	f.err = nil
	return err
}

// Failing reports whether the last bytes written were dropped (the file could not be
// opened or written). It turns false as soon as bytes reach the file again, which is
// how the engine learns that a full disk has room again.
func (f *File) Failing() bool { return f.failing.Load() }

// noteErr records err for Err. It takes only healthMu: status reads a log's health
// while a write may hold mu, blocked (a frozen file system), and must not wait for it.
func (f *File) noteErr(err error) {
	f.healthMu.Lock()
	f.err = err
	f.healthMu.Unlock()
}

// Rotations returns how many times the file has rotated since Open.
func (f *File) Rotations() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rotations
}

// Write writes p, rotating as needed. It reports success even when the disk
// refused the bytes (see File); it fails only after Close.
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, ErrClosed
	}
	f.writeOut(p)
	return len(p), nil
}

// writeOut writes p, stamped when the log has timestamps. Called with mu held.
func (f *File) writeOut(p []byte) {
	if f.stamps {
		f.write(f.stamp(p))
	} else {
		f.write(p)
	}
	if len(p) > 0 {
		f.partial = p[len(p)-1] != '\n'
		f.wrote = true
	}
}

// EndOfStream ends, with a newline, a line its writer left unfinished when its stream
// ended (the process exited mid-line): the next run's first line would continue it. It
// keeps the file's last line then (LastWords): a crash's words, which the restarted
// run's first lines (a start-up banner) hide in the file.
func (f *File) EndOfStream() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	if f.partial {
		f.writeOut([]byte{'\n'})
	}
	if f.wrote {
		f.keepLastWords()
	} else {
		f.words.Store(nil) // a run that wrote nothing: an earlier run's line is not its words
	}
	f.wrote = false
}

// lastWords is a file's last line as its writer's stream ended, and when.
type lastWords struct {
	line string
	at   time.Time
}

// keepLastWords reads the file's last line for LastWords. Called with mu held, once per
// stream's end: never on the write path.
func (f *File) keepLastWords() {
	if f.f == nil || f.stream || f.size == 0 {
		return
	}
	n := min(f.size, 1024)
	buf := make([]byte, n)
	if _, err := f.f.ReadAt(buf, f.size-n); err != nil {
		return
	}
	text := strings.TrimRight(string(buf), "\r\n \t")
	line := strings.TrimSpace(text[strings.LastIndexByte(text, '\n')+1:])
	if line == "" {
		return
	}
	f.words.Store(&lastWords{line: line, at: f.now()})
}

// LastWords is the path of the file, its last line as the last stream written to it
// ended (see EndOfStream), and when that was; "" when none ended yet.
func (f *File) LastWords() (path, line string, at time.Time) {
	if w := f.words.Load(); w != nil {
		return f.path, w.line, w.at
	}
	return f.path, "", time.Time{}
}

// Retune takes l's rotation settings (max_bytes, backups, timestamps) for the file at
// the same path: an apply changes them without restarting the program. A smaller
// max_bytes rotates at the next write.
func (f *File) Retune(l plan.Log) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.Path == f.path && l.MaxBytes >= 0 && l.Backups >= 0 {
		f.max, f.backups, f.stamps = l.MaxBytes, l.Backups, l.Timestamps
	}
}

// Reopen closes the file; the next write opens the path again (creating it). For an
// external logrotate that renamed the file: output then goes to the new one.
func (f *File) Reopen() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f != nil {
		f.trim(f.f, f.size)
		f.f.Close()
		f.f = nil
	}
}

// Close closes the file; later writes fail with ErrClosed.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	forgetFiles(f, f.path)
	if f.dir != nil {
		f.dir.Close()
		f.dir = nil
	}
	if f.f == nil {
		return nil
	}
	f.trim(f.f, f.size)
	err := f.f.Close()
	f.f = nil
	if err != nil {
		return fmt.Errorf("logs.Close: %w", err)
	}
	return nil
}

// open opens the file at its end (or empty when truncate). We are the only writer, so
// the offset is ours.
func (f *File) open(truncate bool) error {
	if f.dir != nil && !f.dirAlive() {
		f.dir.Close() // its folder was removed: made again at the path, below
		f.dir = nil
	}
	if f.dir != nil {
		return f.openIn(truncate)
	}
	path := f.path
	if f.moved != nil {
		path = f.moved(path) // its bundle moved since: made where it is now
	}
	// Resolved before any folder is made: none through a link that is not trusted.
	real, err := f.trust.resolve(path)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		return fmt.Errorf("open: %w", err)
	}
	// A device, a terminal or a pipe (/dev/null, /dev/stdout, a FIFO a log shipper reads)
	// is a stream: never rotated (that would rename the device and put a regular file in
	// its place), opened write-only (a read end of our own would keep a pipe from ever
	// breaking) and non-blocking: nobody reading it must never stall the daemon, whose
	// status and stop wait for this file's lock.
	// Under /proc (/dev/stdout, /proc/self/fd/N): a descriptor of the daemon's own, which
	// it writes as a stream even when that is a file (up > out.log), never rotates.
	if st, err := os.Stat(real); err == nil && (!st.Mode().IsRegular() || strings.HasPrefix(real, "/proc/")) {
		fh, err := openResolved(real, os.O_WRONLY|os.O_APPEND|syscall.O_NONBLOCK, 0)
		if errors.Is(err, syscall.ENXIO) {
			err = errors.New("a pipe nobody reads")
		}
		if err != nil {
			return fmt.Errorf("open: %s: %w", f.path, err)
		}
		f.f, f.size, f.reserved, f.stream = fh, 0, 0, true
		return nil
	}
	dir, err := openResolved(filepath.Dir(real), os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	f.dir, f.base = dir, filepath.Base(real)
	return f.openIn(truncate)
}

// openIn opens the log in its folder, held open since the first open (f.dir): a folder
// on the way swapped for a symlink later (by a program allowed to write its log
// folder) leads neither this open nor a rotation's renames and removals elsewhere, and a
// folder moved with its bundle (mv) keeps its log, where a path would have made the old
// folder again.
func (f *File) openIn(truncate bool) error {
	// O_APPEND: another writer of the file (/dev/stdout of a daemon whose output is that
	// file, a second program given the same path) never has its bytes overwritten.
	flags := os.O_RDWR | os.O_CREATE | os.O_APPEND | syscall.O_NOFOLLOW | syscall.O_CLOEXEC | syscall.O_NONBLOCK
	if truncate {
		flags |= os.O_TRUNC
	}
	fd, err := syscall.Openat(int(f.dir.Fd()), f.base, flags, 0o644)
	if err == syscall.ELOOP {
		// A symlink put at the log's name since it was first opened: said as at a first
		// open, where "too many levels of symbolic links" read as a loop of links.
		var st unix.Stat_t
		owner := ""
		if unix.Fstatat(int(f.dir.Fd()), f.base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			owner = fmt.Sprintf(" owned by uid %d", st.Uid)
		}
		return fmt.Errorf("open: %s is a symlink%s, not followed: a log's name must be a file", f.path, owner)
	}
	if err != nil {
		return fmt.Errorf("open: %s: %w", f.path, err)
	}
	fh := os.NewFile(uintptr(fd), f.path)
	st, err := fh.Stat()
	if err != nil || !st.Mode().IsRegular() {
		fh.Close() // a FIFO or a device put in its place: not a file to write and rotate
		return fmt.Errorf("open: %s: not a regular file any more", f.path)
	}
	if err := append(f.trust, f.owners...).planted(st, "/proc/self/fd/"+strconv.Itoa(int(f.dir.Fd()))); err != nil {
		fh.Close()
		return fmt.Errorf("open: %s: %w", f.path, err)
	}
	syscall.SetNonblock(fd, false) // O_NONBLOCK only kept the open from waiting on a FIFO
	noteFile(f, f.path, st)
	size, err := fh.Seek(0, io.SeekEnd)
	if err != nil {
		fh.Close()
		return fmt.Errorf("open: %s: %w", f.path, err)
	}
	f.f, f.size, f.reserved, f.stream = fh, size, 0, false
	f.looked = f.now() // the path names it now: followName looks again in a second
	// An earlier writer (a daemon killed) may have left half a line: endLine before this
	// File's first write. Not on a reopen (SIGUSR2) mid-line of this File's own writer.
	f.broken = f.broken || size > 0 && f.writes == 0
	return nil
}

// ready makes sure a file is open: on the first write, and again after a failure.
func (f *File) ready() bool {
	if f.f != nil {
		return true
	}
	if err := f.open(false); err != nil {
		f.noteErr(fmt.Errorf("%w"+dropped, err))
		f.setFailing(true)
		return false
	}
	return true
}

// OnHealth has fn run, on a goroutine of its own, each time the file starts dropping
// output or writes again: a read-only folder was said only when someone asked for
// status, and its repair never.
func (f *File) OnHealth(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.health = fn
}

// setFailing records whether the last bytes were dropped. Called with mu held.
func (f *File) setFailing(v bool) {
	if f.failing.Swap(v) != v && f.health != nil {
		go f.health()
	}
}

// dropped ends an error after which the output is lost until the log works again.
const dropped = " (output is dropped until the log can be written)"

// fail records err and drops the handle so the next write reopens the file.
func (f *File) fail(err error) {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // it names the path already
	}
	f.noteErr(fmt.Errorf("write %s: %w"+dropped, f.path, err))
	f.setFailing(true)
	f.broken = true
	if f.f != nil {
		f.trim(f.f, f.size)
		f.f.Close()
		f.f = nil
	}
}

// Why reserve: a child flooding its output makes ext4 reserve space block by block
// (delayed allocation) as the page cache takes the bytes, a large part of the
// daemon's CPU per gigabyte written. Blocks allocated ahead, in one fallocate per
// reserveStep, take that away: on the test machine 1 GiB written through a File
// went from 1.8 to 2.9 GB/s, and a 1 GiB capture from 0.75 to 0.68 s of daemon CPU
// (means of interleaved runs). Only big writes (a pipe found full) reserve, so a quiet program's log never holds
// more blocks than bytes; the blocks left past the end are given back when the file
// rotates or closes (trim). A daemon killed meanwhile leaves at most reserveStep
// allocated past the end, used by the next daemon's writes.
//
// Why not O_DIRECT for a flood, which skips the page cache and its fresh pages: tried
// on 2026-11-27 (page-aligned middles direct, head and tail buffered, pipe reads
// placed so the middles are aligned in memory too), each direct write waits for the
// disk, and a capture went from 1.3-1.5 to 0.64-0.91 GB/s for the same daemon CPU.
const (
	reserveFrom = 64 << 10
	reserveStep = 8 << 20
)

// reserve allocates blocks for the next n bytes, and up to reserveStep ahead, though
// not past the next rotation (room, 0: none). Failures only mean no reservation.
func (f *File) reserve(n, room int64) {
	if f.noReserve || f.size+n <= f.reserved {
		return
	}
	want := max(int64(reserveStep), n)
	if room > 0 {
		want = min(want, room)
	}
	supported := allocate(f.f, f.size, want)
	f.noReserve = !supported
	f.reserved = f.size + want // even after a failure (a full disk): not again before then
}

// quietAfter is how long a log with blocks reserved must go unwritten before they
// are given back: a program that printed one burst (a start-up dump, a traceback) and
// went quiet does not keep reserveStep of disk while the daemon runs.
var quietAfter = time.Second

// Quiet says its writer found nothing more to write for now (the pipe is empty). Once
// no byte came for quietAfter, the blocks reserved past the end are given back.
func (f *File) Quiet() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reserved > f.size && !f.quietSet {
		f.quietSet = true
		f.afterQuiet(f.writes)
	}
}

// afterQuiet trims once quietAfter passed without a write since the count was seen.
// Called with mu held.
func (f *File) afterQuiet(seen int) {
	time.AfterFunc(quietAfter, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch {
		case f.writes != seen && f.reserved > f.size:
			f.afterQuiet(f.writes) // written meanwhile: look again later
		default:
			f.quietSet = false
			if f.f != nil {
				f.trim(f.f, f.size)
			}
		}
	})
}

// trim gives back the blocks reserved past size, the end of fh. Unless fh is no longer
// that size: someone else cut it, and truncating would grow it back with zeros.
func (f *File) trim(fh *os.File, size int64) {
	reserved := f.reserved
	f.reserved = 0
	if reserved <= size {
		return
	}
	if st, err := fh.Stat(); err == nil && st.Size() == size {
		fh.Truncate(size)
	}
}

// writeNow writes p to a stream without waiting: what a full pipe does not take now is
// an error (EAGAIN), and dropped, rather than a write parked until someone reads.
func writeNow(fh *os.File, p []byte) (n int, err error) {
	rc, err := fh.SyscallConn()
	if err != nil {
		return 0, err
	}
	cerr := rc.Write(func(fd uintptr) bool {
		for len(p) > 0 {
			m, werr := syscall.Write(int(fd), p)
			if m > 0 {
				n, p = n+m, p[m:]
			}
			if werr == syscall.EINTR {
				continue
			}
			if werr != nil {
				err = werr
				break
			}
		}
		return true // never wait for the poller
	})
	if err == syscall.EAGAIN {
		err = errors.New("nobody reads it fast enough: the pipe is full")
	}
	return n, errors.Join(err, cerr)
}

// endLine, after a failed write (a full disk took part of a line), ends the file's last
// line, so that the first line written once there is room does not continue it.
func (f *File) endLine() {
	f.broken = false
	var last [1]byte
	if f.stream || f.size == 0 {
		return
	}
	if _, err := f.f.ReadAt(last[:], f.size-1); err == nil && last[0] != '\n' {
		if n, err := f.f.Write([]byte{'\n'}); err == nil {
			f.size += int64(n)
		}
	}
}

// sayLost marks in the file where output was dropped and how much (a full disk, a log
// folder removed): the gap was silent, with a line torn mid-way. False when the mark
// itself could not be written. Called with mu held.
func (f *File) sayLost() bool {
	mark := fmt.Sprintf("[starvisor: %d bytes of output lost here: the log could not be written]\n", f.lost)
	n, err := f.f.Write([]byte(mark))
	f.size += int64(n)
	if err != nil {
		f.fail(err)
		return false
	}
	f.lost = 0
	return true
}

// write writes p in pieces that fit before the next rotation. Called with mu held.
func (f *File) write(p []byte) {
	f.followName()
	for len(p) > 0 {
		if !f.ready() {
			f.lost += int64(len(p))
			return // dropped; f.err says why
		}
		room, ok := f.room()
		if !ok {
			f.setFailing(true)
			f.lost += int64(len(p))
			return // the handle was lost while rotating; f.err says why
		}
		chunk := p
		if room > 0 && int64(len(chunk)) > room {
			chunk = chunk[:room]
		}
		if len(chunk) >= reserveFrom && !f.stream {
			f.reserve(int64(len(chunk)), room)
		}
		if f.broken {
			f.endLine()
		}
		if f.lost > 0 && !f.stream && !f.sayLost() {
			f.lost += int64(len(p))
			return
		}
		var n int
		var err error
		if f.stream {
			n, err = writeNow(f.f, chunk)
		} else {
			n, err = f.f.Write(chunk)
		}
		f.size += int64(n)
		f.writes++
		p = p[n:]
		if err != nil {
			f.fail(err)
			f.lost += int64(len(p))
			return
		}
		f.setFailing(false)
		f.rotateIfFull()
	}
}

// followName reopens, at most once a second, a regular log whose path no longer names the
// open file: deleted (rm, a cleaner) or moved (logrotate without copytruncate, no
// postrotate SIGUSR2). Its output went on into an unlinked or renamed file, where
// `logs` and anyone reading the path saw nothing more, and a deleted one filled the
// disk out of sight.
func (f *File) followName() {
	if f.f == nil || f.stream {
		return
	}
	now := f.now()
	if now.Sub(f.looked) < time.Second {
		return
	}
	f.looked = now
	open, err := f.f.Stat()
	if err != nil {
		return
	}
	if named, err := os.Stat(f.at(f.base)); err == nil && os.SameFile(open, named) {
		return
	}
	f.trim(f.f, f.size)
	f.f.Close()
	f.f = nil // the next write makes the file at the path again
}

// at names the file name in the log's held folder (through /proc/self/fd: calls by path
// resolve no folder by name on the way); the path's folder when none is held.
func (f *File) at(name string) string {
	if f.dir == nil {
		return filepath.Join(filepath.Dir(f.path), name)
	}
	return "/proc/self/fd/" + strconv.Itoa(int(f.dir.Fd())) + "/" + name
}

// dirAlive says whether the log's held folder is still there (see Reachable).
func (f *File) dirAlive() bool { return Reachable(f.dir) }

// Reachable says whether a folder held open still exists (not removed: rm -rf log/) and
// is still reached by a path: wherever it moved, its path now names it. A file system
// unmounted under it (umount -l of one gone read-only, the repaired one mounted at its
// path) holds it apart from every path: a log written there was never seen again, and
// its path through the folder read "/", at the root of the machine.
func Reachable(dir *os.File) bool {
	fd := int(dir.Fd())
	var st, now syscall.Stat_t
	if syscall.Fstat(fd, &st) != nil || st.Nlink == 0 {
		return false
	}
	at, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return true // no /proc: as far as can be told
	}
	return syscall.Stat(at, &now) == nil && now.Dev == st.Dev && now.Ino == st.Ino
}
