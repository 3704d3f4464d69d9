package api

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/plan"
)

// tail is what `logs -n n NAMES...` prints (stdout, no follow).
func tail(t *testing.T, c *Client, names []string, n int) string {
	t.Helper()
	rc, err := c.Logs(t.Context(), names, Stdout, false, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A log file appears with the program's first byte: until then `logs` prints
// nothing and succeeds, and `logs -f` waits for the file and follows it.
func TestLogsOfFileNotCreatedYet(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	fb := &fakeBackend{}
	fb.p = testPlan(t, dir, "a")
	logPath := fb.p.Programs[0].Stdout.Path
	c, _, _ := serve(t, fb)

	rc, err := c.Logs(context.Background(), []string{"a"}, Stdout, false, 10)
	is.NoErr(err) // not "no such file or directory"
	b, err := io.ReadAll(rc)
	rc.Close()
	is.NoErr(err)
	is.Equal(string(b), "")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err = c.Logs(ctx, []string{"a"}, Stdout, true, 1)
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

// A log not there because the daemon cannot make it (a read-only folder) is no empty
// log: logs says its output is dropped, as it says of one it cannot read.
func TestLogsOfALogTheDaemonCannotWrite(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a", "b")
	path := fb.p.Programs[0].Stdout.Path
	fb.logErr = map[string]string{"a": "open: " + path + ": read-only file system (output is dropped until the log can be written)"}
	c, _, _ := serve(t, fb)
	_, err := c.Logs(t.Context(), []string{"a"}, Stdout, false, 10)
	is.True(err != nil && strings.Contains(err.Error(), "a: its log cannot be written: open: "+path+": read-only file system"))
	rc, err := c.Logs(t.Context(), []string{"a", "b"}, Both, false, 10) // of several: left out, said
	is.NoErr(err)
	rc.Close()
	is.Equal(len(rc.Skipped), 1)
	is.True(strings.Contains(rc.Skipped[0], "its log cannot be written"))
	_, err = c.Logs(t.Context(), []string{"b"}, Stdout, false, 10) // not written yet: empty
	is.NoErr(err)
	// And status says it apart from the description, for scripts: "log_error".
	st, err := c.Status(t.Context(), "a", "b")
	is.NoErr(err)
	is.Equal(st.Programs[0].LogError, fb.logErr["a"])
	is.Equal(st.Programs[1].LogError, "")
}

// A stream that goes to no file at all (stdout or stderr = None) is still an error.
// -n reads into the backups when the current file has fewer lines: right after a
// rotation, and for a line the rotation cut in two (it printed one line, or its tail).
func TestLogsTailReadsBackups(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a")
	path := fb.p.Programs[0].Stdout.Path
	is.NoErr(os.WriteFile(path+".2", []byte("one\ntwo\n"), 0o644))
	is.NoErr(os.WriteFile(path+".1", []byte("three\nfour\nfi"), 0o644))
	is.NoErr(os.WriteFile(path, []byte("ve\nsix\n"), 0o644))
	c, _, _ := serve(t, fb)
	for n, want := range map[int]string{
		1: "six\n", 2: "five\nsix\n", 4: "three\nfour\nfive\nsix\n", 9: "one\ntwo\nthree\nfour\nfive\nsix\n",
	} {
		is.Equal(tail(t, c, []string{"a"}, n), want)
	}
}

func TestLogsOfStreamWithoutFile(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a", "b")
	is.True(fb.p.Programs[0].Stderr == nil)
	fb.p.Programs[1].Stdout = nil
	c, _, _ := serve(t, fb)
	for _, q := range []struct {
		name   string
		stream Stream
	}{{"a", Stderr}, {"b", Stdout}} {
		for _, follow := range []bool{false, true} {
			_, err := c.Logs(context.Background(), []string{q.name}, q.stream, follow, 1)
			is.True(err != nil && strings.Contains(err.Error(), "no log file"))
		}
	}
}

// logs --stderr of a program whose stderr goes to its stdout log says where it is: "no
// log file" read as lost logs.
func TestLogsOfRedirectedStderr(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "web")
	fb.p.Programs[0].RedirectStderr = true
	c, _, _ := serve(t, fb)
	_, err := c.Logs(context.Background(), []string{"web"}, Stderr, false, 1)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "web: its stderr goes to its stdout log (redirect_stderr = True): starvisor logs web"))
}

