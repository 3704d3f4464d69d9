package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/engine/logs"
)

// The detached daemon's log rotates at ownLogMax into .1 … .N, and both descriptors
// that write it (stdout and stderr in the daemon) follow to the new file: what is
// written straight to them, as a crash's trace is, lands in the current log.
func TestOwnLogRotatesAndMovesDescriptors(t *testing.T) {
	is := is.New(t)
	oldMax, oldBackups := ownLogMax, ownLogBackups
	ownLogMax, ownLogBackups = 100, 2
	t.Cleanup(func() { ownLogMax, ownLogBackups = oldMax, oldBackups })

	path := filepath.Join(t.TempDir(), "starvisor.log")
	var files []*os.File
	for range 2 { // the daemon's stdout and stderr
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		is.NoErr(err)
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
	}
	_, err := files[1].WriteString("from an earlier run\n")
	is.NoErr(err)
	l, err := openOwnLog(path, nil, files...)
	is.NoErr(err)
	rotations := 0
	l.rotated = func() { rotations++ } // programs logging to /dev/stdout reopen it
	var all []string
	for i := range 12 { // 12 lines of 25 bytes: three rotations
		line := fmt.Sprintf("line %02d %s\n", i, strings.Repeat("x", 16))
		all = append(all, line)
		_, err := l.Write([]byte(line))
		is.NoErr(err)
	}
	_, err = files[1].WriteString("straight to stderr\n")
	is.NoErr(err)

	read := func(name string) string {
		b, err := os.ReadFile(name)
		is.NoErr(err)
		return string(b)
	}
	// 20 + 4×25 bytes fill the first file, then 4 lines each: three rotations, the
	// oldest file gone.
	is.Equal(read(path+".2"), strings.Join(all[4:8], ""))
	is.Equal(read(path+".1"), strings.Join(all[8:12], ""))
	is.Equal(read(path), "straight to stderr\n")
	_, err = os.Stat(path + ".3")
	is.True(os.IsNotExist(err)) // two backups kept
	is.Equal(rotations, 3)
}

// A log someone removed while the daemon writes it comes back at the next rotation.
func TestOwnLogRemovedComesBack(t *testing.T) {
	is := is.New(t)
	oldMax := ownLogMax
	ownLogMax = 10
	t.Cleanup(func() { ownLogMax = oldMax })
	path := filepath.Join(t.TempDir(), "starvisor.log")
	l := ownLogAt(t, path)
	is.NoErr(os.Remove(path))
	_, err := l.Write([]byte("0123456789\n")) // rotates
	is.NoErr(err)
	_, err = l.Write([]byte("back\n"))
	is.NoErr(err)
	b, err := os.ReadFile(path)
	is.NoErr(err)
	is.Equal(string(b), "back\n")
}

// A log removed with its folder (rm -rf log) is made again, folder and all, at the
// next write a second on: the daemon went on writing into the deleted file.
func TestOwnLogFollowsItsName(t *testing.T) {
	is := is.New(t)
	dir := filepath.Join(t.TempDir(), "log")
	is.NoErr(os.Mkdir(dir, 0o755))
	path := filepath.Join(dir, "starvisor.log")
	l := ownLogAt(t, path)
	_, err := l.Write([]byte("before\n"))
	is.NoErr(err)
	is.NoErr(os.RemoveAll(dir))
	l.looked = time.Time{} // a second has passed
	_, err = l.Write([]byte("after\n"))
	is.NoErr(err)
	b, err := os.ReadFile(path)
	is.NoErr(err)
	is.Equal(string(b), "after\n")
}

// SIGUSR2 after an external logrotate moved the daemon's log: the descriptors write to
// a new file at the path.
func TestOwnLogReopen(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "starvisor.log")
	var files []*os.File
	for range 2 {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		is.NoErr(err)
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
	}
	l, err := openOwnLog(path, nil, files...)
	is.NoErr(err)
	l.Write([]byte("before\n"))
	is.NoErr(os.Rename(path, path+".1"))
	l.reopen()
	l.Write([]byte("after\n"))
	files[1].WriteString("stderr after\n")
	b, err := os.ReadFile(path)
	is.NoErr(err)
	is.Equal(string(b), "after\nstderr after\n")
	b, err = os.ReadFile(path + ".1")
	is.NoErr(err)
	is.Equal(string(b), "before\n")
}

