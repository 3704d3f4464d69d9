package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	satomic "sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/launcher"
	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/plan"
)

// fakeSup records what the loop asks of the engine; Apply blocks until the test answers.
type fakeSup struct {
	applies  chan *plan.Plan
	answers  chan plan.Delta
	shutdown chan struct{}
	// stuck, when set, makes Shutdown wait until Kill: processes that ignore their stop signal.
	stuck chan struct{}
	kills chan struct{}
	// through, when set, makes Apply finish though cancelled: its starts went out.
	through bool
	// running, when set, is the plan ApplyMade builds on, as the engine's would be.
	running *plan.Plan
}

func newFakeSup() *fakeSup {
	return &fakeSup{applies: make(chan *plan.Plan), answers: make(chan plan.Delta), shutdown: make(chan struct{}, 1)}
}

func (f *fakeSup) Apply(ctx context.Context, p *plan.Plan) (plan.Delta, error) {
	f.applies <- p
	if f.through {
		return <-f.answers, nil
	}
	select {
	case d := <-f.answers:
		return d, nil
	case <-ctx.Done():
		return plan.Delta{}, ctx.Err()
	}
}

func (f *fakeSup) ApplyMade(ctx context.Context, build func(*plan.Plan) (*plan.Plan, error)) (plan.Delta, error) {
	p, err := build(f.running)
	if err != nil {
		return plan.Delta{}, err
	}
	return f.Apply(ctx, p)
}

func (f *fakeSup) Shutdown(context.Context) error {
	f.shutdown <- struct{}{}
	if f.stuck != nil {
		<-f.stuck
	}
	return nil
}

func (f *fakeSup) ShuttingDown() bool { return false }

func (f *fakeSup) Kill(context.Context) int {
	f.kills <- struct{}{}
	close(f.stuck)
	return 3
}

// runLoop runs l on p in the background: the signals to send it, and its end.
func runLoop(l *upLoop, p *plan.Plan) (chan os.Signal, chan error) {
	sigs := make(chan os.Signal)
	done := make(chan error, 1)
	go func() { done <- l.run(context.Background(), p, sigs) }()
	return sigs, done
}

// lineChan hands each write of the loop to the test, so the test can wait for the loop to
// have handled one thing before it sends the next.
type lineChan chan string

func (c lineChan) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			c <- line
		}
	}
	return len(b), nil
}

func (c lineChan) want(t *testing.T, lines ...string) {
	t.Helper()
	for _, want := range lines {
		select {
		case got := <-c:
			if got != want+"\n" {
				t.Fatalf("loop printed %q, want %q", got, want)
			}
		case <-time.After(time.Minute): // a regression fails, not hangs the suite
			t.Fatalf("loop printed nothing in a minute, want %q", want)
		}
	}
}

func TestUpLoopReloadsOnHUPAndStopsOnTERM(t *testing.T) {
	is := is.New(t)
	first, second := &plan.Plan{Entry: "first"}, &plan.Plan{Entry: "second"}
	reloads := []error{errors.New("script broke"), nil}
	out := make(lineChan, 16)
	sup := newFakeSup()
	l := &upLoop{sup: sup, out: newLineWriter(out), stderr: newLineWriter(io.Discard), reload: func() (*plan.Plan, error) {
		err := reloads[0]
		reloads = reloads[1:]
		if err != nil {
			return nil, err
		}
		return second, nil
	}}
	sigs, done := runLoop(l, first)

	is.Equal(<-sup.applies, first)
	sup.answers <- plan.Delta{Added: []string{"a"}}
	out.want(t, "starvisor: applied plan: 1 process")

	sigs <- syscall.SIGHUP // the broken script changes nothing: no Apply
	out.want(t, "starvisor: SIGHUP: reloading", "starvisor: script broke", "starvisor: reload failed, nothing changed")

	sigs <- syscall.SIGHUP
	out.want(t, "starvisor: SIGHUP: reloading")
	is.Equal(<-sup.applies, second)
	sup.answers <- plan.Delta{Added: []string{"b"}, Changed: []plan.Change{{Name: "a", Fields: []string{"command", "env"}}}}
	out.want(t, "starvisor: reload: 1 added, 1 changed, 0 removed, 0 unchanged", "  + b", "  ~ a: command, env")

	sigs <- syscall.SIGTERM
	out.want(t, "starvisor: SIGTERM: shutting down")
	<-sup.shutdown
	out.want(t, "starvisor: stopped")
	is.NoErr(<-done)
}

