package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// fakeHandle is a process that exists only in the test. It dies on any signal unless the
// signal is ignored, and on exit(code).
type fakeHandle struct {
	l      *fakeLauncher
	name   string
	pid    int
	spec   Spec
	done   chan Exit // buffered: the exit is delivered even if nobody reads yet
	dead   chan struct{}
	mu     sync.Mutex
	exited bool
	ignore map[syscall.Signal]bool
}

func (h *fakeHandle) Pid() int { return h.pid }

// StartTicks is known for every fake process: ten times its pid.
func (h *fakeHandle) StartTicks() (uint64, bool) { return uint64(h.pid) * 10, true }
func (h *fakeHandle) Done() <-chan Exit          { return h.done }

// Members: the fake cgroup holds the process and one daemonized worker, pid+1000.
func (h *fakeHandle) Members() []int { return []int{h.pid, h.pid + 1000} }

func (h *fakeHandle) Signal(sig syscall.Signal, group bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.exited {
		return syscall.ESRCH
	}
	if err := h.l.sigErr[h.name]; err != nil {
		return err
	}
	w := signalName(sig)
	if group {
		w += " group"
	}
	h.l.mu.Lock()
	h.l.note("%s %s", h.name, w)
	h.l.mu.Unlock()
	if !h.ignore[sig] {
		h.exitLocked(Exit{Code: -1, Signal: sig})
	}
	return nil
}

// exit makes the process end with code.
func (h *fakeHandle) exit(code int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.exitLocked(Exit{Code: code})
}

func (h *fakeHandle) exitLocked(e Exit) {
	if h.exited {
		return
	}
	h.exited = true
	close(h.dead)
	e.Time = time.Now()
	h.done <- e
}

// fakeLauncher starts fakeHandles and keeps a timestamped log of spawns and signals.
// behave, keyed by process name, runs inside Start (it must not block; start a goroutine
// to act later).
type fakeLauncher struct {
	t0     time.Time
	mu     sync.Mutex
	log    []string
	all    []*fakeHandle
	fail   map[string]error
	behave map[string]func(h *fakeHandle)
	ignore map[string][]syscall.Signal
	sigErr map[string]error // read-only once the test runs
}

func (l *fakeLauncher) note(format string, args ...any) {
	l.log = append(l.log, fmt.Sprintf("%v ", time.Since(l.t0))+fmt.Sprintf(format, args...))
}

func (l *fakeLauncher) Start(spec Spec) (Handle, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	name := spec.Program.ProcessName
	if err := l.fail[name]; err != nil {
		return nil, err
	}
	h := &fakeHandle{l: l, name: name, pid: 100 + len(l.all), spec: spec, done: make(chan Exit, 1),
		dead: make(chan struct{}), ignore: map[syscall.Signal]bool{}}
	for _, s := range l.ignore[name] {
		h.ignore[s] = true
	}
	l.all = append(l.all, h)
	l.note("%s spawn %d", name, h.pid)
	if b := l.behave[name]; b != nil {
		b(h)
	}
	return h, nil
}

// lines returns the log lines that contain sub.
func (l *fakeLauncher) lines(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.log {
		if strings.Contains(s, sub) {
			out = append(out, s)
		}
	}
	return out
}

// spawned lists spawns as "offset name", sorted (so processes spawned in parallel
// compare equal whatever order their goroutines ran in).
func (l *fakeLauncher) spawned() []string {
	var out []string
	for _, s := range l.lines(" spawn ") {
		f := strings.Fields(s)
		out = append(out, f[0]+" "+f[1])
	}
	slices.SortStableFunc(out, func(a, b string) int {
		da, _ := time.ParseDuration(strings.Fields(a)[0])
		db, _ := time.ParseDuration(strings.Fields(b)[0])
		if da != db {
			return int(da - db)
		}
		return strings.Compare(a, b)
	})
	return out
}

