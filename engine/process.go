package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// snapshot is what the outside sees of one process; its goroutine publishes a new one
// after every event, so Status never waits for a process goroutine.
type snapshot struct {
	State    State
	Pid      int
	Since    time.Time
	Started  time.Time
	Stopped  time.Time
	ExitCode int
	// ExitSignal: the signal that ended the last run, or 0.
	ExitSignal syscall.Signal
	Err        string
	Probe      bool   // the program has a ready probe to wait for
	Ready      bool   // the probe passed for the current pid
	ReadyErr   string // the probe gave up
	Job        bool   // ready = probe.exited(): ready once EXITED with an expected code
	Done       bool   // EXITED with an expected code
	Restarts   int    // automatic spawns since the last start asked for
	// RestartWhy, RestartAt: what the last automatic spawn followed, and when.
	RestartWhy string
	RestartAt  time.Time
	// SpawnFailed: the last start attempt spawned nothing (see procState).
	SpawnFailed bool
	// KillAfter: STOPPING, the stop_timeout its SIGKILL timer was armed with (an apply
	// may change the program's since).
	KillAfter time.Duration
	StopWhy   string // STOPPING for memory_max: why
	// LeftKilled: EXITED, and what it left running was killed with it (see describe).
	LeftKilled bool
	// RestartDue: EXITED, its automatic restart armed (see procState.pendingRestart).
	RestartDue bool
}

// ready reports whether dependents may start: RUNNING and its probe (if any) passed;
// for a job, done.
func (sn *snapshot) ready() bool {
	if sn.Job {
		return sn.State == Exited && sn.Done
	}
	return sn.State == Running && (!sn.Probe || sn.Ready)
}

// Commands a process goroutine accepts. Replies are buffered so the goroutine never
// blocks on a caller that gave up.
type (
	cmdStart struct {
		acked chan struct{} // closed once the spawn was attempted (or the start refused)
		reply chan error    // the outcome when the process leaves STARTING
	}
	cmdStop struct{ reply chan error } // answered on STOPPED
	// cmdAwait joins a start someone else made (an apply's): answered as that start is
	// when the process leaves STARTING, at once nil when RUNNING, else ErrAlreadyStarted.
	cmdAwait  struct{ reply chan error }
	cmdSignal struct {
		sig   syscall.Signal
		reply chan error
	}
	cmdUpdate struct{ prog plan.Program } // ordering-only fields changed
	cmdHold   struct{}                    // shutting down: no automatic starts
	cmdMemory struct{ why string }        // over memory_max: restart it
	cmdKill   struct{ sent chan bool }    // SIGKILL the process group now; sent: was one alive
	cmdQuit   struct{}                    // removed: close the logs and end
	cmdReopen struct{}                    // reopen the log files by name (external logrotate)
)

type probeResult struct {
	id  int
	err error
}

// exited is the exit of the process behind h.
type exited struct {
	h  Handle
	ex Exit
}

