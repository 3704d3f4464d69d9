package logs

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/engine/plan"
)

// A symlink at a log path, or on the way to it, is followed only when root, the daemon's
// user or a trusted user owns it: one planted by a program's unprivileged user would
// point the root daemon's writes at any file.
func TestLogSymlinksFollowedOnlyWhenTrusted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make symlinks another user owns")
	}
	is := is.New(t)
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	is.NoErr(os.WriteFile(victim, []byte("precious\n"), 0o600))
	is.NoErr(os.Mkdir(filepath.Join(dir, "log"), 0o755))
	is.NoErr(os.Mkdir(filepath.Join(dir, "real"), 0o755))
	link := func(name, target string, uid int) string {
		p := filepath.Join(dir, name)
		is.NoErr(os.Symlink(target, p))
		is.NoErr(os.Lchown(p, uid, uid))
		return p
	}
	write := func(path string, trust ...uint32) error {
		o := Opener{Trust: trust}
		w, err := o.Open(&plan.Log{Path: path, MaxBytes: 1 << 20})
		is.NoErr(err)
		f := w.(*File)
		f.Write([]byte("evil\n"))
		f.Close()
		return f.Err()
	}

	planted := link("log/app.log", victim, 65534)
	err := write(planted)
	is.True(err != nil && strings.Contains(err.Error(), "is a symlink owned by uid 65534, not followed"))
	b, _ := os.ReadFile(victim)
	is.Equal(string(b), "precious\n") // untouched

	// Through a folder link on the way, too.
	link("log/sub", filepath.Dir(victim), 65534)
	err = write(filepath.Join(dir, "log/sub/victim"))
	is.True(err != nil && strings.Contains(err.Error(), "not followed"))
	b, _ = os.ReadFile(victim)
	is.Equal(string(b), "precious\n")

	// A link root owns, or one a trusted user does, is followed.
	is.NoErr(write(link("log/root.log", filepath.Join(dir, "real/a.log"), 0)))
	is.NoErr(write(link("log/owner.log", filepath.Join(dir, "real/b.log"), 1234), 1234))
	for _, n := range []string{"a.log", "b.log"} {
		b, err := os.ReadFile(filepath.Join(dir, "real", n))
		is.NoErr(err)
		is.Equal(string(b), "evil\n")
	}
	// And /dev/stdout, through root's links to /proc's magic ones.
	is.NoErr(write("/dev/null"))
	real, err := trustedLinks(nil).resolve("/dev/stdout")
	is.NoErr(err)
	is.True(strings.HasPrefix(real, "/proc/"))
}

// After the first open, the log's folder is held: a folder on the way swapped for a
// symlink (by a program allowed to write the folder above) leads no rotation's renames
// and removals elsewhere, a FIFO at a backup's name does not hang it, and a folder moved
// (mv of the bundle) keeps its log, with no folder made again at the old path.
func TestLogFolderIsHeld(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "log", "app", "out.log")
	f, err := Open(plan.Log{Path: path, MaxBytes: 10, Backups: 2})
	is.NoErr(err)
	defer f.Close()
	f.Write([]byte("one\n"))
	is.NoErr(f.Err())

	// Swapped: log/app now leads to a folder holding someone else's files.
	other := filepath.Join(dir, "other")
	is.NoErr(os.Mkdir(other, 0o755))
	for _, n := range []string{"out.log", "out.log.1", "out.log.2"} {
		is.NoErr(os.WriteFile(filepath.Join(other, n), []byte("precious\n"), 0o600))
	}
	is.NoErr(os.Rename(filepath.Join(dir, "log", "app"), filepath.Join(dir, "log", "held")))
	is.NoErr(os.Symlink(other, filepath.Join(dir, "log", "app")))
	// A FIFO where the oldest backup goes: removing it must not wait for a writer.
	is.NoErr(syscall.Mkfifo(filepath.Join(dir, "log", "held", "out.log.2"), 0o644))
	f.Write([]byte("two two two\n")) // past max_bytes: rotates, in the held folder
	f.Write([]byte("three\n"))
	is.NoErr(f.Err())
	for _, n := range []string{"out.log", "out.log.1", "out.log.2"} {
		b, err := os.ReadFile(filepath.Join(other, n))
		is.NoErr(err)
		is.Equal(string(b), "precious\n") // untouched
	}
	// Every byte is in the held folder, in order.
	var all string
	for _, n := range []string{"out.log.2", "out.log.1", "out.log"} {
		if st, err := os.Stat(filepath.Join(dir, "log", "held", n)); err == nil && st.Mode().IsRegular() {
			b, err := os.ReadFile(filepath.Join(dir, "log", "held", n))
			is.NoErr(err)
			all += string(b)
		}
	}
	is.True(strings.HasSuffix(all, "two two two\nthree\n"))
	is.True(f.rotations > 0)
}