// busy runs before each apply reaches the engine and settled once it is over (the GC
// pacing of a burst): the initial one and a reload's.
func TestUpLoopBracketsEachApply(t *testing.T) {
	is := is.New(t)
	out := make(lineChan, 16)
	sup := newFakeSup()
	var mu sync.Mutex
	var calls []string
	note := func(s string) func() {
		return func() { mu.Lock(); calls = append(calls, s); mu.Unlock() }
	}
	l := &upLoop{sup: sup, out: newLineWriter(out), stderr: newLineWriter(io.Discard),
		reload: func() (*plan.Plan, error) { return &plan.Plan{}, nil },
		busy:   note("busy"), settled: note("settled")}
	sigs, done := runLoop(l, &plan.Plan{})
	seen := func() string { mu.Lock(); defer mu.Unlock(); return strings.Join(calls, " ") }
	before := ""
	for i, report := range []string{"starvisor: applied plan: 0 processes",
		"starvisor: reload: 0 added, 0 changed, 0 removed, 0 unchanged"} {
		if i > 0 {
			sigs <- syscall.SIGHUP
			out.want(t, "starvisor: SIGHUP: reloading")
		}
		<-sup.applies
		is.Equal(seen(), before+"busy")
		sup.answers <- plan.Delta{}
		out.want(t, report)
		before += "busy settled "
		is.Equal(seen()+" ", before)
	}
	sigs <- syscall.SIGTERM
	<-sup.shutdown
	is.NoErr(<-done)
}

// HUPs that arrive during an apply fold into one reload after it.
func TestUpLoopFoldsHUPsDuringApply(t *testing.T) {
	is := is.New(t)
	out := make(lineChan, 16)
	sup := newFakeSup()
	reloads := 0
	l := &upLoop{sup: sup, out: newLineWriter(out), stderr: newLineWriter(io.Discard), reload: func() (*plan.Plan, error) {
		reloads++
		return &plan.Plan{}, nil
	}}
	sigs, done := runLoop(l, &plan.Plan{})
	<-sup.applies
	sigs <- syscall.SIGHUP
	sigs <- syscall.SIGHUP
	out.want(t, "starvisor: SIGHUP: reloading", "starvisor: SIGHUP: reloading")
	sup.answers <- plan.Delta{}
	out.want(t, "starvisor: applied plan: 0 processes")
	<-sup.applies // the one reload
	is.Equal(reloads, 1)
	sup.answers <- plan.Delta{Unchanged: []string{"a"}}
	out.want(t, "starvisor: reload: 0 added, 0 changed, 0 removed, 1 unchanged")
	sigs <- syscall.SIGTERM
	<-sup.shutdown
	is.NoErr(<-done)
}

// A reload that got through as a TERM came is reported still: its programs started, and
// their lines say so (a CI run lost the reload's summary that way).
func TestUpLoopReportsReloadThatEndedInShutdown(t *testing.T) {
	is := is.New(t)
	out := make(lineChan, 16)
	sup := newFakeSup()
	sup.through = true
	l := &upLoop{sup: sup, out: newLineWriter(out), stderr: newLineWriter(io.Discard),
		reload: func() (*plan.Plan, error) { return &plan.Plan{}, nil }}
	sigs, done := runLoop(l, &plan.Plan{})
	<-sup.applies
	sup.answers <- plan.Delta{Unchanged: []string{"a"}}
	out.want(t, "starvisor: applied plan: 0 processes")
	sigs <- syscall.SIGHUP
	out.want(t, "starvisor: SIGHUP: reloading")
	<-sup.applies
	sigs <- syscall.SIGTERM
	out.want(t, "starvisor: SIGTERM: shutting down")
	sup.answers <- plan.Delta{Added: []string{"b"}, Unchanged: []string{"a"}}
	out.want(t, "starvisor: reload: 1 added, 0 changed, 0 removed, 1 unchanged", "  + b")
	<-sup.shutdown
	out.want(t, "starvisor: stopped")
	is.NoErr(<-done)
}