// A log folder that does not exist yet is the same as a missing file.
func TestLogsInFolderNotCreatedYet(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a")
	fb.p.Programs[0].Stdout.Path = filepath.Join(t.TempDir(), "log", "a.log")
	c, _, _ := serve(t, fb)
	is.Equal(tail(t, c, []string{"a"}, 10), "")
}

// Of several processes, one whose log cannot be read (its folder is a file) is left out,
// and named, rather than hiding every other process's lines; alone, it is an error.
func TestLogsLeaveOutAnUnreadableLog(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	dir := t.TempDir()
	fb.p = testPlan(t, dir, "a", "bad")
	appendTo(t, fb.p.Programs[0].Stdout.Path, "a1\n")
	fb.p.Programs[1].Stdout.Path = filepath.Join(dir, "a.log", "x.log") // under a file
	c, _, _ := serve(t, fb)
	rc, err := c.Logs(t.Context(), []string{"all"}, Stdout, false, 10)
	is.NoErr(err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	is.NoErr(err)
	is.Equal(string(b), "a | a1\n")
	is.Equal(len(rc.Skipped), 1)
	is.True(strings.HasPrefix(rc.Skipped[0], "bad: ") && strings.Contains(rc.Skipped[0], "not a directory"))

	_, err = c.Logs(t.Context(), []string{"bad"}, Stdout, false, 10)
	is.True(err != nil && strings.Contains(err.Error(), "not a directory"))
}

// Logs of several processes (GROUP:*, all, or several names): each line whole, after
// its process's name padded to the longest; an unfinished line waits for its end, so
// lines of two processes never mix. Processes without a log file are left out.
func TestLogsOfSeveralProcesses(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a", "bb", "c")
	fb.p.Programs[2].Stdout = nil // c logs nothing
	pa, pb := fb.p.Programs[0].Stdout.Path, fb.p.Programs[1].Stdout.Path
	appendTo(t, pa, "a1\na2\n")
	appendTo(t, pb, "b1\nb2 unfinished")
	c, _, _ := serve(t, fb)

	is.Equal(tail(t, c, []string{"all"}, 1), "a  | a2\nbb | b2 unfinished\n")

	is.Equal(tail(t, c, []string{"a"}, 1), "a2\n") // one process: as it is

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := c.Logs(ctx, []string{"bb", "a"}, Stdout, true, 1)
	is.NoErr(err)
	defer rc.Close()
	r := bufio.NewReader(rc)
	next := func() string { l, err := r.ReadString('\n'); is.NoErr(err); return l }
	is.Equal(next(), "a  | a2\n") // in start order, whatever the order asked
	appendTo(t, pa, "a3 start")
	appendTo(t, pb, " ends\n")
	is.Equal(next(), "bb | b2 unfinished ends\n") // the tail's line, finished
	appendTo(t, pa, " end\n")
	is.Equal(next(), "a  | a3 start end\n")

	_, err = c.Logs(context.Background(), []string{"a", "nosuch"}, Stdout, false, 1)
	is.True(err != nil && strings.Contains(err.Error(), "no such process: nosuch"))
	_, err = c.Logs(context.Background(), []string{"c"}, Stdout, false, 1)
	is.True(err != nil && strings.Contains(err.Error(), "c: no log file"))
}

// Following several, a line whose writer pauses mid-line for many looks comes out
// whole ("Connecting... " then "ok"): it came out as two lines, the first one cut
// after one look with nothing new.
func TestFollowHoldsAPausedLine(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a", "bb")
	pa, pb := fb.p.Programs[0].Stdout.Path, fb.p.Programs[1].Stdout.Path
	appendTo(t, pa, "")
	appendTo(t, pb, "")
	c, _, _ := serve(t, fb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := c.Logs(ctx, []string{"a", "bb"}, Stdout, true, 0)
	is.NoErr(err)
	defer rc.Close()
	r := bufio.NewReader(rc)
	next := func() string { l, err := r.ReadString('\n'); is.NoErr(err); return l }
	appendTo(t, pa, "Connecting... ")
	// Each line of bb is read in a look after the one before: the second, at least one
	// look after the one that read a's unfinished line, and one with nothing new from a.
	appendTo(t, pb, "b1\n")
	is.Equal(next(), "bb | b1\n")
	appendTo(t, pb, "b2\n")
	is.Equal(next(), "bb | b2\n")
	appendTo(t, pa, "ok\n")
	is.Equal(next(), "a  | Connecting... ok\n")
}

// A stream sent to something that is not a file (/dev/stdout, from an imported
// supervisord.conf: the daemon's own output) is refused, not read.
func TestLogsOfNonFileRefused(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a", "b")
	fb.p.Programs[0].Stdout.Path = "/dev/null"
	appendTo(t, fb.p.Programs[1].Stdout.Path, "b1\n")
	c, _, _ := serve(t, fb)
	for _, follow := range []bool{false, true} {
		_, err := c.Logs(context.Background(), []string{"a"}, Stdout, follow, 1)
		is.True(err != nil && strings.Contains(err.Error(), "a: its output goes to /dev/null, not a log file"))
	}
	is.Equal(tail(t, c, []string{"all"}, 1), "b | b1\n") // of several, the others
}

// A log with no newline (a progress bar, binary output) is read back at most tailMax
// bytes, its end: a tail read the file and every backup whole, copying quadratically
// (40 MB: 10 s and 140 MB of daemon memory).
func TestTailOfALogWithoutNewlines(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "bar.log")
	chunk := strings.Repeat("#", 3<<20)
	for _, name := range []string{path, path + ".1", path + ".2", path + ".3"} {
		is.NoErr(os.WriteFile(name, []byte(chunk), 0o644))
	}
	is.NoErr(os.WriteFile(path, []byte(chunk+"END"), 0o644))
	f, err := os.Open(path)
	is.NoErr(err)
	defer f.Close()
	var out strings.Builder
	is.NoErr(writeTail(&out, f, 1, false)) // as a follow starts: the rest comes later
	is.True(out.Len() <= tailMax+64<<10)
	is.True(out.Len() >= tailMax)
	is.True(strings.HasSuffix(out.String(), "###END"))
	// Said to be the end of a longer line: it started mid-line, with no word.
	is.True(strings.HasPrefix(out.String(), "[starvisor: logs -n reads back at most 4 MiB: the line below is the end of a longer one]\n###"))
	// A tail alone ends it: a line still being written, the prompt glued to it.
	out.Reset()
	_, err = f.Seek(0, io.SeekStart)
	is.NoErr(err)
	is.NoErr(writeTail(&out, f, 1, true))
	is.True(strings.HasSuffix(out.String(), "###END\n"))
}

// When the daemon stops serving (every program stopped), a follower gets what was
// written since its last look before its answer ends: the lines programs print while
// they stop ("cleanup done") were lost to logs -f.
func TestFollowGetsTheLastLinesAtShutdown(t *testing.T) {
	is := is.New(t)
	dir, err := os.MkdirTemp("", "sv")
	is.NoErr(err)
	defer os.RemoveAll(dir)
	fb := &fakeBackend{}
	fb.p = testPlan(t, dir, "a")
	path := fb.p.Programs[0].Stdout.Path
	appendTo(t, path, "one\n")
	l, err := Listen(filepath.Join(dir, "run", "s.sock"))
	is.NoErr(err)
	ctx, stopServing := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- NewServer(fb, t.Logf).Serve(ctx, l) }()
	defer func() { stopServing(); <-served }()

	rc, err := NewClient(filepath.Join(dir, "run", "s.sock")).Logs(context.Background(), []string{"a"}, Stdout, true, 1)
	is.NoErr(err)
	defer rc.Close()
	r := bufio.NewReader(rc)
	line, err := r.ReadString('\n')
	is.NoErr(err)
	is.Equal(line, "one\n")
	appendTo(t, path, "cleanup done\n")
	stopServing() // before the follower's next look, 100 ms on
	rest, err := io.ReadAll(r)
	is.NoErr(err)
	is.Equal(string(rest), "cleanup done\n")
}