// proc is one process. Commands, exits, timers and probe results reach it as messages
// in its inbox, handled one at a time by a goroutine that exists only while messages
// wait: a process that is just running costs no goroutine (a parked one per process
// was a quarter of the daemon's memory). Everything below the second group of fields
// is owned by that goroutine and touched by nothing else.
type proc struct {
	name string
	sup  *Supervisor
	done chan struct{} // closed once cmdQuit was handled
	snap atomic.Pointer[snapshot]
	// putBack: a job put back as it was after its new version's run failed, how (see
	// notePutBack); nil once it runs again.
	putBack atomic.Pointer[string]

	mu    sync.Mutex
	inbox []any
	busy  bool // a goroutine is handling the inbox
	ended bool // cmdQuit was handled: no more messages

	// pending counts starts on their way: batch members not yet done, and restarts or
	// reloads between their stop and their start. Dependents keep waiting while it is
	// positive instead of taking a momentary STOPPED for a failure.
	pending atomic.Int32
	// queued counts starts not yet issued: waiting for their priority level or their
	// dependencies. stops counts stop requests; a queued start taken before a stop
	// gives up instead of starting what the stop asked to have down.
	queued atomic.Int32
	stops  atomic.Uint64
	// waitingFor says which dependency a queued start waits for ("db", "db (FATAL)"),
	// for status; nil when it waits for none.
	waitingFor atomic.Pointer[string]
	// blocked: a queued start waits for a dependency that failed. Its own dependents
	// then do not count it as on its way.
	blocked atomic.Bool
	// retired: Apply is replacing or removing this process. Its stop may already be
	// over when a start still on its way (a dependent whose dependency just became
	// ready, a concurrent Restart) arrives; that start is refused, or it would leave a
	// child nobody supervises once the process quits.
	retired atomic.Bool
	logs    logHealth
	// members lists the running process's cgroup (cgroup mode): memory_max weighs
	// what left its tree too. nil when none runs, or without cgroups.
	members atomic.Pointer[MemberLister]

	st           procState
	prog         plan.Program
	h            Handle
	timer        Timer
	probeStop    context.CancelFunc
	probeID      int
	probeLast    atomic.Pointer[string] // the running probe's last failed attempt, for status
	ready        bool
	readyErr     string
	readyNews    bool // the probe passed during STARTING: OnReady is told at RUNNING
	logsOpen     bool
	out, errw    io.WriteCloser
	startWaiters []chan error
	stopWaiters  []chan error
}

func newProc(s *Supervisor, pr plan.Program) *proc {
	p := &proc{
		name: pr.ProcessName,
		sup:  s,
		done: make(chan struct{}),
		prog: pr,
	}
	p.st = procState{State: Stopped, Pol: policyOf(pr), Since: s.clock.Now()}
	p.publish()
	return p
}

// resuming says whether the process, as sn shows it, starts again by itself: a start of
// it is queued, a restart (or an apply) has taken it down to start it again, or
// memory_max is restarting it. See Status.Resuming.
func (p *proc) resuming(sn *snapshot) bool {
	return p.queued.Load() > 0 || p.pending.Load() > 0 || sn.State == Stopping && sn.StopWhy != "" || sn.RestartDue
}

// restore gives a new process the state of the one it succeeds, which has ended: a job
// put back by a failed apply is done as it was, not to be run again. Before it is in
// any table.
func (p *proc) restore(st procState) {
	st.Pol = policyOf(p.prog)
	st.Gen++ // its old timers are stale
	st.RestartDue, st.Respawn = false, false
	p.st = st
	p.publish()
}

// call hands the command c to the process; ErrNoSuchProcess when it has ended
// (removed). It never waits: replies come on the command's channels.
func (p *proc) call(c any) error {
	if !p.post(c) {
		return ErrNoSuchProcess
	}
	return nil
}

// post puts m in the inbox and starts a goroutine to handle it unless one runs. It
// never blocks, so launchers, timers and probes may call it from anywhere. False: the
// process has ended and m is dropped.
func (p *proc) post(m any) bool {
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		return false
	}
	p.inbox = append(p.inbox, m)
	idle := !p.busy
	p.busy = true
	p.mu.Unlock()
	if idle {
		go p.work()
	}
	return true
}

// work handles the inbox until it is empty, then leaves.
func (p *proc) work() {
	for {
		p.mu.Lock()
		if len(p.inbox) == 0 {
			p.busy = false
			p.inbox = nil // a burst's backing array is not kept for the process's life
			p.mu.Unlock()
			return
		}
		m := p.inbox[0]
		p.inbox[0] = nil
		p.inbox = p.inbox[1:]
		p.mu.Unlock()
		if _, quit := m.(cmdQuit); quit {
			p.quit()
			return
		}
		p.receive(m)
	}
}