// handles returns every handle of a process, oldest first.
func (l *fakeLauncher) handles(name string) []*fakeHandle {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*fakeHandle
	for _, h := range l.all {
		if h.name == name {
			out = append(out, h)
		}
	}
	return out
}

// last is the newest handle of a process.
func (l *fakeLauncher) last(name string) *fakeHandle {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.all) - 1; i >= 0; i-- {
		if l.all[i].name == name {
			return l.all[i]
		}
	}
	return nil
}

// exitAfter makes a process exit with code d after each spawn.
func exitAfter(d time.Duration, code int) func(h *fakeHandle) {
	return func(h *fakeHandle) {
		if d == 0 {
			h.exitLocked(Exit{Code: code})
			return
		}
		go func() {
			select {
			case <-time.After(d):
				h.exit(code)
			case <-h.dead: // killed first; end so the bubble can finish
			}
		}()
	}
}

// fakeProber passes a program's probe when the test closes its gate.
type fakeProber struct {
	mu    sync.Mutex
	gates map[string]chan struct{}
	fails map[string]string // a process's probe tells one failed attempt, this one
}

// tellFailure tells ProbeAttempts the failed attempt fails names for the process, if any.
func (p *fakeProber) tellFailure(ctx context.Context, name string) {
	p.mu.Lock()
	msg, ok := p.fails[name]
	p.mu.Unlock()
	if ok {
		ProbeAttempts(ctx)(errors.New(msg))
	}
}

func (p *fakeProber) gate(name string) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gates[name] == nil {
		p.gates[name] = make(chan struct{})
	}
	return p.gates[name]
}

func (p *fakeProber) Ready(ctx context.Context, pr plan.Program) error {
	select {
	case <-p.gate(pr.ProcessName):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fakeLogs hands out in-memory writers and counts opens, closes and reopens per path.
type fakeLogs struct {
	mu      sync.Mutex
	opens   map[string]int
	closes  map[string]int
	reopens map[string]int
	tuned   map[string]plan.Log // the last Retune per path
}

func (w *fakeWriter) Retune(l plan.Log) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	if w.l.tuned == nil {
		w.l.tuned = map[string]plan.Log{}
	}
	w.l.tuned[w.path] = l
}

func (w *fakeWriter) Reopen() {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	if w.l.reopens == nil {
		w.l.reopens = map[string]int{}
	}
	w.l.reopens[w.path]++
}

type fakeWriter struct {
	l    *fakeLogs
	path string
	bytes.Buffer
}

func (w *fakeWriter) Close() error {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	w.l.closes[w.path]++
	return nil
}

func (l *fakeLogs) Open(lg *plan.Log) (io.WriteCloser, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.opens[lg.Path]++
	return &fakeWriter{l: l, path: lg.Path}, nil
}

func (l *fakeLogs) counts(path string) (int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.opens[path], l.closes[path]
}

type fakeRecorder struct {
	mu  sync.Mutex
	log []string
}

func (r *fakeRecorder) Started(p string, pid int, ticks uint64) {
	r.add("started %s %d @%d", p, pid, ticks)
}
func (r *fakeRecorder) Exited(p string, pid int) { r.add("exited %s %d", p, pid) }
func (r *fakeRecorder) add(f string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, fmt.Sprintf(f, a...))
}

type fakeSampler struct{}

func (fakeSampler) Sample(pid int) (Usage, error) {
	return Usage{CPUPercent: float64(pid), RSSBytes: uint64(pid) << 20}, nil
}

// rig is a Supervisor on fakes, built inside a synctest bubble.
type rig struct {
	t       *testing.T
	t0      time.Time
	sup     *Supervisor
	l       *fakeLauncher
	probes  *fakeProber
	logs    *fakeLogs
	rec     *fakeRecorder
	mu      sync.Mutex
	events  []string
	reasons []string // "process FROM>TO reason"
	inCall  int
}

