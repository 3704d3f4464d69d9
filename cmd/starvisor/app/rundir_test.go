package app

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/matryer/is"
)

// A lock folder another user made first, or one others may write, is refused (tmux's rule
// for its socket folder): whoever owns it could hold a bundle's lock or swap its socket.
func TestOwnRunDir(t *testing.T) {
	is := is.New(t)
	dir := filepath.Join(t.TempDir(), "starvisor-x")
	is.NoErr(os.Mkdir(dir, 0o700))
	is.NoErr(ownRunDir(dir))

	is.NoErr(os.Chmod(dir, 0o777))
	err := ownRunDir(dir)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "mode 0777"))
	is.True(strings.Contains(err.Error(), "is not this user's alone"))

	is.NoErr(os.Chmod(dir, 0o700))
	link := dir + "-link"
	is.NoErr(os.Symlink(dir, link))
	is.True(ownRunDir(link) != nil) // a symlink is not the folder itself

	if os.Geteuid() == 0 {
		is.NoErr(os.Chown(dir, 1, 1))
		err = ownRunDir(dir)
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), "owner uid 1"))
	}
}

// A lock file of another user's names no socket: a squatter's file dropped where the
// bundle's lock goes must not lead the client to their socket.
func TestLockOfAnotherUserIgnored(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file away")
	}
	is := is.New(t)
	lock := filepath.Join(t.TempDir(), "x.lock")
	is.NoErr(os.WriteFile(lock, []byte("/tmp/evil.sock\n1.1\n"), 0o644))
	f, err := os.Open(lock)
	is.NoErr(err)
	defer f.Close()
	is.NoErr(syscall.Flock(int(f.Fd()), syscall.LOCK_SH)) // held: the socket in it counts
	is.Equal(lockedSocketAt(lock, "def"), "/tmp/evil.sock")
	is.NoErr(os.Chown(lock, 1, 1))
	is.Equal(lockedSocketAt(lock, "def"), "def")
}

// A socket folder another user may rename the socket in is refused: theirs, or one others
// may write without the sticky bit (/tmp, root's and sticky, is fine).
func TestSafeSocketDir(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	is.NoErr(safeSocketDir(dir))
	is.NoErr(safeSocketDir("/tmp"))
	is.NoErr(os.Chmod(dir, 0o777))
	err := safeSocketDir(dir)
	is.True(err != nil && strings.Contains(err.Error(), "no sticky bit"))
	is.NoErr(os.Chmod(dir, 0o777|os.ModeSticky))
	is.NoErr(safeSocketDir(dir))
	if os.Geteuid() == 0 {
		is.NoErr(os.Chown(dir, 1, 1))
		err = safeSocketDir(dir)
		is.True(err != nil && strings.Contains(err.Error(), "is uid 1's"))
	}
}

// A state folder another user may write in is refused, sticky or not: they could plant
// a symlink at daemon.lock (root wrote through it) or a state.json naming any process
// as a stray (root's up killed it), or create them first.
func TestSafeStateDir(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	is.NoErr(safeStateDir(dir))
	is.NoErr(os.Chmod(dir, 0o777|os.ModeSticky))
	err := safeStateDir(dir)
	is.True(err != nil && strings.Contains(err.Error(), "may be written by others"))
	is.NoErr(os.Chmod(dir, 0o755))
	if os.Geteuid() == 0 {
		is.NoErr(os.Chown(dir, 1, 1))
		err = safeStateDir(dir)
		is.True(err != nil && strings.Contains(err.Error(), "is uid 1's: its owner could plant its lock"))
	}
}

// ls looks for locks where any up of this user could have put them: a daemon started
// from an ssh login (XDG_RUNTIME_DIR=/run/user/1001) was missing from ls run where
// the variable is not set (su -, cron, sudo -iu), which said none ran.
func TestLsDirsFindSessionLocks(t *testing.T) {
	is := is.New(t)
	session := "/run/user/1001/starvisor-1001"
	is.Equal(runDirsFor(1001, "/run/user/1001")[0], session) // where up puts them
	is.True(slices.Contains(lsDirs(1001, ""), session))
	is.True(slices.Contains(lsDirs(1001, ""), filepath.Join(os.TempDir(), "starvisor-1001")))
	is.Equal(len(lsDirs(1001, "/run/user/1001")), 2) // each folder once
	is.Equal(lsDirs(0, ""), []string{"/run/starvisor-0"})
}
