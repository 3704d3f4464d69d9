package api

import (
	"bufio"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// A log file appears with the program's first byte: until then `logs` prints
// nothing and succeeds, and `logs -f` waits for the file and follows it.
func TestLogsOfFileNotCreatedYet(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	fb := &fakeBackend{}
	fb.p = testPlan(t, dir, "a")
	logPath := fb.p.Programs[0].Stdout.Path
	c, _, _ := serve(t, fb)

	rc, err := c.Logs(context.Background(), "a", false, false, 10)
	is.NoErr(err) // not "no such file or directory"
	b, err := io.ReadAll(rc)
	rc.Close()
	is.NoErr(err)
	is.Equal(string(b), "")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err = c.Logs(ctx, "a", false, true, 1)
	is.NoErr(err) // the response starts although there is nothing to show yet
	defer rc.Close()
	r := bufio.NewReader(rc)
	next := func() string { l, err := r.ReadString('\n'); is.NoErr(err); return l }
	// The server found no file before answering, so all of it is new: n does not cut it.
	appendTo(t, logPath, "one\ntwo\n")
	is.Equal(next(), "one\n")
	is.Equal(next(), "two\n")
	appendTo(t, logPath, "three\n")
	is.Equal(next(), "three\n")
}

// A stream that goes to no file at all (stdout or stderr = None) is still an error.
func TestLogsOfStreamWithoutFile(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a", "b")
	is.True(fb.p.Programs[0].Stderr == nil)
	fb.p.Programs[1].Stdout = nil
	c, _, _ := serve(t, fb)
	for _, q := range []struct {
		name   string
		stderr bool
	}{{"a", true}, {"b", false}} {
		for _, follow := range []bool{false, true} {
			_, err := c.Logs(context.Background(), q.name, q.stderr, follow, 1)
			is.True(err != nil && strings.Contains(err.Error(), "no log file"))
		}
	}
}

// A log folder that does not exist yet is the same as a missing file.
func TestLogsInFolderNotCreatedYet(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a")
	fb.p.Programs[0].Stdout.Path = filepath.Join(t.TempDir(), "log", "a.log")
	c, _, _ := serve(t, fb)
	rc, err := c.Logs(context.Background(), "a", false, false, 10)
	is.NoErr(err)
	b, _ := io.ReadAll(rc)
	rc.Close()
	is.Equal(string(b), "")
}
