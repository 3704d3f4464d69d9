package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/starvisor/starvisor/engine/logs"
)

// The detached daemon's own log rotates like supervisord's logfile (its defaults:
// logfile_maxbytes=50MB, logfile_backups=10): a program that crash-loops for months
// writes a few lines a second to it, and nothing else bounds it.
var (
	ownLogMax     int64 = 50 << 20
	ownLogBackups       = 10
)

// daemonOutput readies the daemon's own stdout and stderr. When they are a file (`up >
// out.log`), it is appended to: a program whose log is /dev/stdout writes that same
// file, and neither may overwrite the other's lines. With ownLogPath (set by --detach)
// they are that file, which rotates: d is returned writing through own.
func daemonOutput(d *Deps, ownLogPath string, trust []uint32) (_ *Deps, own *ownLog, err error) {
	for _, f := range []*os.File{os.Stdout, os.Stderr} {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err == nil {
				unix.FcntlInt(f.Fd(), unix.F_SETFL, fl|unix.O_APPEND)
			}
		}
	}
	if ownLogPath == "" {
		return d, nil, nil
	}
	if own, err = openOwnLog(ownLogPath, trust, os.Stdout, os.Stderr); err != nil {
		return nil, nil, err
	}
	dd := *d
	dd.Stdout, dd.Stderr = own, own
	return &dd, own, nil
}

// ownLog is the detached daemon's stdout and stderr. They stay the log file itself,
// not a pipe, so what the runtime writes to them directly (a crash's trace) still
// lands in it; at ownLogMax the file rotates and the descriptors are pointed at the
// new one.
type ownLog struct {
	mu   sync.Mutex
	path string
	// dir is the log's folder, held open (as a program's log holds its own, logs.File):
	// a bundle moved while the daemon runs keeps its log in the folder it moved to,
	// where the path made the old folder again on the next look.
	dir   *os.File
	files []*os.File // the descriptors that write the log: os.Stdout and os.Stderr
	size  int64
	err   error // the last rotation's, said once in the log
	// rotated, when set, runs after each rotation: programs whose log is /dev/stdout
	// reopen it, or they would go on writing the renamed file.
	rotated func()
	looked  time.Time // the last followName check
	// trust: besides root and the daemon's user, who may own a symlink followed to the
	// log (logs.OpenAppend): the folder may be a program user's to write.
	trust []uint32
	// lost: bytes the log could not take (a full disk), said in it once it can (see
	// sayLost); cut: the last write stopped mid-line; lostWhy: the write's error.
	lost    int64
	cut     bool
	lostWhy error
}

// openOwnLog takes over files, open on path for appending.
func openOwnLog(path string, trust []uint32, files ...*os.File) (*ownLog, error) {
	st, err := files[0].Stat()
	if err != nil {
		return nil, fmt.Errorf("own log: %w", err)
	}
	l := &ownLog{path: path, files: files, size: st.Size(), trust: trust}
	l.dir, _ = os.Open(filepath.Dir(path)) // without it, the path
	return l, nil
}

// where is the log file's name through its held folder, for `logs --daemon`: where it
// is written, wherever the bundle moved.
func (l *ownLog) where() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	// By its folder's real path, not /proc/self/fd/N/...: the reader checks the symlinks
	// on the way (logs.OpenRead), where the kernel's magic link led through one another
	// user planted at the log's name (logs --daemon printed a root-only file).
	return l.realName()
}

// name is the log file's name through its held folder, or its path once that folder
// was removed (rm -rf log/): the folder is then made again there, and held.
func (l *ownLog) name() string {
	if l.dir != nil {
		if logs.Reachable(l.dir) {
			return "/proc/self/fd/" + strconv.Itoa(int(l.dir.Fd())) + "/" + filepath.Base(l.path)
		}
		l.dir.Close()
		l.dir = nil
	}
	if os.MkdirAll(filepath.Dir(l.path), 0o755) == nil {
		if d, err := os.Open(filepath.Dir(l.path)); err == nil {
			l.dir = d
			return l.name()
		}
	}
	return l.path
}