func (p *proc) receive(m any) {
	switch m := m.(type) {
	case exited:
		if m.h != p.h {
			return // not the current process's: cannot happen, one exit per handle
		}
		pid := p.st.Pid
		p.h = nil
		p.members.Store(nil)
		p.stopProbe()
		p.sup.recordExit(p.name, pid)
		p.checkLogs(p.sup.clock.Now()) // an exit is when the user wants to know why
		p.handle(event{Kind: evExit, Exit: m.ex})
	case event:
		p.handle(m) // a timer: step ignores it when its Gen is stale
	case probeResult:
		if m.id == p.probeID {
			p.ready = m.err == nil
			if m.err != nil {
				p.readyErr = m.err.Error()
			}
			p.publish()
			switch {
			case p.sup.closed.Load(): // shutting down cancels probes: no news
			case m.err == nil && p.st.State == Starting:
				p.readyNews = true // told once RUNNING: it may still fail its start_secs
			default:
				p.sup.emitReady(p.name, m.err)
			}
		}
	default:
		p.command(m)
	}
}

func (p *proc) command(c any) {
	switch c := c.(type) {
	case cmdStart:
		if p.retired.Load() {
			c.reply <- ErrNoSuchProcess
			close(c.acked)
			return
		}
		p.startWaiters = append(p.startWaiters, c.reply)
		if err := p.handle(event{Kind: evStart}); err != nil {
			p.startWaiters = p.startWaiters[:len(p.startWaiters)-1]
			c.reply <- err
		}
		close(c.acked)
	case cmdAwait:
		switch p.st.State {
		case Starting:
			p.startWaiters = append(p.startWaiters, c.reply)
		case Running:
			c.reply <- nil
		default:
			c.reply <- ErrAlreadyStarted
		}
	case cmdStop:
		p.stopWaiters = append(p.stopWaiters, c.reply)
		if err := p.handle(event{Kind: evStop}); err != nil && p.st.State != Unknown {
			p.stopWaiters = p.stopWaiters[:len(p.stopWaiters)-1]
			c.reply <- err
		}
	case cmdSignal:
		c.reply <- p.handle(event{Kind: evSignal, Sig: c.sig})
	case cmdUpdate:
		probeChanged := !reflect.DeepEqual(p.prog.Ready, c.prog.Ready)
		if p.logsOpen { // new rotation settings (a new path or stream is a change: a restart)
			retune(p.out, c.prog.Stdout)
			if p.errw != p.out {
				retune(p.errw, c.prog.Stderr)
			}
		}
		p.prog = c.prog
		p.st.Pol = policyOf(c.prog)
		if probeChanged && p.h != nil && (p.st.State == Starting || p.st.State == Running) {
			// The running process is judged by its new probe: an apply that fixes a probe
			// which gave up lets its dependents go without a restart. (A new log probe
			// reads the lines written from now on.)
			var ready func(ctx context.Context) error
			if pb := p.sup.o.Prober; pb != nil && c.prog.Ready != nil && !p.st.Pol.Job {
				pr := c.prog
				ready = func(ctx context.Context) error { return pb.Ready(ctx, pr) }
			}
			p.startProbe(ready)
		}
		p.publish()
	case cmdHold:
		p.handle(event{Kind: evHold})
	case cmdMemory:
		p.handle(event{Kind: evMemory, Err: c.why}) // no longer RUNNING: nothing to do
	case cmdReopen:
		reopen(p.out)
		if p.errw != p.out { // redirect_stderr: one writer for both
			reopen(p.errw)
		}
	case cmdKill:
		// Outside the state machine on purpose: the exit arrives as usual (STOPPING →
		// STOPPED, or EXITED with no restart under Hold).
		p.handle(event{Kind: evHold})
		c.sent <- p.h != nil && p.h.Signal(syscall.SIGKILL, true) == nil
	}
}

// handle runs one event through step and carries out the actions. It returns step's
// error (the state is then unchanged) or the error of a signal it sent.
func (p *proc) handle(ev event) error {
	now := p.sup.clock.Now()
	next, acts, err := step(p.st, ev, now)
	if err != nil {
		return err
	}
	if next.Gen != p.st.Gen && p.timer != nil {
		p.timer.Stop() // its Gen is stale now; stopping it just saves the wake-up
		p.timer = nil
	}
	p.st = next
	var sigErr error
	for _, a := range acts {
		if err := p.do(a, now); err != nil && sigErr == nil {
			sigErr = err
		}
	}
	p.publish()
	// Waiters are answered only now: a caller woken by a state change must find that
	// state in Status (the API reports it right after Start or Stop returns).
	for _, a := range acts {
		if a.Kind == actChange {
			p.settle(a)
		}
	}
	return sigErr
}