// A reload says what it changes before the engine applies it (its restarts' lines had no
// cause above them), and not again after.
func TestUpLoopSaysReloadBeforeItApplies(t *testing.T) {
	is := is.New(t)
	out := make(lineChan, 16)
	sup := newFakeSup()
	prog := func(name, cmd string) plan.Program {
		pr := plan.Defaults()
		pr.Name, pr.ProcessName, pr.Command = name, name, []string{cmd}
		return pr
	}
	first := &plan.Plan{Programs: []plan.Program{prog("a", "/bin/a")}}
	second := &plan.Plan{Programs: []plan.Program{prog("a", "/bin/a2"), prog("b", "/bin/b")}}
	sup.running = first
	l := &upLoop{sup: sup, out: newLineWriter(out), stderr: newLineWriter(io.Discard),
		reload: func() (*plan.Plan, error) { return second, nil }}
	sigs, done := runLoop(l, first)
	<-sup.applies
	sup.answers <- plan.Delta{Added: []string{"a"}}
	out.want(t, "starvisor: applied plan: 1 process")
	sigs <- syscall.SIGHUP
	out.want(t, "starvisor: SIGHUP: reloading")
	is.Equal(<-sup.applies, second)
	// Said already, while the engine has not answered.
	out.want(t, "starvisor: reload: 1 added, 1 changed, 0 removed, 0 unchanged", "  + b", "  ~ a: command")
	sup.answers <- plan.Delta{Added: []string{"b"}, Changed: []plan.Change{{Name: "a", Fields: []string{"command"}}}}
	sigs <- syscall.SIGTERM
	out.want(t, "starvisor: SIGTERM: shutting down") // not the summary again
	<-sup.shutdown
	out.want(t, "starvisor: stopped")
	is.NoErr(<-done)
}

// A TERM during a slow first apply cancels it and still shuts down.
func TestUpLoopStopsDuringApply(t *testing.T) {
	is := is.New(t)
	var out bytes.Buffer
	sup := newFakeSup()
	l := &upLoop{sup: sup, out: newLineWriter(&out), stderr: newLineWriter(io.Discard)}
	sigs, done := runLoop(l, &plan.Plan{})
	<-sup.applies // never answered
	sigs <- syscall.SIGINT
	<-sup.shutdown
	is.NoErr(<-done)
	l.out.flush(time.Minute) // then out is the test's to read
	is.True(strings.Contains(out.String(), "starvisor: SIGINT: shutting down\n"))
}

// A second SIGINT during a shutdown that hangs kills every process group and exits 1;
// one within a second of the first is the same request (a wrapper passing Ctrl-C on).
func TestUpLoopSecondInterruptKills(t *testing.T) {
	is := is.New(t)
	out := make(lineChan, 16)
	sup := newFakeSup()
	sup.stuck, sup.kills = make(chan struct{}), make(chan struct{}, 1)
	var now satomic.Int64 // ms
	l := &upLoop{sup: sup, out: newLineWriter(out), stderr: newLineWriter(io.Discard),
		now: func() time.Time { return time.UnixMilli(now.Load()) }}
	sigs, done := runLoop(l, &plan.Plan{})
	<-sup.applies
	sup.answers <- plan.Delta{}
	out.want(t, "starvisor: applied plan: 0 processes")
	sigs <- syscall.SIGINT
	out.want(t, "starvisor: SIGINT: shutting down")
	<-sup.shutdown         // Shutdown is under way and hangs
	sigs <- syscall.SIGHUP // ignored while stopping
	select {
	case <-sup.kills:
		t.Fatal("SIGHUP killed")
	default:
	}
	now.Add(2)
	sigs <- syscall.SIGTERM // 2 ms after: the same Ctrl-C, passed on
	out.want(t, "starvisor: SIGTERM 2ms after SIGINT: the same request (passed on by a wrapper?); another from a second on kills them now")
	select {
	case <-sup.kills:
		t.Fatal("a signal 2ms after the first killed")
	default:
	}
	now.Add(1500)
	sigs <- syscall.SIGTERM
	<-sup.kills
	out.want(t, "starvisor: SIGTERM again: killed 3 processes with all they started (SIGKILL)")
	err := <-done
	is.Equal(exitCode(err, &bytes.Buffer{}), ExitFailure)
	select {
	case line := <-out:
		t.Errorf("printed %q after the kill; want no 'stopped'", line)
	default:
	}
}