// A log path that became a FIFO is no log to read: said at once (the open waited for a
// writer, and held the client and a daemon thread for good).
func TestLogsOfAFIFO(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a")
	path := fb.p.Programs[0].Stdout.Path
	is.NoErr(os.MkdirAll(filepath.Dir(path), 0o755))
	is.NoErr(syscall.Mkfifo(path, 0o644))
	c, _, _ := serve(t, fb)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := c.Logs(ctx, []string{"a"}, Stdout, false, 10)
	is.True(err != nil && strings.Contains(err.Error(), "not a log file"))
}

// Without --stdout or --stderr, logs reads both: each line after its label (name,
// name.err) once there are two logs to show; a stderr still empty is left out of a
// tail, but followed, and its first line arrives labelled. A stderr that goes into the
// stdout log (redirect_stderr) is one log.
func TestLogsOfBothStreams(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	fb := &fakeBackend{}
	fb.p = testPlan(t, dir, "a", "b")
	a := &fb.p.Programs[0]
	errLog := *a.Stdout
	errLog.Path = filepath.Join(dir, "a.err.log")
	a.Stderr = &errLog
	b := &fb.p.Programs[1]
	b.Stderr, b.RedirectStderr = b.Stdout, true
	c, _, _ := serve(t, fb)
	read := func(names []string, stream Stream) string {
		rc, err := c.Logs(t.Context(), names, stream, false, 10)
		is.NoErr(err)
		defer rc.Close()
		out, err := io.ReadAll(rc)
		is.NoErr(err)
		return string(out)
	}
	appendTo(t, a.Stdout.Path, "out\n")
	appendTo(t, b.Stdout.Path, "mixed\n")
	is.Equal(read([]string{"a"}, Both), "out\n") // stderr empty: left out, no labels
	is.Equal(read([]string{"b"}, Both), "mixed\n")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := c.Logs(ctx, []string{"a"}, Both, true, 10)
	is.NoErr(err)
	defer rc.Close()
	r := bufio.NewReader(rc)
	next := func() string { l, err := r.ReadString('\n'); is.NoErr(err); return l }
	is.Equal(next(), "a     | out\n") // followed: the empty stderr may speak, so labels as wide as its
	appendTo(t, errLog.Path, "boom\n")
	is.Equal(next(), "a.err | boom\n")
	appendTo(t, a.Stdout.Path, "a prompt: ") // no newline: held until its end (TestFollowHoldsAPausedLine)
	appendTo(t, a.Stdout.Path, "\n")
	is.Equal(next(), "a     | a prompt: \n")

	is.Equal(read([]string{"a"}, Both), "a     | out\na     | a prompt: \na.err | boom\n")
	is.Equal(read([]string{"a"}, Stdout), "out\na prompt: \n")
	is.Equal(read([]string{"a"}, Stderr), "boom\n")
	is.Equal(read([]string{"all"}, Both), "a     | out\na     | a prompt: \na.err | boom\nb     | mixed\n")

	// Of several, one asked for by name whose stream has no file of its own is named as
	// left out, and why; through all, it is left out quietly.
	ls, err := c.Logs(t.Context(), []string{"a", "b"}, Stderr, false, 10)
	is.NoErr(err)
	ls.Close()
	is.Equal(ls.Skipped, []string{"b: its stderr goes to its stdout log (redirect_stderr = True): starvisor logs b"})
	ls, err = c.Logs(t.Context(), []string{"all"}, Stderr, false, 10)
	is.NoErr(err)
	ls.Close()
	is.Equal(len(ls.Skipped), 0)
}