func (p *proc) do(a action, now time.Time) error {
	switch a.Kind {
	case actChange:
		p.sup.emit(Event{Time: now, Process: p.name, From: a.From, To: a.To, Reason: a.Reason, Pid: a.Pid})
		if a.From == Starting && p.readyNews {
			p.readyNews = false
			if a.To == Running && !p.sup.closed.Load() {
				p.sup.emitReady(p.name, nil)
			}
		}
		if a.To == Stopping {
			p.stopProbe() // a run being stopped is not going to be ready for anyone
		}
		if a.To == Exited && p.st.Pol.Job && p.st.Done && !p.sup.closed.Load() {
			p.sup.emitReady(p.name, nil) // a job done: its dependents go
		}
	case actSpawn:
		return p.spawn()
	case actSignal:
		if p.h == nil {
			return nil // reaped meanwhile
		}
		if m, ok := p.h.(stopMarker); ok && a.Stop && !a.Group {
			m.StopSent(a.Sig, p.st.Pol.StopTimeout) // before: its exit may be reaped at once
		}
		err := p.h.Signal(a.Sig, a.Group)
		if c, ok := p.h.(continuer); ok && a.Stop && err == nil {
			c.Continue(a.Group)
		}
		if err == nil || errors.Is(err, syscall.ESRCH) || errors.Is(err, os.ErrProcessDone) {
			return nil // a process already gone is reported by Done
		}
		err = fmt.Errorf("signal %s: %w", signalName(a.Sig), err)
		p.handle(event{Kind: evSignalFailed, Err: err.Error()})
		return err
	case actTimer:
		if p.timer != nil {
			p.timer.Stop()
		}
		ev := event{Kind: evTimer, Timer: a.Timer, Gen: a.Gen}
		p.timer = p.sup.clock.AfterFunc(a.After, func() { p.post(ev) })
	}
	return nil
}

// settle answers the callers waiting for a state change: Start waits for the process to
// leave STARTING, Stop for STOPPED.
func (p *proc) settle(a action) {
	if a.From == Starting && a.To != Starting {
		var err error
		switch a.To {
		case Running:
		case Backoff, Fatal:
			why := ErrSpawn
			if p.st.JobFail {
				why = ErrJobFailed
			}
			err = fmt.Errorf("%w: %s", why, a.Reason)
		default:
			err = ErrAbnormalTermination
		}
		answer(&p.startWaiters, err)
	}
	switch a.To {
	case Stopped:
		answer(&p.stopWaiters, nil)
	case Unknown:
		answer(&p.stopWaiters, fmt.Errorf("%w: %s", ErrUnknownState, a.Reason))
	}
}

func answer(waiters *[]chan error, err error) {
	for _, w := range *waiters {
		w <- err
	}
	*waiters = nil
}

// spawn starts the process and feeds the outcome back into the state machine.
func (p *proc) spawn() error {
	p.putBack.Store(nil)
	if err := p.openLogs(); err != nil {
		return p.handle(event{Kind: evSpawnFailed, Err: err.Error()})
	}
	if p.sup.o.Launcher == nil {
		return p.handle(event{Kind: evSpawnFailed, Err: "no launcher configured"})
	}
	spec := Spec{Program: p.prog, Env: buildEnv(p.prog, os.Environ(), p.sup.o.Daemon), Stdout: p.out, Stderr: p.errw}
	// A few spawns at a time: the fork itself is serialised by the runtime anyway, and
	// the system calls around it (pipes, cgroup, pidfd) in 200 goroutines at once can
	// make the runtime start an OS thread for each blocked one, threads the daemon then
	// keeps for its whole life (11 to 56 for 200 programs, by timing; 11 to 13 with
	// the slots).
	ready := p.prepareProbe() // before the spawn: a log probe reads what comes after
	p.sup.spawns <- struct{}{}
	h, err := p.sup.o.Launcher.Start(spec)
	<-p.sup.spawns
	if err != nil {
		return p.handle(event{Kind: evSpawnFailed, Err: err.Error()})
	}
	p.h = h
	if m, ok := h.(MemberLister); ok {
		p.members.Store(&m)
	}
	if n, ok := h.(exitNotifier); ok {
		n.NotifyExit(func(ex Exit) { p.post(exited{h, ex}) })
	} else {
		go func() { p.post(exited{h, <-h.Done()}) }()
	}
	pid := h.Pid()
	if r := p.sup.o.Recorder; r != nil {
		// Returns once the state file has the process (the writes of a burst are
		// shared): once status shows it, a daemon killed right then still leaves its
		// successor a way to find it.
		var ticks uint64
		if st, ok := h.(startTimer); ok {
			ticks, _ = st.StartTicks()
		}
		r.Started(p.name, pid, ticks)
	}
	p.startProbe(ready)
	return p.handle(event{Kind: evSpawned, Pid: pid})
}

