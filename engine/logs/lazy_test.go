package logs

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/matryer/is"
	"github.com/starvisor/starvisor/engine/plan"
)

func notExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s: want no such file, got %v", path, err)
	}
}

// Open touches nothing: neither the file nor its folders exist until a byte is written.
func TestOpenCreatesNothingUntilFirstWrite(t *testing.T) {
	is := is.New(t)
	dir := filepath.Join(t.TempDir(), "log")
	path := filepath.Join(dir, "a.log")
	f, err := Open(plan.Log{Path: path, MaxBytes: 100, Backups: 2})
	is.NoErr(err)
	notExist(t, dir)
	_, err = f.Write(nil)
	is.NoErr(err)
	notExist(t, dir) // an empty write is no byte
	_, err = f.Write([]byte("one\n"))
	is.NoErr(err)
	is.NoErr(f.Err())
	is.Equal(read(t, path), "one\n")
	is.NoErr(f.Close())

	quiet := filepath.Join(dir, "quiet.log")
	f, err = Open(plan.Log{Path: quiet})
	is.NoErr(err)
	is.NoErr(f.Close())
	_, err = f.Write([]byte("late\n"))
	is.True(errors.Is(err, ErrClosed))
	notExist(t, quiet) // closed before any byte: never created
}

// A child that writes nothing and exits costs no file, on either pipe kind.
func TestSilentPipeCreatesNoFile(t *testing.T) {
	for _, blocking := range []bool{false, true} {
		t.Run(map[bool]string{false: "pollable", true: "blocking"}[blocking], func(t *testing.T) {
			is := is.New(t)
			path := filepath.Join(t.TempDir(), "a.log")
			f := open(t, plan.Log{Path: path})
			feed(t, f, "", blocking)
			is.NoErr(f.Err())
			notExist(t, path)
		})
	}
}

// The first byte from a pipe creates the file; an existing file is appended to.
func TestFirstBytesFromPipeCreateAndAppend(t *testing.T) {
	for _, blocking := range []bool{false, true} {
		t.Run(map[bool]string{false: "pollable", true: "blocking"}[blocking], func(t *testing.T) {
			is := is.New(t)
			path := filepath.Join(t.TempDir(), "sub", "a.log")
			all := strings.Join(numbered(3000, 30), "")
			f := open(t, plan.Log{Path: path, MaxBytes: 4000, Backups: 100})
			feed(t, f, all[:990], blocking) // 33 whole lines (a half one is ended: TestOpenEndsAHalfLine)
			is.NoErr(f.Close())
			is.Equal(read(t, path), all[:990])

			f = open(t, plan.Log{Path: path, MaxBytes: 4000, Backups: 100})
			feed(t, f, all[990:], blocking)
			is.NoErr(f.Err())
			checkFiles(t, path, 4000, all)
		})
	}
}

// A file that cannot be created is an error for Err, not for the writer, and the
// next write tries again.
func TestOpenFailureIsReportedAndRetried(t *testing.T) {
	is := is.New(t)
	blocker := filepath.Join(t.TempDir(), "log")
	is.NoErr(os.WriteFile(blocker, nil, 0o644)) // a file where the folder should be
	path := filepath.Join(blocker, "a.log")
	f := open(t, plan.Log{Path: path})
	n, err := f.Write([]byte("lost\n"))
	is.NoErr(err)
	is.Equal(n, 5)
	is.True(errors.Is(f.Err(), syscall.ENOTDIR))
	is.NoErr(f.Err()) // reported once

	is.NoErr(os.Remove(blocker))
	f.Write([]byte("kept\n"))
	is.NoErr(f.Err())
	is.Equal(read(t, path), "[starvisor: 5 bytes of output lost here: the log could not be written]\nkept\n")
}

// With the file impossible to create, a pipe holding more than its buffer is still
// drained to EOF on both paths, so the child never blocks.
func TestOpenFailureStillDrainsPipe(t *testing.T) {
	data := string(bytes.Repeat([]byte("0123456789abcde\n"), 1<<16)) // 1 MiB
	for _, blocking := range []bool{false, true} {
		t.Run(map[bool]string{false: "pollable", true: "blocking"}[blocking], func(t *testing.T) {
			is := is.New(t)
			blocker := filepath.Join(t.TempDir(), "log")
			is.NoErr(os.WriteFile(blocker, nil, 0o644))
			f := open(t, plan.Log{Path: filepath.Join(blocker, "a.log")})
			n, err := io.Copy(f, pipeFrom(t, data, blocking))
			is.NoErr(err)
			is.Equal(n, int64(len(data)))
			is.True(errors.Is(f.Err(), syscall.ENOTDIR))
		})
	}
}