// Of one process's two logs, what both gained in one look goes out in the order the
// files were written: a crash's traceback (stderr) before the first line of the run
// that replaced it (stdout), which came first and read as "started, then crashed".
func TestFollowOrdersAProcessLogsByWrite(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	out, errLog := plan.DefaultLog(filepath.Join(dir, "web.log")), plan.DefaultLog(filepath.Join(dir, "web.err.log"))
	var w bytes.Buffer
	src := func(l *plan.Log, label string) *logSource {
		return &logSource{name: "web", label: label, log: *l, follow: logs.FollowFrom(*l, logs.MarkEnd(*l)),
			out: logs.NewLabeller(&w, label)}
	}
	srcs := []*logSource{src(out, "web    "), src(errLog, "web.err")}
	appendTo(t, errLog.Path, "Traceback (most recent call last):\nRuntimeError: boom\n")
	appendTo(t, out.Path, "web v2 starting\n")
	now := time.Now()
	is.NoErr(os.Chtimes(errLog.Path, now, now.Add(-time.Second))) // the crash wrote first
	is.NoErr(os.Chtimes(out.Path, now, now))
	is.NoErr(copyInOrder(srcs))
	is.Equal(w.String(), "web.err | Traceback (most recent call last):\nweb.err | RuntimeError: boom\nweb     | web v2 starting\n")

	// The other way round, the other order; and one that gained nothing changes nothing.
	w.Reset()
	appendTo(t, out.Path, "GET /\n")
	appendTo(t, errLog.Path, "warning: slow\n")
	is.NoErr(os.Chtimes(out.Path, now, now.Add(time.Second)))
	is.NoErr(os.Chtimes(errLog.Path, now, now.Add(2*time.Second)))
	is.NoErr(copyInOrder(srcs))
	is.Equal(w.String(), "web     | GET /\nweb.err | warning: slow\n")
	w.Reset()
	appendTo(t, errLog.Path, "alone\n")
	is.NoErr(copyInOrder(srcs))
	is.Equal(w.String(), "web.err | alone\n")
}