// openLogs opens the process's writers once; they live across restarts.
func (p *proc) openLogs() error {
	lo := p.sup.o.Logs
	if p.logsOpen || lo == nil {
		return nil
	}
	if p.prog.Stdout != nil {
		w, err := lo.Open(p.prog.Stdout)
		if err != nil {
			return fmt.Errorf("open stdout log: %w", err)
		}
		p.out = w
	}
	switch {
	case p.prog.RedirectStderr:
		p.errw = p.out
	case p.prog.Stderr != nil:
		w, err := lo.Open(p.prog.Stderr)
		if err != nil {
			p.closeLogs()
			return fmt.Errorf("open stderr log: %w", err)
		}
		p.errw = w
	}
	p.logsOpen = true
	p.logs.setWriters(p.out, p.errw)
	p.watchLogs(p.out, p.errw)
	return nil
}

func (p *proc) closeLogs() {
	if p.out != nil {
		p.out.Close()
	}
	if p.errw != nil && p.errw != p.out {
		p.errw.Close()
	}
	p.out, p.errw, p.logsOpen = nil, nil, false
	p.logs.setWriters()
}

// continuer is a Handle that can send SIGCONT after the stop signal, as systemd does: a
// process someone stopped (kill -STOP, a debugger detached badly) would otherwise take
// the stop signal only when continued, so every stop waited out stop_timeout.
type continuer interface {
	Continue(group bool)
}

// stopMarker is a Handle told which signal sent to the process alone was its stop's (not
// a `signal` someone asked): should the process die of it at once leaving processes
// behind (a wrapper that does not exec: sh -c "cd app && python serve.py"), those get it
// too and the rest of timeout, as a group stop gives them, where they were SIGKILLed a
// moment later, their graceful exit cut short.
type stopMarker interface {
	StopSent(sig syscall.Signal, timeout time.Duration)
}

// preparer is a Prober that can do the part of Ready that must happen before the
// spawn (the probe package's log probe notes where the log ends).
type preparer interface {
	Prepare(pr plan.Program) func(ctx context.Context) error
}

// prepareProbe returns the ready probe to run once the process is spawned, or nil.
func (p *proc) prepareProbe() func(ctx context.Context) error {
	pb, pr := p.sup.o.Prober, p.prog
	if pr.Ready == nil || pb == nil || p.st.Pol.Job {
		return nil // a job's readiness is its exit: the state machine's
	}
	// A pool member whose siblings run may share their port (SO_REUSEPORT): that it
	// answers before the spawn says nothing, so no preparing (it fails a tcp or http
	// probe whose port answers already; see probe.Prober.Prepare). Members probed on
	// ports of their own ("80{num}") are checked as any program is.
	shared := (pr.Ready.Kind == plan.ProbeTCP || pr.Ready.Kind == plan.ProbeHTTP) && p.siblingActive()
	if pp, ok := pb.(preparer); ok && !shared {
		return pp.Prepare(pr)
	}
	return func(ctx context.Context) error { return pb.Ready(ctx, pr) }
}