func TestFormatEvent(t *testing.T) {
	is := is.New(t)
	at := time.Date(2026, 11, 25, 18, 7, 2, 123456789, time.Local)
	is.Equal(formatEvent(engine.Event{Time: at, Process: "web", From: engine.Starting, To: engine.Running, Reason: "up 1s"}),
		"2026-11-25T18:07:02.123 web STARTING -> RUNNING (up 1s)")
	is.Equal(formatEvent(engine.Event{Time: at, Process: "web", From: engine.Running, To: engine.Stopping}),
		"2026-11-25T18:07:02.123 web RUNNING -> STOPPING")
}

// talkerBehindAFile runs "talker" (script) with its log under a regular file, which no
// one can write, root included; it returns the supervisor, the folder and what
// OnLogError announced.
func talkerBehindAFile(t *testing.T, script string) (*engine.Supervisor, string, <-chan string) {
	is := is.New(t)
	dir := t.TempDir()
	is.NoErr(os.WriteFile(dir+"/afile", nil, 0o644))
	pr := plan.Defaults()
	pr.Name, pr.ProcessName, pr.StartSecs = "talker", "talker", 0
	pr.Command = []string{"/bin/sh", "-c", script}
	pr.Stdout = plan.DefaultLog(dir + "/afile/x.log")
	p := &plan.Plan{Root: dir, Entry: "deploy.star", Programs: []plan.Program{pr}}
	is.NoErr(p.Finish())
	announced := make(chan string, 8)
	sup := engine.New(engine.Options{Launcher: launcher.New(), Logs: logs.Opener{},
		OnLogError: func(process string, err error) { announced <- fmt.Sprint(process, ": ", err) }})
	t.Cleanup(func() {
		for _, st := range sup.Status() {
			if st.Pid > 0 {
				syscall.Kill(-st.Pid, syscall.SIGKILL) // its own process group
			}
		}
		sup.Shutdown(context.Background())
	})
	_, err := sup.Apply(context.Background(), p)
	is.NoErr(err)
	return sup, dir, announced
}

// A real process whose log cannot be written keeps running, and its status and the
// daemon's log say why.
func TestUnwritableLogShowsInStatus(t *testing.T) {
	is := is.New(t)
	sup, _, announced := talkerBehindAFile(t, "echo hello; exec sleep 3600")
	var st engine.Status
	for deadline := time.Now().Add(10 * time.Second); ; {
		st = sup.Status()[0]
		if strings.Contains(st.Description, "; log: ") || time.Now().After(deadline) {
			break
		}
		runtime.Gosched() // the write happens in the launcher's pipe reader
	}
	is.True(strings.Contains(st.Description, "; log: ")) // the status shows the failure
	is.True(strings.Contains(st.Description, "not a directory"))
	is.Equal(st.State, engine.Running)                  // the program keeps running
	is.True(strings.HasPrefix(<-announced, "talker: ")) // and the daemon's log says it once
	is.NoErr(sup.Shutdown(context.Background()))
}

// A log that cannot be written is said as it starts dropping output, with nobody asking
// for status (a foreground up said it only then), and said again once it is written.
func TestLogFailureAndRepairSaidAtOnce(t *testing.T) {
	is := is.New(t)
	sup, dir, announced := talkerBehindAFile(t, "while :; do echo hello; sleep 0.05; done")
	next := func() string {
		select {
		case s := <-announced:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("nothing announced in 10s")
			return ""
		}
	}
	said := next()
	is.True(strings.HasPrefix(said, "talker: open: ")) // no Status asked
	is.True(strings.Contains(said, "not a directory"))
	is.NoErr(os.Remove(dir + "/afile"))
	is.NoErr(os.Mkdir(dir+"/afile", 0o755))
	is.Equal(next(), "talker: <nil>") // written again
	is.NoErr(sup.Shutdown(context.Background()))
}