// A follow lets go of the logs of processes an apply removed, after their last lines: it
// held each one open (a descriptor per deploy that renamed a program, for as long as a
// log shipper followed all); one of a single process ends, saying why.
func TestFollowLetsGoOfRemovedProcesses(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	fb := &fakeBackend{}
	fb.setPlan(testPlan(t, dir, "a", "b"))
	pathA, pathB := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	appendTo(t, pathA, "a1\n")
	appendTo(t, pathB, "b1\n")
	c, _, _ := serve(t, fb)
	open := func(path string) bool { // held by this process (the daemon, here)
		fds, _ := os.ReadDir("/proc/self/fd")
		for _, fd := range fds {
			if to, _ := os.Readlink("/proc/self/fd/" + fd.Name()); to == path {
				return true
			}
		}
		return false
	}
	all, err := c.Logs(t.Context(), []string{"all"}, Both, true, 10)
	is.NoErr(err)
	defer all.Close()
	one, err := c.Logs(t.Context(), []string{"a"}, Both, true, 10)
	is.NoErr(err)
	defer one.Close()
	ra, r1 := bufio.NewReader(all), bufio.NewReader(one)
	for range 2 {
		_, err := ra.ReadString('\n')
		is.NoErr(err)
	}
	line, err := r1.ReadString('\n')
	is.NoErr(err)
	is.Equal(line, "a1\n")
	is.True(open(pathA))

	appendTo(t, pathA, "a2, its last\n")
	fb.setPlan(testPlan(t, dir, "b")) // an apply removed a
	rest, err := io.ReadAll(r1)
	is.NoErr(err)
	is.Equal(string(rest), "a2, its last\n") // its last lines, then the end
	is.Equal(one.Ended(), "a removed by an apply")
	line, err = ra.ReadString('\n')
	is.NoErr(err)
	is.Equal(line, "a | a2, its last\n")
	appendTo(t, pathB, "b2\n")
	line, err = ra.ReadString('\n')
	is.NoErr(err)
	is.Equal(line, "b | b2\n") // the others followed on
	is.True(!open(pathA))
}

// A tail cut by tailMax short of the lines asked says so, and leaves out the piece of a
// line it starts with: -n 100000 printed 41,944 lines from mid-line, with no word.
func TestTailCutSaysSo(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "big.log")
	line := strings.Repeat("y", 99) + "\n"
	is.NoErr(os.WriteFile(path, []byte(strings.Repeat(line, 50000)), 0o644)) // 5 MB
	f, err := os.Open(path)
	is.NoErr(err)
	defer f.Close()
	var out strings.Builder
	is.NoErr(writeTail(&out, f, 100000, true))
	first, rest, _ := strings.Cut(out.String(), "\n")
	is.True(strings.HasPrefix(first, "[starvisor: logs -n reads back at most 4 MiB: the ")) // first
	is.True(strings.HasPrefix(rest, line))                                                  // whole lines after it
	is.Equal(len(rest)%len(line), 0)
}

// Follows hold their logs open as long as their clients stay: past followLimit, another
// waits its turn (503), so a crashed program's respawn still finds a descriptor.
func TestFollowsAreBounded(t *testing.T) {
	is := is.New(t)
	old := followLimit
	followLimit = func() int64 { return 2 }
	t.Cleanup(func() { followLimit = old })
	fb := &fakeBackend{}
	fb.setPlan(testPlan(t, t.TempDir(), "a", "b"))
	for _, n := range []string{"a", "b"} {
		appendTo(t, filepath.Join(filepath.Dir(fb.p.Programs[0].Stdout.Path), n+".log"), n+"\n")
	}
	c, _, _ := serve(t, fb)
	first, err := c.Logs(t.Context(), []string{"all"}, Both, true, 1)
	is.NoErr(err)
	_, err = bufio.NewReader(first).ReadString('\n') // it follows: both logs held
	is.NoErr(err)
	_, err = c.Logs(t.Context(), []string{"a"}, Both, true, 1)
	is.True(err != nil && strings.Contains(err.Error(), "follows too many logs")) // err
	first.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		rc, err := c.Logs(t.Context(), []string{"a"}, Both, true, 1)
		if err == nil {
			rc.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a follow after the first ended: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err = c.Logs(t.Context(), []string{"a"}, Both, false, 1) // a tail is not a follow
	is.NoErr(err)
}