// siblingActive says whether another process of p's program (numprocs) probed at the
// same address is active.
func (p *proc) siblingActive() bool {
	tab := p.sup.tab.Load()
	for i, o := range tab.procs {
		sib := &tab.plan.Programs[i]
		same := sib.Ready != nil && sib.Ready.Host == p.prog.Ready.Host && sib.Ready.Port == p.prog.Ready.Port && sib.Ready.URL == p.prog.Ready.URL
		if o != p && sib.Name == p.prog.Name && same && o.snap.Load().State.Active() {
			return true
		}
	}
	return false
}

// startProbe runs ready, the probe for the pid just spawned, off the loop.
func (p *proc) startProbe(ready func(ctx context.Context) error) {
	p.stopProbe()
	p.ready, p.readyErr = false, ""
	if ready == nil {
		return
	}
	ctx, cancel := context.WithCancel(p.sup.ctx)
	p.probeStop = cancel
	id := p.probeID
	ctx = WithProbeAttempts(ctx, func(err error) {
		if ctx.Err() == nil { // not a probe stopped meanwhile, whose successor's this is
			msg := err.Error()
			p.probeLast.Store(&msg)
		}
	})
	go func() { p.post(probeResult{id, ready(ctx)}) }()
}

// stopProbe cancels a running probe; bumping probeID makes its late answer stale.
func (p *proc) stopProbe() {
	p.probeID++
	if p.probeStop != nil {
		p.probeStop()
		p.probeStop = nil
	}
	p.probeLast.Store(nil)
}

// quit ends the process's life in the table: nothing more is posted, and commands
// still queued are answered as if they had come too late.
func (p *proc) quit() {
	p.mu.Lock()
	p.ended = true
	rest := p.inbox
	p.inbox = nil
	p.mu.Unlock()
	if p.timer != nil {
		p.timer.Stop()
	}
	p.stopProbe()
	p.closeLogs()
	answer(&p.startWaiters, ErrNoSuchProcess)
	answer(&p.stopWaiters, ErrNoSuchProcess)
	for _, m := range rest {
		refuse(m)
	}
	close(p.done)
}

// retune gives a log writer the rotation settings of l, if it can.
func retune(w io.WriteCloser, l *plan.Log) {
	if r, ok := w.(interface{ Retune(plan.Log) }); ok && l != nil {
		r.Retune(*l)
	}
}

// reopen has a log writer open its file again by name, if it can.
func reopen(w io.WriteCloser) {
	if r, ok := w.(interface{ Reopen() }); ok {
		r.Reopen()
	}
}

// refuse answers a command that arrived after cmdQuit.
func refuse(m any) {
	switch c := m.(type) {
	case cmdStart:
		c.reply <- ErrNoSuchProcess
		close(c.acked)
	case cmdStop:
		c.reply <- ErrNoSuchProcess
	case cmdAwait:
		c.reply <- ErrNoSuchProcess
	case cmdSignal:
		c.reply <- ErrNoSuchProcess
	case cmdKill:
		c.sent <- false
	}
}

func (p *proc) publish() {
	p.snap.Store(&snapshot{
		State:       p.st.State,
		Pid:         p.st.Pid,
		Since:       p.st.Since,
		Started:     p.st.Started,
		Stopped:     p.st.Stopped,
		ExitCode:    p.st.ExitCode,
		ExitSignal:  p.st.ExitSignal,
		Err:         p.st.Err,
		Probe:       p.prog.Ready != nil && p.sup.o.Prober != nil && !p.st.Pol.Job,
		Ready:       p.ready,
		ReadyErr:    p.readyErr,
		Job:         p.st.Pol.Job,
		Done:        p.st.Done,
		Restarts:    p.st.Restarts,
		RestartWhy:  p.st.RestartWhy,
		RestartAt:   p.st.RestartAt,
		SpawnFailed: p.st.SpawnFailed,
		KillAfter:   p.st.KillAfter,
		StopWhy:     p.st.StopWhy,
		LeftKilled:  p.st.State == Exited && p.st.LeftKilled,
		RestartDue:  p.st.pendingRestart(),
	})
	p.sup.broadcast()
}