// realName is the log's path through its held folder's real path: the symlinks on the way
// to the file are checked (logs.OpenAppend), where /proc/self/fd/N is the kernel's.
func (l *ownLog) realName() string {
	name := l.name()
	if dir, base := filepath.Split(name); strings.HasPrefix(dir, "/proc/self/fd/") {
		if real, err := os.Readlink(filepath.Clean(dir)); err == nil && filepath.IsAbs(real) {
			return filepath.Join(real, base)
		}
	}
	return name
}

func (l *ownLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.followName()
	if l.lost > 0 && !l.sayLost() {
		l.lost += int64(len(p))
		return 0, l.lostWhy
	}
	n, err := l.files[0].Write(p)
	l.size += int64(n)
	if err != nil {
		l.lost += int64(len(p) - n)
		l.cut = l.cut || n > 0 && p[n-1] != '\n'
		l.lostWhy = err
	}
	if l.size >= ownLogMax {
		l.rotate()
	}
	return n, err
}

// sayLost marks where the log lost lines and how much, as a program's log does
// (logs.File): after a full disk, the daemon's log, where one reads why programs
// restarted, had a silent hole, the cut line glued to the first one after. False
// when the mark itself could not be written.
func (l *ownLog) sayLost() bool {
	why := l.lostWhy
	var pe *fs.PathError
	if errors.As(why, &pe) {
		why = pe.Err // it names /dev/stdout
	}
	mark := fmt.Sprintf("[starvisor: %d bytes of this log lost here: %v]\n", l.lost, why)
	if l.cut {
		mark = "\n" + mark
	}
	n, err := l.files[0].Write([]byte(mark))
	l.size += int64(n)
	if err != nil {
		l.cut = l.cut || n > 0
		return false
	}
	l.lost, l.cut = 0, false
	return true
}

// followName, at most once a second, points the descriptors at a new file when the path
// no longer names theirs (rm of the log or of its folder; a logrotate without SIGUSR2),
// as a program's log does (logs.File): the daemon's lines, which say why programs
// restart, went on into a deleted file until a rotation.
func (l *ownLog) followName() {
	now := time.Now()
	if now.Sub(l.looked) < time.Second {
		return
	}
	l.looked = now
	open, err := l.files[0].Stat()
	if err != nil {
		return
	}
	if named, err := os.Stat(l.name()); err == nil && os.SameFile(open, named) {
		return
	}
	l.size = 0
	l.err = l.openNew(nil)
}

// reopen points the descriptors at the file now at path (SIGUSR2, after an external
// logrotate renamed it).
func (l *ownLog) reopen() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.size = 0
	l.err = l.openNew(nil)
	if st, err := l.files[0].Stat(); err == nil {
		l.size = st.Size()
	}
}

// rotate shifts the files and opens a new log. On failure the log goes on in the same
// file (a full log beats a lost one), and the next try waits for another ownLogMax.
func (l *ownLog) rotate() {
	l.size = 0
	err := logs.Rotate(l.name(), ownLogBackups)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil // someone removed the log: start a new one
	}
	l.err = l.openNew(err)
	if l.err == nil && l.rotated != nil {
		l.rotated() // must not write to l: it holds l.mu
	}
}

// openNew (unless err, the rotation's failure) opens the file at path and points the
// descriptors at it. An error is said in the log, once in a row.
func (l *ownLog) openNew(err error) error {
	var nf *os.File
	if err == nil {
		nf, err = logs.OpenAppend(l.realName(), l.trust...)
	}
	if err == nil {
		defer nf.Close()
		unix.Flock(int(nf.Fd()), unix.LOCK_EX|unix.LOCK_NB) // held as the first was (see detach)
		for _, f := range l.files {
			if e := unix.Dup3(int(nf.Fd()), int(f.Fd()), 0); e != nil && err == nil {
				err = e
			}
		}
	}
	if err != nil && (l.err == nil || err.Error() != l.err.Error()) {
		fmt.Fprintf(l.files[0], "starvisor: %s: %v\n", l.path, err)
	}
	return err
}
