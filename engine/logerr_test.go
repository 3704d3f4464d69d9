package engine

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// failingLogs hands out writers that keep a failure for Err, as logs.File does.
type failingLogs struct {
	mu        sync.Mutex
	ws        map[string]*failingWriter // by log path
	reporting bool                      // hand out reportingWriters
}

type failingWriter struct {
	mu      sync.Mutex
	err     error
	failing bool // for reportingWriter
}

func (w *failingWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *failingWriter) Close() error                { return nil }

// fail makes the writer report err once, as a failed write would.
func (w *failingWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err, w.failing = err, true
}

// recover makes the writer's writes land again.
func (w *failingWriter) recover() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failing = false
}

func (w *failingWriter) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.err
	w.err = nil
	return err
}

func (l *failingLogs) Open(lg *plan.Log) (io.WriteCloser, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := &failingWriter{}
	l.ws[lg.Path] = w
	if l.reporting {
		return &reportingWriter{failingWriter: w}, nil
	}
	return w, nil
}

// reportingWriter also says whether its last write was dropped, as logs.File does:
// failing from a failure until writes land again.
type reportingWriter struct{ *failingWriter }

func (w *reportingWriter) Failing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failing
}

func (l *failingLogs) writer(t *testing.T, name string) *failingWriter {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for path, w := range l.ws {
		if strings.Contains(path, name) && !strings.Contains(path, "stderr") {
			return w
		}
	}
	t.Fatalf("no stdout writer for %s", name)
	return nil
}

// withLog gives the program a stdout log and redirects stderr into it.
func withLog(pr *plan.Program) {
	pr.Stdout = plan.DefaultLog("/var/log/" + pr.Name + ".log")
	pr.RedirectStderr = true
}

func TestLogErrorsShowInStatusAndAreAnnouncedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &failingLogs{ws: map[string]*failingWriter{}}
		r, announced := announcingRig(t, logs)
		r.apply(planOf(t, prog("web", startSecs(0), withLog), prog("db", startSecs(0), withLog)))
		synctest.Wait()
		if d := r.status("web").Description; strings.Contains(d, "log:") {
			t.Fatalf("healthy log reported: %q", d)
		}

		disk := errors.New("logs.open: mkdir /var/log/web: permission denied")
		logs.writer(t, "web").fail(disk)
		want := "; log: " + disk.Error()
		if d := r.status("web").Description; !strings.HasPrefix(d, "pid ") || !strings.HasSuffix(d, want) {
			t.Fatalf("web description %q, want the pid and %q", d, want)
		}
		if d := r.status("db").Description; strings.Contains(d, "log:") {
			t.Errorf("db shows web's error: %q", d)
		}
		// Still failing, and seen again: still shown, not announced twice.
		logs.writer(t, "web").fail(disk)
		if d := r.status("web").Description; !strings.HasSuffix(d, want) {
			t.Errorf("second check: %q", d)
		}
		// A quiet writer keeps showing the last error for logErrHold, then clears.
		time.Sleep(logErrHold - time.Second)
		if d := r.status("web").Description; !strings.HasSuffix(d, want) {
			t.Errorf("before the hold ended: %q", d)
		}
		time.Sleep(time.Second)
		if d := r.status("web").Description; strings.Contains(d, "log:") {
			t.Errorf("after the hold: %q", d)
		}
		if r.status("web").State != Running {
			t.Errorf("web is %v; a log error must not stop it", r.status("web").State)
		}

		// An exit is checked without any Status call, and announced.
		logs.writer(t, "db").fail(fmt.Errorf("logs: write db.log: %w", syscall.ENOSPC))
		r.l.last("db").exit(3)
		synctest.Wait()
		r.shutdown()
		eq(t, "announced", announced(), []string{
			"web: " + disk.Error(),
			"db: logs: write db.log: no space left on device",
		})
	})
}