func newRig(t *testing.T, mods ...func(*Options)) *rig {
	r := &rig{t: t, t0: time.Now()}
	r.l = &fakeLauncher{t0: r.t0, fail: map[string]error{}, behave: map[string]func(*fakeHandle){},
		ignore: map[string][]syscall.Signal{}}
	r.probes = &fakeProber{gates: map[string]chan struct{}{}}
	r.logs = &fakeLogs{opens: map[string]int{}, closes: map[string]int{}}
	r.rec = &fakeRecorder{}
	o := Options{Launcher: r.l, Prober: r.probes, Logs: r.logs, Recorder: r.rec, OnEvent: r.onEvent}
	for _, m := range mods {
		m(&o)
	}
	r.sup = New(o)
	return r
}

func (r *rig) onEvent(ev Event) {
	r.mu.Lock()
	r.inCall++
	if r.inCall > 1 {
		r.t.Error("OnEvent called concurrently")
	}
	r.events = append(r.events, fmt.Sprintf("%v %s %v>%v", ev.Time.Sub(r.t0), ev.Process, ev.From, ev.To))
	r.reasons = append(r.reasons, fmt.Sprintf("%s %v>%v %s", ev.Process, ev.From, ev.To, ev.Reason))
	r.inCall--
	r.mu.Unlock()
}

// eventsOf returns the events of one process, as "offset FROM>TO".
func (r *rig) eventsOf(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if f := strings.Fields(e); f[1] == name {
			out = append(out, f[0]+" "+f[2])
		}
	}
	return out
}

func (r *rig) apply(p *plan.Plan) plan.Delta {
	r.t.Helper()
	d, err := r.sup.Apply(context.Background(), p)
	if err != nil {
		r.t.Fatalf("apply: %v", err)
	}
	return d
}

func (r *rig) status(name string) Status {
	r.t.Helper()
	for _, s := range r.sup.Status() {
		if s.Name == name {
			return s
		}
	}
	r.t.Fatalf("no status for %s", name)
	return Status{}
}

func (r *rig) shutdown() {
	r.t.Helper()
	if err := r.sup.Shutdown(context.Background()); err != nil {
		r.t.Errorf("shutdown: %v", err)
	}
}

func (r *rig) since() time.Duration { return time.Since(r.t0) }

func prog(name string, mods ...func(*plan.Program)) plan.Program {
	pr := plan.Defaults()
	pr.Name, pr.ProcessName = name, name
	pr.Command = []string{"/opt/bin/" + name}
	for _, m := range mods {
		m(&pr)
	}
	return pr
}

func planOf(t *testing.T, progs ...plan.Program) *plan.Plan {
	t.Helper()
	p := &plan.Plan{Root: "/srv", Entry: "deploy.star", Programs: progs}
	if err := p.Finish(); err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

func priority(n int) func(*plan.Program)  { return func(pr *plan.Program) { pr.Priority = n } }
func startSecs(n int) func(*plan.Program) { return func(pr *plan.Program) { pr.StartSecs = n } }
func autorestart(a string) func(*plan.Program) {
	return func(pr *plan.Program) { pr.Autorestart = a }
}
func dependsOn(names ...string) func(*plan.Program) {
	return func(pr *plan.Program) { pr.DependsOn = names }
}
func stopTimeout(d time.Duration) func(*plan.Program) {
	return func(pr *plan.Program) { pr.StopTimeout = plan.Duration(d) }
}

// envV sets V=v in the environment: a new value makes the program a changed one.
func envV(v string) func(*plan.Program) {
	return func(pr *plan.Program) { pr.Env = map[string]string{"V": v} }
}

func withProbe(pr *plan.Program) {
	pr.Ready = &plan.Probe{Kind: plan.ProbeTCP, Host: "127.0.0.1", Port: 5432,
		Interval: plan.Duration(time.Second), Timeout: plan.Duration(time.Minute)}
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}