// A bundle moved while the daemon runs (mv app moved) keeps the daemon's log in the
// folder it moved to, rotations included: the path made the old folder again, and the
// lines after the move went there.
func TestOwnLogMovesWithItsFolder(t *testing.T) {
	is := is.New(t)
	oldMax := ownLogMax
	ownLogMax = 30
	t.Cleanup(func() { ownLogMax = oldMax })
	root := t.TempDir()
	is.NoErr(os.MkdirAll(filepath.Join(root, "app", "log"), 0o755))
	path := filepath.Join(root, "app", "log", "starvisor.log")
	l := ownLogAt(t, path)
	_, err := l.Write([]byte("before\n"))
	is.NoErr(err)
	is.NoErr(os.Rename(filepath.Join(root, "app"), filepath.Join(root, "moved")))
	l.looked = time.Time{}                                       // a second has passed
	_, err = l.Write([]byte("after the move, past max_bytes\n")) // rotates
	is.NoErr(err)
	_, err = l.Write([]byte("next\n"))
	is.NoErr(err)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, "moved", "log", name))
		is.NoErr(err)
		return string(b)
	}
	is.Equal(read("starvisor.log.1"), "before\nafter the move, past max_bytes\n")
	is.Equal(read("starvisor.log"), "next\n")
	_, err = os.Stat(filepath.Join(root, "app"))
	is.True(os.IsNotExist(err)) // not made again
}

// ownLogAt is an ownLog on path written through one descriptor, as a daemon's stdout.
func ownLogAt(t *testing.T, path string) *ownLog {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	l, err := openOwnLog(path, nil, f)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The daemon's own log follows no symlink a user other than root, its own or the
// script's owner planted: the log folder, handed to a program's user (chown app log/),
// held a link at starvisor.log, and root appended its lines to the file it named.
// Here the log is removed and the link put at its name while the daemon writes.
func TestOwnLogFollowsNoPlantedSymlink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a symlink another user owns")
	}
	is := is.New(t)
	l, victim := plantedOwnLog(t, "precious\n")
	l.looked = time.Time{} // a second has passed: the name is looked at again
	_, err := l.Write([]byte("a state change\n"))
	is.NoErr(err) // written to the file it had
	is.True(l.err != nil && strings.Contains(l.err.Error(), "is a symlink owned by uid 65534, not followed"))
	b, err := os.ReadFile(victim)
	is.NoErr(err)
	is.Equal(string(b), "precious\n") // untouched

	// One the script's owner made is followed, as their script is run anyway.
	l.trust = []uint32{65534}
	l.looked = time.Time{}
	_, err = l.Write([]byte("next\n"))
	is.NoErr(err)
	is.NoErr(l.err)
	b, err = os.ReadFile(victim)
	is.NoErr(err)
	is.Equal(string(b), "precious\nnext\n")
}

// Where the daemon's log is said to be (for logs --daemon) is a path whose symlinks the
// reader checks: through /proc/self/fd/N, the kernel's magic link, a link another user
// planted at the log's name led the root reader to the file it named.
func TestOwnLogWhereIsCheckedByItsReader(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a symlink another user owns")
	}
	is := is.New(t)
	l, _ := plantedOwnLog(t, "ROOT ONLY\n")
	is.True(!strings.HasPrefix(l.where(), "/proc/"))
	_, err := logs.OpenRead(l.where())
	is.True(err != nil && strings.Contains(err.Error(), "not followed"))
}

// plantedOwnLog is an ownLog whose file was then removed and replaced by a symlink nobody
// (uid 65534) owns, naming a root-only file holding text: what another user who may
// write the log folder can do. Root only.
func plantedOwnLog(t *testing.T, text string) (*ownLog, string) {
	t.Helper()
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	path := filepath.Join(dir, "log", "starvisor.log")
	for _, err := range []error{os.WriteFile(victim, []byte(text), 0o600), os.Mkdir(filepath.Dir(path), 0o755)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	l := ownLogAt(t, path)
	for _, err := range []error{os.Remove(path), os.Symlink(victim, path), os.Lchown(path, 65534, 65534)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return l, victim
}

// Lines the daemon's log could not take (a full disk: /dev/full here) are marked where
// they went missing once it can, with how much, as a program's log marks them: the
// daemon's log had a silent hole.
func TestOwnLogMarksWhatAFullDiskLost(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "starvisor.log")
	l := ownLogAt(t, path)
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full")
	}
	defer full.Close()
	file := l.files[0]
	saved, err := syscall.Dup(int(file.Fd()))
	is.NoErr(err)
	defer syscall.Close(saved)
	_, err = l.Write([]byte("before\n"))
	is.NoErr(err)
	is.NoErr(syscall.Dup3(int(full.Fd()), int(file.Fd()), 0)) // the disk is full
	_, err = l.Write([]byte("lost one\n"))
	is.True(err != nil)
	_, err = l.Write([]byte("lost two\n"))
	is.True(err != nil)
	is.NoErr(syscall.Dup3(saved, int(file.Fd()), 0)) // room again
	_, err = l.Write([]byte("after\n"))
	is.NoErr(err)
	b, err := os.ReadFile(path)
	is.NoErr(err)
	is.Equal(string(b), "before\n[starvisor: 18 bytes of this log lost here: no space left on device]\nafter\n")
}
