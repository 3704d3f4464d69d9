package logs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// A program run as another user that may write its own log folder (chown app log/)
// could plant a symlink where its log goes before its first output, and the daemon,
// root, would append its output to whatever the link names (/etc/cron.d/x), or empty
// it (backups = 0). So a log path is resolved here, and a symlink on the way is followed
// only when its owner is trusted: root, the daemon's own user, or one Opener.Trust names
// (the bundle's owner, who writes the script root runs anyway). The open then refuses
// any symlink (openat2 RESOLVE_NO_SYMLINKS), so a link swapped in meanwhile fails it.

// trustedLinks is who may own a symlink the daemon follows to a log file.
type trustedLinks []uint32

func (t trustedLinks) allows(uid uint32) bool {
	if uid == 0 || int(uid) == os.Geteuid() {
		return true
	}
	for _, u := range t {
		if u == uid {
			return true
		}
	}
	return false
}

// planted refuses a log file st that another user (none trust allows) made first in a
// folder others may write (a shared /tmp/logs, 1777): root's daemon wrote the program's
// output, secrets and all, into a file that user owned and read.
func (t trustedLinks) planted(st os.FileInfo, dir string) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || t.allows(sys.Uid) {
		return nil
	}
	var ds syscall.Stat_t
	if syscall.Stat(dir, &ds) != nil {
		return nil
	}
	if !t.allows(ds.Uid) { // a folder that user made in a shared one, their files in it
		return fmt.Errorf("the file and its folder are uid %d's: not written, as that user would read it; give the log a folder of the daemon's, or of the program's user", sys.Uid)
	}
	if ds.Mode&0o022 == 0 {
		return nil
	}
	return fmt.Errorf("the file is uid %d's, made first in a folder others may write (mode %04o): not written, as that user would read it; remove the file, or give the log a folder of its own", sys.Uid, ds.Mode&0o7777)
}

// Planted is the refusal a log's writer would give of the file at path (see planted):
// another user's file, made first in a folder others may write or of theirs; nil when
// there is none, or it would be written. For check, which said ok of what up refused.
func Planted(path string, trust ...uint32) error {
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	return trustedLinks(trust).planted(st, filepath.Dir(path))
}

// ResolveTrusted is path with its symlinks resolved, following only those owned by root,
// the daemon's user or one of trust; an error names one it will not follow. For the
// daemon's own folders (state, socket) as for log paths: a link planted by a program's
// user in a folder it may write led root's state file into any folder of root's.
func ResolveTrusted(path string, trust []uint32) (string, error) {
	return trustedLinks(trust).resolve(path)
}

// maxLinks bounds symlinks followed in one path, as the kernel's ELOOP does.
const maxLinks = 40

// resolve returns path with every symlink resolved, or an error naming a link it will not
// follow. The part of the path that does not exist yet is returned as it is (the file
// and its folders are made by the daemon). Under /proc it stops: the kernel's files,
// whose magic links (/proc/self/fd/1, behind /dev/stdout) only the kernel resolves.
func (t trustedLinks) resolve(path string) (string, error) {
	rest := strings.Split(filepath.Clean(path), "/")
	cur := "/"
	for links := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		if cur == "/proc" || strings.HasPrefix(cur, "/proc/") {
			return filepath.Join(append([]string{next}, rest...)...), nil
		}
		st, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.Join(append([]string{next}, rest...)...), nil
		}
		if err != nil {
			return "", err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if uid := st.Sys().(*syscall.Stat_t).Uid; !t.allows(uid) {
			return "", fmt.Errorf("%s is a symlink owned by uid %d, not followed: that user could point it at any file or folder (name the real path, or have root own the link)", next, uid)
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: %w", path, syscall.ELOOP)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return cur, nil
}

// openResolved opens a path resolve returned: no symlink is followed on the way, but
// under /proc (see resolve).
func openResolved(real string, flags int, perm os.FileMode) (*os.File, error) {
	if real == "/proc" || strings.HasPrefix(real, "/proc/") {
		return os.OpenFile(real, flags, perm)
	}
	return openNoSymlinks(real, flags, perm)
}

// readTrust is who may own a symlink followed to a log that is read (`logs`, `logs -f`,
// probe.log), set once as the daemon starts (TrustReaders).
var readTrust trustedLinks

// TrustReaders sets the users, besides root and the daemon's own, whose symlinks on the
// way to a log are followed when it is read: the same as Opener.Trust. Call it before
// any log is read.
func TrustReaders(uids ...uint32) { readTrust = uids }

// ErrNotRegular: a log path that names no regular file (/dev/stdout, a FIFO): nothing to
// read back.
var ErrNotRegular = errors.New("not a regular file")

// OpenRead opens a log to read it, as root may: through no symlink a program could have
// planted (the daemon printed a root-only file as a program's log), and never waiting on
// a FIFO put at the name (the open hung for good). ErrNotRegular for anything but a file.
func OpenRead(path string) (*os.File, error) {
	real, err := readTrust.resolve(path)
	if err != nil {
		return nil, err
	}
	f, err := openResolved(real, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, ErrNotRegular
	}
	return f, nil
}

// OpenAppend opens a log the daemon writes outside a rotating File (its own,
// starvisor.log) for appending, creating it: through no symlink a user other than root,
// the daemon's own or trust could have planted (the folder handed to a program's user
// held a link that made root append its lines to any file), and never a FIFO or other
// non-file put at the name (ErrNotRegular). Made 0600: its notes name the programs'
// settings (a reload's host.env values), and others may read its folder.
func OpenAppend(path string, trust ...uint32) (*os.File, error) {
	real, err := trustedLinks(trust).resolve(path)
	if err != nil {
		return nil, err
	}
	f, err := openResolved(real, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	if err := trustedLinks(trust).planted(st, filepath.Dir(real)); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && st.Mode().Perm() == 0o644 && int(sys.Uid) == os.Geteuid() {
		f.Chmod(0o600) // made 0644 by an earlier version; another mode is someone's choice
	}
	syscall.SetNonblock(int(f.Fd()), false) // O_NONBLOCK only kept the open from waiting on a FIFO
	return f, nil
}