// A writer that says when it writes again (logs.File once the disk has room) clears the
// error at once, and keeps it, past logErrHold, while it stays broken but quiet.
func TestLogErrorClearsWhenWritingResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &failingLogs{ws: map[string]*failingWriter{}, reporting: true}
		r, announced := announcingRig(t, logs)
		r.apply(planOf(t, prog("web", startSecs(0), withLog)))
		synctest.Wait()
		full := fmt.Errorf("logs: write web.log: %w", syscall.ENOSPC)
		w := logs.writer(t, "web")
		w.fail(full)
		want := "; log: " + full.Error()
		if d := r.status("web").Description; !strings.HasSuffix(d, want) {
			t.Fatalf("description %q, want suffix %q", d, want)
		}
		time.Sleep(2 * logErrHold) // quiet, still broken: the error stays, saying since when
		if d := r.status("web").Description; !strings.HasSuffix(d, want+" (its last write failed 2m0s ago, none since)") {
			t.Errorf("still failing after %v: %q", 2*logErrHold, d)
		}
		w.recover()
		if d := r.status("web").Description; strings.Contains(d, "log:") {
			t.Errorf("writing again, yet: %q", d)
		}
		// It fails again: shown and announced again, as a new failure.
		w.fail(full)
		if d := r.status("web").Description; !strings.HasSuffix(d, want) {
			t.Errorf("second failure: %q", d)
		}
		w.recover()
		if d := r.status("web").Description; strings.Contains(d, "log:") {
			t.Errorf("writing again after the second failure, yet: %q", d)
		}
		// Failed and recovered between two checks: shown (and announced) once, then cleared.
		w.fail(full)
		w.recover()
		if d := r.status("web").Description; !strings.HasSuffix(d, want) {
			t.Errorf("a failure since the last check must show once: %q", d)
		}
		if d := r.status("web").Description; strings.Contains(d, "log:") {
			t.Errorf("recovered: %q", d)
		}
		r.shutdown()
		// Each failure, and each time it writes again (nil).
		failed, again := "web: "+full.Error(), "web: <nil>"
		eq(t, "announced", announced(), []string{failed, again, failed, again, failed, again})
	})
}

func TestLogErrorsCheckedWhileWatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &failingLogs{ws: map[string]*failingWriter{}}
		got := make(chan string, 4)
		r := newRig(t, func(o *Options) {
			o.Logs = logs
			o.Sampler = fakeSampler{}
			o.OnLogError = func(process string, err error) { got <- fmt.Sprint(process, ": ", err) }
		})
		r.apply(planOf(t, prog("web", startSecs(0), withLog)))
		r.sup.Status() // someone watches: the sampler ticks every sampleEvery
		logs.writer(t, "web").fail(errors.New("disk gone"))
		time.Sleep(sampleEvery)
		synctest.Wait()
		select {
		case s := <-got:
			if s != "web: disk gone" {
				t.Errorf("announced %q", s)
			}
		default:
			t.Error("no announcement after a sampling round")
		}
		r.shutdown()
	})
}

func TestKillSignalsEveryGroupDuringShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.l.ignore["a"] = []syscall.Signal{syscall.SIGTERM}
		r.l.ignore["b"] = []syscall.Signal{syscall.SIGTERM}
		r.apply(planOf(t, prog("a", priority(1), stopTimeout(time.Hour)), prog("b", priority(2), stopTimeout(time.Hour)), prog("c", startSecs(0))))
		time.Sleep(time.Second)
		done := make(chan error, 1)
		go func() { done <- r.sup.Shutdown(t.Context()) }()
		synctest.Wait() // c stopped at once; b ignores TERM for an hour; a waits for b
		select {
		case err := <-done:
			t.Fatalf("shutdown returned early: %v", err)
		default:
		}
		if n := r.sup.Kill(t.Context()); n != 2 {
			t.Errorf("Kill signalled %d processes, want 2 (a and b)", n)
		}
		if err := <-done; err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		if r.since() != time.Second {
			t.Errorf("shutdown took until %v; the kill should end it at once", r.since())
		}
		// Kill posts every kill at once: their order is the goroutines'.
		eq(t, "kills", slices.Sorted(slices.Values(r.l.lines("SIGKILL"))), []string{"1s a SIGKILL group", "1s b SIGKILL group"})
		for _, s := range r.sup.Status() {
			if s.State.Live() {
				t.Errorf("%s is %v", s.Name, s.State)
			}
		}
	})
}

// announcingRig runs a rig on logs and returns what OnLogError announced so far.
func announcingRig(t *testing.T, logs *failingLogs) (*rig, func() []string) {
	var mu sync.Mutex
	var announced []string
	r := newRig(t, func(o *Options) {
		o.Logs = logs
		o.OnLogError = func(process string, err error) {
			mu.Lock()
			defer mu.Unlock()
			announced = append(announced, fmt.Sprint(process, ": ", err))
		}
	})
	return r, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(announced)
	}
}

// Both of a process's log writers' errors show: stderr's hid that stdout's output was
// dropped too.
func TestLogHealthShowsBothWriters(t *testing.T) {
	out, errw := &failingWriter{}, &failingWriter{}
	var h logHealth
	h.setWriters(out, errw)
	out.fail(errors.New("open: mkdir /srv/a: permission denied"))
	errw.fail(errors.New("open: mkdir /proc/nope: no such file or directory"))
	show, announce, _ := h.check(time.Now())
	want := "open: mkdir /srv/a: permission denied; open: mkdir /proc/nope: no such file or directory"
	if show != want || announce == nil || announce.Error() != want {
		t.Errorf("show %q, announce %v; want %q", show, announce, want)
	}
}