// Overlapping bursts keep the burst GOGC until the last one ends; a GOGC from the
// environment is never overridden.
func TestGCPacerOverlappingBursts(t *testing.T) {
	is := is.New(t)
	gogc := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	prev := debug.SetGCPercent(gcPercent)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	g := &gcPacer{own: true}
	g.busy()
	is.Equal(gogc(), uint64(burstGCPercent))
	done := g.burst()
	g.settled()
	is.Equal(gogc(), uint64(burstGCPercent)) // the client's burst still runs
	done()
	is.Equal(gogc(), uint64(gcPercent))

	env := &gcPacer{own: false}
	env.burst()()
	env.busy()
	is.Equal(gogc(), uint64(gcPercent))
}

// Settled, the daemon runs on one processor (each wake-up of the scheduler woke an
// idle one to spin: a program writing ten lines a second cost 2.2 % of a core, 0.5 %
// on one); a burst gets them all; a GOMAXPROCS from the environment is left alone.
func TestGCPacerProcessors(t *testing.T) {
	is := is.New(t)
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	g := &gcPacer{ownProcs: true}
	g.busy()
	is.Equal(runtime.GOMAXPROCS(0), runtime.NumCPU())
	g.settled()
	is.Equal(runtime.GOMAXPROCS(0), 1)
	runtime.GOMAXPROCS(3)
	env := &gcPacer{ownProcs: false}
	env.burst()()
	is.Equal(runtime.GOMAXPROCS(0), 3)
}

// The code pages are given back once no burst or event has come for a while, and a
// burst or an event that comes meanwhile puts that off.
func TestGCPacerTrimsOnceQuiet(t *testing.T) {
	is := is.New(t)
	trimmed := make(chan struct{}, 4)
	g := &gcPacer{trim: func() { trimmed <- struct{}{} }, quietFor: time.Millisecond}
	g.busy()
	g.settled()
	select {
	case <-trimmed:
	case <-time.After(10 * time.Second):
		t.Fatal("no trim after the burst")
	}

	g = &gcPacer{trim: func() { trimmed <- struct{}{} }, quietFor: time.Hour}
	g.busy()
	g.settled()
	g.busy()                 // the next burst of a deploy
	is.True(!g.quiet.Stop()) // busy stopped the trim it would have run
	g.settled()
	is.True(g.quiet.Stop()) // pending again
	g.stir()                // an event (a crash, its restart)
	is.True(g.quiet.Stop())
	g.busy()
	g.stir() // an event of the burst: the burst's end restarts the wait
	is.True(!g.quiet.Stop())
}

// A second daemon of a bundle is refused by the bundle's lock even when no socket answers
// yet (two `up` started together both found none, and both ran every program): nothing
// starts, and the error says why, naming the socket the running daemon wrote in the lock.
func TestUpRefusedWhileTheBundleIsLocked(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "started")
	script := fmt.Sprintf("program(name = %q, command = [\"/bin/sh\", \"-c\", \"touch %s; exec sleep 100\"], start_secs = 0, stdout = None)\n", "p", marker)
	is.NoErr(os.WriteFile(filepath.Join(dir, "deploy.star"), []byte(script), 0o644))
	held, err := lockBundle(filepath.Join(dir, "run"), "/other/sv.sock", filepath.Join(dir, "deploy.star")) // fails: no run/ yet
	is.True(err != nil && held == nil)
	is.NoErr(os.MkdirAll(filepath.Join(dir, "run"), 0o755))
	// As the other daemon, still starting, on the socket its script named (since edited).
	held, err = lockBundle(filepath.Join(dir, "run"), "/other/sv.sock", filepath.Join(dir, "deploy.star"))
	is.NoErr(err)
	defer held.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, starvisorBin(t), "up", "-f", filepath.Join(dir, "deploy.star"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Should it run after all, SIGTERM stops it and the programs it started.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var ee *exec.ExitError
	is.True(errors.As(err, &ee) && ee.ExitCode() == 1) // refused, not killed by the timeout
	is.True(strings.Contains(out.String(), "a daemon is already running on /other/sv.sock (it holds the bundle's lock"))
	_, err = os.Stat(marker)
	is.True(os.IsNotExist(err)) // nothing started
}