// The daemon's own log is made 0600: its notes name the programs' settings, and the
// bundle's log folder is one others may read.
func TestOpenAppendMakesItPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "starvisor.log")
	f, err := OpenAppend(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	// One an earlier version made 0644 is made 0600; another mode is left as chosen.
	for mode, want := range map[os.FileMode]os.FileMode{0o644: 0o600, 0o640: 0o640} {
		os.Chmod(path, mode)
		f, err := OpenAppend(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if st, _ := os.Stat(path); st.Mode().Perm() != want {
			t.Errorf("from %v: mode %v, want %v", mode, st.Mode().Perm(), want)
		}
	}
}

// A log file another user made first in a folder others may write (a shared 1777 log
// folder) is not written: root's daemon put the program's output, secrets and all, into
// a file that user owned and read. One in a folder of the daemon's own is written.
func TestPlantedLogFileRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("another user's file wants root")
	}
	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(shared, 0o777|os.ModeSticky)
	for _, name := range []string{"web.log", "starvisor.log"} {
		planted := filepath.Join(shared, name)
		if err := os.WriteFile(planted, nil, 0o666); err != nil {
			t.Fatal(err)
		}
		os.Chown(planted, 65534, 65534)
	}
	web, err := Open(plan.Log{Path: filepath.Join(shared, "web.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer web.Close()
	web.Write([]byte("DB_PASSWORD=hunter2\n"))
	if err := web.Err(); err == nil || !strings.Contains(err.Error(), "the file is uid 65534's, made first in a folder others may write (mode 1777)") {
		t.Errorf("program log: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(shared, "web.log")); len(b) > 0 {
		t.Errorf("written: %q", b)
	}
	if _, err := OpenAppend(filepath.Join(shared, "starvisor.log")); err == nil || !strings.Contains(err.Error(), "uid 65534's") {
		t.Errorf("daemon log: %v", err)
	}
	// A folder that user made in the shared one, their file in it: refused too.
	theirs := filepath.Join(shared, "theirs")
	os.Mkdir(theirs, 0o755)
	os.WriteFile(filepath.Join(theirs, "starvisor.log"), nil, 0o644)
	os.Chown(theirs, 65534, 65534)
	os.Chown(filepath.Join(theirs, "starvisor.log"), 65534, 65534)
	if _, err := OpenAppend(filepath.Join(theirs, "starvisor.log")); err == nil || !strings.Contains(err.Error(), "the file and its folder are uid 65534's") {
		t.Errorf("daemon log in their folder: %v", err)
	}
	// Its program's user's file in that user's folder (logrotate's create 0640 app app):
	// that user's own output, written.
	progDir := filepath.Join(t.TempDir(), "app")
	os.Mkdir(progDir, 0o755)
	os.Chown(progDir, 65534, 65534)
	progLog := filepath.Join(progDir, "app.log")
	os.WriteFile(progLog, nil, 0o640)
	os.Chown(progLog, 65534, 65534)
	w, err := Opener{Owners: func(string) []uint32 { return []uint32{65534} }}.Open(&plan.Log{Path: progLog})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("ok\n"))
	if err := w.(*File).Err(); err != nil {
		t.Errorf("its program's user's own file: %v", err)
	}
	// The folder of one's own: written, whoever made the file (a log shipper's chown).
	own := t.TempDir()
	mine := filepath.Join(own, "web.log")
	os.WriteFile(mine, nil, 0o644)
	os.Chown(mine, 65534, 65534)
	f, err := Open(plan.Log{Path: mine})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("ok\n"))
	if err := f.Err(); err != nil {
		t.Errorf("own folder: %v", err)
	}
}

// A symlink put at a log's name after its first open (a reopen, a rotation) is said as
// at a first open: "too many levels of symbolic links" read as a loop of links.
func TestSymlinkAtALogsNameSaidOnReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	f, err := Open(plan.Log{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("one\n"))
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	if err := os.Symlink("/etc/passwd", path); err != nil {
		t.Fatal(err)
	}
	f.Reopen()
	f.Write([]byte("two\n"))
	if err := f.Err(); err == nil || !strings.Contains(err.Error(), "a.log is a symlink owned by uid") || !strings.Contains(err.Error(), "not followed: a log's name must be a file") {
		t.Errorf("err: %v", err)
	}
}