// A daemon leaving removes its pidfile, not one another daemon wrote over it since (two
// bundles naming one pidfile).
func TestRemoveOwnLeavesAnotherDaemonsPidfile(t *testing.T) {
	dir := t.TempDir()
	mine, theirs := filepath.Join(dir, "mine.pid"), filepath.Join(dir, "theirs.pid")
	os.WriteFile(mine, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	os.WriteFile(theirs, []byte("1\n"), 0o644)
	removeOwn(mine)
	removeOwn(theirs)
	if _, err := os.Stat(mine); !os.IsNotExist(err) {
		t.Errorf("own pidfile left: %v", err)
	}
	if _, err := os.Stat(theirs); err != nil {
		t.Errorf("another daemon's pidfile removed: %v", err)
	}
}

// A SIGHUP from the terminal up runs in hanging up (an ssh session dropped) stops it, as
// Ctrl-C does, its lines from then on in its log; one with the terminal there still reloads.
func TestUpLoopStopsWhenTheTerminalIsGone(t *testing.T) {
	is := is.New(t)
	out := make(lineChan, 16)
	sup := newFakeSup()
	var gone, logged satomic.Bool
	l := &upLoop{sup: sup, out: newLineWriter(out), stderr: newLineWriter(io.Discard),
		reload: func() (*plan.Plan, error) { return &plan.Plan{}, nil },
		hungUp: gone.Load,
		toLog:  func() bool { return !logged.Swap(true) }}
	sigs, done := runLoop(l, &plan.Plan{})
	<-sup.applies
	sup.answers <- plan.Delta{}
	out.want(t, "starvisor: applied plan: 0 processes")
	sigs <- syscall.SIGHUP
	out.want(t, "starvisor: SIGHUP: reloading")
	<-sup.applies
	sup.answers <- plan.Delta{}
	out.want(t, "starvisor: reload: 0 added, 0 changed, 0 removed, 0 unchanged")
	is.True(!logged.Load())
	gone.Store(true)
	sigs <- syscall.SIGHUP
	out.want(t, "starvisor: SIGHUP: the terminal up ran in is gone: shutting down")
	is.True(logged.Load()) // before that line: it lands where it outlives the terminal
	<-sup.shutdown
	is.NoErr(<-done)
}

// A terminal gone with no hangup signal (up started with &, its shell left) is noticed:
// up runs on, and a SIGHUP from then on is a reload, where it stopped everything.
func TestTTYWatchTellsAHangupFromALaterReload(t *testing.T) {
	is := is.New(t)
	var gone satomic.Bool
	w := &ttyWatch{gone: gone.Load}
	is.True(!w.hungUp())
	lost := make(chan bool, 1)
	go w.watch(t.Context(), 5*time.Millisecond, func() bool { lost <- true; return true })
	gone.Store(true)
	is.True(w.hungUp()) // its SIGHUP, before or just after the poll noticed
	<-lost
	is.True(w.hungUp()) // still, within a second of the notice
	w.noticed.Store(time.Now().Add(-2 * time.Second).UnixNano())
	is.True(!w.hungUp()) // long gone: a SIGHUP now is someone's reload
}

// Once the terminal is gone, up's lines (its stderr's too) land in the daemon's log
// file, its folder made if need be; said once.
func TestHeadlessSendsLinesToTheLog(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "log", "starvisor.log")
	var term bytes.Buffer
	out, errOut := newLineWriter(&term), newLineWriter(&term)
	h := &headless{path: path, out: out, errOut: errOut}
	is.True(h.start())
	is.True(!h.start())
	out.printf("gone\n")
	out.flush(time.Minute)
	errOut.printf("oops\n")
	errOut.flush(time.Minute)
	b, err := os.ReadFile(path)
	is.NoErr(err)
	is.Equal(string(b), "gone\noops\n")
	is.Equal(term.String(), "")
	st, err := os.Stat(path)
	is.NoErr(err)
	is.Equal(st.Mode().Perm(), os.FileMode(0o600)) // its notes name the programs' settings
}

// A detached daemon that lost the bundle's lock to one started at the same moment says
// so by its exit code alone: its output is the winner's log.
func TestLockedDetachedSaysItByExitCode(t *testing.T) {
	is := is.New(t)
	err := errors.New("up: a daemon is already running")
	is.Equal((&UpCmd{}).locked(err), err)
	var buf bytes.Buffer
	is.Equal(exitCode((&UpCmd{OwnLog: "/x/starvisor.log"}).locked(err), &buf), exitLocked)
	is.Equal(buf.String(), "") // nothing written into the winner's log
}
