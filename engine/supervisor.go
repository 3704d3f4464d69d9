package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// Event is one state change of one process.
type Event struct {
	Time     time.Time
	Process  string
	From, To State
	Reason   string // supervisord's words: "exit status 1; not expected", "terminated by SIGTERM"
	Pid      int    // into RUNNING, or out of a live state: the process's (0: none, or not known)
}

// Options are the Supervisor's collaborators. Launcher is required; a nil Clock is the
// system clock; nil Prober, Logs, Sampler or Recorder turn that part off (no probes: a
// RUNNING process is ready; no Logs: output is discarded).
type Options struct {
	Launcher Launcher
	Clock    Clock
	Prober   Prober
	Logs     LogOpener
	Sampler  Sampler
	Recorder Recorder
	OnEvent  func(Event) // every state change, called in order, never concurrently
	// OnLogError is told once when a process's log writer starts failing (or fails
	// differently), and once, with a nil error, when its writers write again; the error
	// also shows in Status.Description while it lasts. Writers that say when their
	// health changes (logs.File) are checked then; all of them on Status, on each exit,
	// and every sampling round while watched.
	// Called on OnEvent's goroutine, in order with the events.
	OnLogError func(process string, err error)
	// OnReady is told when a process's ready probe passed (err nil) or gave up, for the
	// pid it was started for. Called on OnEvent's goroutine, in order with the events.
	OnReady func(process string, err error, at time.Time)
	// OnBlocked is told when a process to start will not, until someone acts: it waits
	// for a dependency that failed ("waiting for migrate (FATAL)"), or whose ready probe
	// gave up; again should the reason change. Called on OnEvent's goroutine, in order
	// with the events.
	OnBlocked func(process, why string)
	// OnUnwatched is called once each time sampling stops because nobody has asked for
	// Status for a while (see sample.go): the daemon may return what watching used.
	OnUnwatched func()
	// Daemon, when set, goes into every child's environment as STARVISOR_DAEMON.
	Daemon string
	// Check, when set, says what keeps a program from starting (a missing command): a
	// program restarted after its jobs ran first is checked then, once the job had its
	// chance to make what was missing (a venv), and the apply fails rather than take it
	// down, unless its context is Forced.
	Check func(plan.Program) []string
	// OnApplied, when set, is called with each plan an Apply made the running one
	// (the daemon records it: `logs` reads its paths once the daemon is gone).
	OnApplied func(*plan.Plan)
}

type forceKey struct{}

// Forced marks an apply to go on even where Options.Check finds a restarted program
// cannot start (apply --force).
func Forced(ctx context.Context) context.Context { return context.WithValue(ctx, forceKey{}, true) }

func forced(ctx context.Context) bool { f, _ := ctx.Value(forceKey{}).(bool); return f }

// Status is one process as `status` shows it.
type Status struct {
	Name        string // process name
	Group       string // the program's group, or its name when it has none (supervisord)
	State       State
	Ready       bool      // RUNNING and its ready probe, if it has one, passed: dependents may start
	Pid         int       // 0 unless the process is alive
	ExitCode    int       // of the last exit
	Since       time.Time // of the last state change
	Started     time.Time // the spawn of the process that runs, if one does: uptime counts from it
	Description string    // supervisorctl's words: "pid 123, uptime 0:01:02", "Not started", ...
	// Blocked says why the process will not get ready unless someone acts: its ready
	// probe gave up ("not ready: ..."), or its start waits for a dependency that failed
	// ("not started: waiting for db (FATAL)"); "" otherwise.
	Blocked string
	// Queued: a start of it waits for its priority level or its dependencies; a stop
	// cancels it.
	Queued bool
	// Resuming: it is not up, or is stopping, and will start again by itself: queued, in
	// the stop of a restart, or in memory_max's. An apply treats it as up.
	Resuming bool
	// Restarts counts the spawns the daemon made by itself (autorestart, backoff
	// retries) since the last start asked for: a crash loop shows here.
	Restarts int
	// LastRestart: what the last of those restarts followed, and how long ago ("exit
	// status 2; not expected, 3s ago"); "" when none. RestartWhy and RestartAt: the same,
	// apart, for scripts (status --json).
	LastRestart string
	RestartWhy  string
	RestartAt   time.Time
	// LastWords: of a process restarted by itself, its log's last line (stderr's first)
	// as the run before ended, the log's path and when: the crash's words, which the new
	// run's first lines hide in the file. "" when its writers do not keep them.
	LastWords, LastWordsLog string
	LastWordsAt             time.Time
	// SpawnFailed: the last start attempt spawned nothing (a missing or non-executable
	// command): its log holds nothing about that failure.
	SpawnFailed bool
	// LogError: why its log writers fail, naming the file ("" when they do not); the
	// description says it too.
	LogError string
	Usage    Usage // the last sample while the process is alive (see sample.go)
	Hash     string
}

// Supervisor runs a plan. Each process owns its state machine, driven by the messages in
// its inbox, one at a time (process.go).
type Supervisor struct {
	o         Options
	clock     Clock
	ctx       context.Context // ends at Shutdown: probes, background starts, sampling
	cancel    context.CancelFunc
	mu        sync.Mutex               // serialises Apply and Shutdown
	deploying chan struct{}            // held by an Apply across its jobs-first wait (see Apply)
	firstJobs atomic.Pointer[[]string] // the jobs an Apply runs first, while it waits for them
	finished  bool                     // Shutdown completed (under mu)
	tab       atomic.Pointer[table]
	closed    atomic.Bool    // shutting down: no more starts
	closeMu   sync.Mutex     // orders closing against a late bg.Add (waitOnFor)
	bg        sync.WaitGroup // background start batches and the sampler
	events    *dispatcher
	recording sync.WaitGroup // Recorder.Exited calls in flight
	samples   sampling
	spawns    chan struct{} // spawn slots: see proc.spawn

	chMu    sync.Mutex
	changed chan struct{}
	watched bool
}

// table is the current plan with its processes, in start order. It is replaced whole,
// never modified, so Status reads it without locks.
type table struct {
	plan  *plan.Plan
	procs []*proc
	index map[string]int // process name -> position
}

// New returns a Supervisor with nothing to run; Apply gives it a plan.
func New(o Options) *Supervisor {
	s := &Supervisor{o: o, clock: o.Clock, changed: make(chan struct{}), deploying: make(chan struct{}, 1),
		spawns: make(chan struct{}, 4*runtime.GOMAXPROCS(0))}
	s.samples.init()
	if s.clock == nil {
		s.clock = realClock{}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.tab.Store(&table{index: map[string]int{}})
	if o.OnEvent != nil || o.OnLogError != nil || o.OnReady != nil || o.OnBlocked != nil {
		s.events = newDispatcher(o)
	}

	if o.Sampler != nil {
		s.bg.Add(1)
		go s.sampleLoop()
	}
	return s
}

// Plan is the plan last applied (nil before the first Apply).
func (s *Supervisor) Plan() *plan.Plan { return s.tab.Load().plan }

// Apply makes next the running plan. Removed processes stop and their logs close;
// changed ones (hash differs) stop and start again with the new spec if they were active
// or autostart; added autostart ones start; unchanged ones keep running and take the new
// fields the hash leaves out (ordering, group, numprocs, autostart: one not active whose
// autostart was turned on starts). Stops are waited for; starts are issued in start order and Apply
// returns once each was spawned or is waiting for its dependencies. The first call
// starts every autostart process. next should be Finish()ed (Apply validates it again and
// runs its Programs in the order given) and must not be modified afterwards.
//
// A job (ready = probe.exited()) that next adds or changes, and that a program the apply
// restarts depends on (a migration for the new version), runs first, on its own, while
// that program runs on in its current version; the rest is applied once the job is
// done. Should it fail, nothing else is applied (an error wrapping ErrJobFailed), and
// the program keeps running. Applies wait for each other, job and all.
func (s *Supervisor) Apply(ctx context.Context, next *plan.Plan) (plan.Delta, error) {
	return s.ApplyMade(ctx, func(*plan.Plan) (*plan.Plan, error) { return next, nil })
}

// ApplyMade applies the plan build returns, called with the running plan once the
// applies before this one are done: a SIGHUP reload evaluates the script then, with the
// values the last apply read, where evaluated before it waited its turn it undid the
// apply it waited for. An error of build applies nothing.
func (s *Supervisor) ApplyMade(ctx context.Context, build func(running *plan.Plan) (*plan.Plan, error)) (plan.Delta, error) {
	asked := s.clock.Now() // a stop asked after this holds against this apply
	select {
	case s.deploying <- struct{}{}:
		defer func() { <-s.deploying }()
	case <-ctx.Done():
		return plan.Delta{}, ctx.Err()
	}
	next, err := build(s.tab.Load().plan)
	if err != nil {
		return plan.Delta{}, err
	}
	if next == nil {
		return plan.Delta{}, errors.New("apply: nil plan")
	}
	if err := next.Validate(); err != nil {
		return plan.Delta{}, err
	}
	before := s.tab.Load().plan
	d := plan.Diff(before, next)
	first, jobs := s.jobsFirst(next, d)
	// A job the restarted programs depend on that is not done (it failed before, or was
	// stopped) runs again first, before the first phase, whose jobs may depend on it:
	// else they would go down to wait for it, for good.
	if again := s.failedJobs(next, d); len(again) > 0 {
		tab := s.tab.Load()
		idx, _ := resolve(tab, again)
		b := s.startBehind(tab, idx)
		if b == nil {
			return d, ErrShutdown
		}
		select {
		case <-b.issued:
		case <-ctx.Done():
			return d, ctx.Err()
		}
		jobs = append(jobs, again...)
	}
	jobs = append(jobs, s.runningJobs(next, d)...) // waited for, not run again
	var replaced map[string]procState              // the jobs' old versions, as they ended
	var firstD plan.Delta
	if first != nil {
		var err error
		if firstD, replaced, err = s.apply(ctx, first, nil, asked); err != nil {
			return d, err
		}
	}
	if len(jobs) > 0 {
		s.firstJobs.Store(&jobs)
		err := s.waitJobs(ctx, jobs)
		s.firstJobs.Store(nil)
		if err == nil && first != nil {
			err = s.checkAfterJobs(ctx, next, d, jobs)
		}
		if err != nil {
			if first != nil {
				failed := s.failedRuns(jobs)
				s.putBack(before, replaced)
				s.notePutBack(failed)
			}
			return d, err
		}
	}
	last, _, err := s.apply(ctx, next, nil, asked)
	if err != nil {
		return d, err
	}
	d.NotStarted = last.NotStarted
	d.WasDown = append(firstD.WasDown, last.WasDown...) // a job done that ran again first
	if s.o.OnApplied != nil {
		s.o.OnApplied(next)
	}
	return d, nil
}

// checkAfterJobs refuses, once the jobs run first are done, to restart an active program
// that depends on one of them into a version that still cannot start (Options.Check):
// the job did not make what it lacked.
func (s *Supervisor) checkAfterJobs(ctx context.Context, next *plan.Plan, d plan.Delta, jobs []string) error {
	if s.o.Check == nil || forced(ctx) {
		return nil
	}
	ran := map[string]bool{}
	for _, n := range jobs {
		if pr, ok := next.Lookup(n); ok {
			ran[pr.Name] = true
		}
	}
	dependent := func(pr plan.Program) bool {
		return slices.ContainsFunc(pr.DependsOn, func(dep string) bool { return ran[dep] })
	}
	if why := CannotStart(s.States(), next, d, dependent, s.o.Check); len(why) > 0 {
		return fmt.Errorf("%s runs now, and would be restarted into a version that cannot start, though the jobs first ran: nothing else applied; fix it, or apply --force", why[0])
	}
	return nil
}

// CannotStart lists, as "name (problems)", the programs among those d changes that are
// active in states, that only selects, and that check says cannot start in next's
// version: an apply would take each down.
func CannotStart(states []Status, next *plan.Plan, d plan.Delta, only func(plan.Program) bool, check func(plan.Program) []string) []string {
	active := map[string]bool{}
	for _, st := range states {
		active[st.Name] = st.State.Active() || st.Resuming // in a restart's stop: it comes back
	}
	seen := map[string]bool{}
	var why []string
	for _, c := range d.Changed {
		pr, ok := next.Lookup(c.Name)
		if !ok || seen[pr.Name] || !active[c.Name] || !only(pr) {
			continue
		}
		seen[pr.Name] = true
		if problems := check(pr); len(problems) > 0 {
			why = append(why, pr.Name+" ("+strings.Join(problems, "; ")+")")
		}
	}
	return why
}

// putBack makes before the running plan again after its jobs-first phase failed: the jobs
// it changed return to their old versions as they were, done (not run again), and those
// it added go; so nothing of the failed apply stays, and its programs' dependencies are
// met as before (a restart of one does not wait for a job that failed), and the next
// apply runs the new job first again.
func (s *Supervisor) putBack(before *plan.Plan, replaced map[string]procState) {
	seed := map[string]procState{}
	for _, pr := range before.Programs {
		if st, ok := replaced[pr.ProcessName]; ok && pr.IsJob() && !st.State.Live() { // a service put back starts again
			seed[pr.ProcessName] = st
		}
	}
	s.apply(s.ctx, before, seed, time.Time{}) // a stop of the failed jobs, which have ended anyway
}

// failedRuns words, per job of jobs that ran and failed, how its run ended ("exit status
// 1 at 14:02:05").
func (s *Supervisor) failedRuns(jobs []string) map[string]string {
	out := map[string]string{}
	tab := s.tab.Load()
	for _, n := range jobs {
		i, ok := tab.index[n]
		if !ok {
			continue
		}
		sn := tab.procs[i].snap.Load()
		switch {
		case sn.Done:
		case sn.Err != "": // FATAL, BACKOFF: its spawn, or its runs too quick
			out[n] = sn.Err + " at " + sn.Since.Local().Format("15:04:05")
		case !sn.Stopped.IsZero():
			how := fmt.Sprintf("exit status %d", sn.ExitCode)
			if sn.ExitCode < 0 && sn.ExitSignal != 0 {
				how = "terminated by " + signalName(sn.ExitSignal)
			}
			out[n] = how + " at " + sn.Stopped.Local().Format("15:04:05")
		}
	}
	return out
}

// notePutBack has each job put back after its new version's run failed say so in
// status: done as before, it read as all well after a red deploy.
func (s *Supervisor) notePutBack(failed map[string]string) {
	tab := s.tab.Load()
	for n, how := range failed {
		if i, ok := tab.index[n]; ok {
			note := "its new version's run failed (" + how + "), put back as it was"
			tab.procs[i].putBack.Store(&note)
		}
	}
}

// WouldRunFirst names the jobs an Apply of next (d: from the running plan) would run
// first, on their own, before restarting what depends on them: those jobsFirst puts in
// its first phase and those not done that failedJobs runs again.
func (s *Supervisor) WouldRunFirst(next *plan.Plan, d plan.Delta) []string {
	_, jobs := s.jobsFirst(next, d)
	return append(append(jobs, s.failedJobs(next, d)...), s.runningJobs(next, d)...)
}

// FirstJobs names the jobs an Apply runs first and waits for now (nil when none): the
// plan then holds their new versions, and the rest of that apply is still to come.
func (s *Supervisor) FirstJobs() []string {
	if j := s.firstJobs.Load(); j != nil {
		return slices.Clone(*j)
	}
	return nil
}

// jobsFirst returns the plan that runs first the jobs next adds or changes that a program
// it restarts depends on (plan.Delta.JobsFirst), and their process names: the running
// plan with next's version of those jobs and of what they depend on that next adds or
// changes, nothing else changed. nil when there are none, or when that is no valid plan.
func (s *Supervisor) jobsFirst(next *plan.Plan, d plan.Delta) (*plan.Plan, []string) {
	jobs := d.JobsFirst(next)
	running := s.tab.Load().plan
	if len(jobs) == 0 || running == nil {
		return nil, nil
	}
	// With them, what they depend on that the apply adds or changes (a database the
	// migration needs): in next's version, as they will run.
	needed := map[string]bool{}
	moved := map[string]bool{} // program names
	for n := range movedProcesses(d) {
		if pr, ok := next.Lookup(n); ok {
			moved[pr.Name] = true
		}
	}
	var need func(name string)
	need = func(name string) {
		if needed[name] || !moved[name] {
			return
		}
		needed[name] = true
		for _, pr := range next.Programs {
			if pr.Name == name {
				for _, dep := range pr.DependsOn {
					need(dep)
				}
				break
			}
		}
	}
	for job := range jobs {
		need(job)
	}
	first := *running
	first.Root, first.Entry, first.Inputs = next.Root, next.Entry, next.Inputs
	first.Programs = nil
	for _, pr := range running.Programs {
		if !needed[pr.Name] {
			first.Programs = append(first.Programs, pr)
		}
	}
	var names []string
	groups := slices.Clone(running.Groups)
	for _, pr := range next.Programs {
		if !needed[pr.Name] {
			continue
		}
		if jobs[pr.Name] != "" {
			pr.Autostart = true // run now, even one run by hand: what depends on it needs it
			names = append(names, pr.ProcessName)
		}
		first.Programs = append(first.Programs, pr)
		// In its group as in next (a job that changed group would run again), and in no
		// other: one it left still lists it in the running plan.
		for k := range groups {
			if groups[k].Name != pr.Group && slices.Contains(groups[k].Programs, pr.Name) {
				groups[k].Programs = slices.DeleteFunc(slices.Clone(groups[k].Programs), func(n string) bool { return n == pr.Name })
			}
		}
		groups = slices.DeleteFunc(groups, func(g plan.Group) bool { return len(g.Programs) == 0 })
		if pr.Group == "" {
			continue
		}
		k := slices.IndexFunc(groups, func(g plan.Group) bool { return g.Name == pr.Group })
		if k < 0 {
			j := slices.IndexFunc(next.Groups, func(g plan.Group) bool { return g.Name == pr.Group })
			if j < 0 {
				continue // a numprocs pool's own group, declared by none
			}
			groups = append(groups, plan.Group{Name: pr.Group, Priority: next.Groups[j].Priority})
			k = len(groups) - 1
		}
		if !slices.Contains(groups[k].Programs, pr.Name) {
			groups[k].Programs = append(slices.Clone(groups[k].Programs), pr.Name)
		}
	}
	first.Groups = groups
	if len(names) == 0 || first.Finish() != nil {
		return nil, nil
	}
	return &first, names
}

// failedJobs lists the processes of the jobs, unchanged by d, that a program d restarts
// depends on, and that are not done: failed (FATAL, or EXITED with another code), or
// stopped with no start on its way (never run, or stopped by hand).
func (s *Supervisor) failedJobs(next *plan.Plan, d plan.Delta) []string {
	return s.dependedJobs(next, d, func(p *proc, sn *snapshot) bool {
		stopped := sn.State == Stopped && p.queued.Load() == 0 && p.pending.Load() == 0
		return sn.State == Fatal || sn.State == Exited && !sn.ready() || stopped
	})
}

// runningJobs are the jobs the programs d restarts depend on that are running now (an
// earlier apply restarted them alone): the apply waits for them first, as for the jobs
// it runs first, so what depends on them keeps running its version meanwhile (it was
// stopped at once, and waited for the job, down).
func (s *Supervisor) runningJobs(next *plan.Plan, d plan.Delta) []string {
	return s.dependedJobs(next, d, func(p *proc, sn *snapshot) bool {
		return sn.State == Starting || sn.State == Backoff
	})
}

// dependedJobs are the jobs, neither added nor changed by d, that a program d changes
// depends on, whose process is as pick says.
func (s *Supervisor) dependedJobs(next *plan.Plan, d plan.Delta, pick func(*proc, *snapshot) bool) []string {
	tab := s.tab.Load()
	moved := movedProcesses(d) // jobsFirst runs those
	var out []string
	for _, c := range d.Changed {
		pr, ok := next.Lookup(c.Name)
		if !ok || pr.IsJob() {
			continue
		}
		for _, dep := range pr.DependsOn {
			for _, job := range next.Programs {
				if job.Name != dep || !job.IsJob() || slices.Contains(out, job.ProcessName) {
					continue
				}
				i, ok := tab.index[job.ProcessName]
				if !ok || moved[job.ProcessName] {
					continue
				}
				if p := tab.procs[i]; pick(p, p.snap.Load()) {
					out = append(out, job.ProcessName)
				}
			}
		}
	}
	return out
}

// movedProcesses are the process names d adds or changes.
func movedProcesses(d plan.Delta) map[string]bool {
	out := make(map[string]bool, len(d.Added)+len(d.Changed))
	for _, n := range d.Added {
		out[n] = true
	}
	for _, c := range d.Changed {
		out[c.Name] = true
	}
	return out
}

// waitJobs waits until each of the named jobs is done (EXITED with one of its exit_codes),
// or one has failed: FATAL, or stopped (by a client, or the shutdown).
func (s *Supervisor) waitJobs(ctx context.Context, names []string) error {
	return s.waitFor(ctx, func() (bool, error) {
		tab := s.tab.Load()
		now := s.clock.Now()
		all := true
		for _, n := range names {
			i, ok := tab.index[n]
			if !ok {
				return true, fmt.Errorf("the job %s: %w", n, ErrNoSuchProcess)
			}
			p := tab.procs[i]
			sn := p.snap.Load()
			const rest = "nothing else applied; what depends on it is left as it was"
			switch {
			case sn.ready():
			case sn.State == Fatal || sn.State == Exited || sn.State == Stopped && p.queued.Load() == 0 && p.pending.Load() == 0:
				return true, fmt.Errorf("%w: the job %s is %s (%s): %s", ErrJobFailed, n, sn.State, describe(n, sn, now), rest)
			case p.blocked.Load():
				// Its dependency will not get ready by itself: no run of it is coming.
				return true, fmt.Errorf("%w: the job %s cannot run: waiting for %s: %s", ErrJobFailed, n, deref(p.waitingFor.Load()), rest)
			default:
				all = false
			}
		}
		if !all && s.closed.Load() {
			return true, ErrShutdown
		}
		return all, nil
	})
}

// apply makes next the running plan (see Apply), jobs and all at once. A process whose
// name is in seed is not started but takes that state (a job put back as it was, done);
// gone holds the last states of the processes stopped and replaced or removed.
func (s *Supervisor) apply(ctx context.Context, next *plan.Plan, seed map[string]procState, asked time.Time) (d plan.Delta, gone map[string]procState, err error) {
	if s.closed.Load() {
		return plan.Delta{}, nil, ErrShutdown // at once: Shutdown holds mu until everything stopped
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return plan.Delta{}, nil, ErrShutdown
	}
	old := s.tab.Load()
	d = plan.Diff(old.plan, next)

	autostart := make(map[string]bool, len(next.Programs))
	for _, pr := range next.Programs {
		autostart[pr.ProcessName] = pr.Autostart
	}
	leaving := map[string]bool{}
	wasActive := map[string]bool{}
	var stop, again []int
	for _, n := range d.Removed {
		leaving[n] = true
		stop = append(stop, old.index[n])
	}
	for _, c := range d.Changed {
		leaving[c.Name] = true
		i := old.index[c.Name]
		// Active, or coming back by itself (a start queued, a restart under way): its
		// successor starts instead. One a stop is taking down stays down: started in its
		// new version, it was stopped at once by that stop, which follows it there.
		sn := old.procs[i].snap.Load()
		wasActive[c.Name] = sn.State.Active() || old.procs[i].resuming(sn)
		stop = append(stop, i)
		// So does one stopped since the apply was asked for (while it ran its jobs first,
		// or waited its turn): the stop is the later word.
		stoppedSince := sn.State == Stopped && !asked.IsZero() && sn.Since.After(asked)
		if wasActive[c.Name] || autostart[c.Name] && sn.State != Stopping && !stoppedSince {
			again = append(again, i)
			if !wasActive[c.Name] {
				d.WasDown = append(d.WasDown, c.Name)
			}
		} else {
			d.NotStarted = append(d.NotStarted, c.Name)
		}
	}
	// A changed process that starts again counts as on its way from its stop until the
	// new batch holds its successor, so its waiting dependents follow it (waitDeps).
	releaseOld := s.markPending(old, again)
	defer releaseOld()
	retire := func(v bool) {
		for _, i := range stop {
			old.procs[i].retired.Store(v)
		}
	}
	// A stop a client asks while the apply's own takes a process down is the later word,
	// as one asked before (stoppedSince): its successor stays stopped. It was spawned only
	// to be stopped 4 ms later, and that stop waited out a second stop_timeout.
	stopsBefore := make(map[int]uint64, len(again))
	for _, i := range again {
		stopsBefore[i] = old.procs[i].stops.Load()
	}
	retire(true)  // before their stop: no start can follow it
	s.broadcast() // their waiting starts give up
	// The removed first, while the changed still run, as supervisord's update: one slow
	// to stop (stop_timeout = "1h") delays the changed ones' restart, not takes them
	// down meanwhile. A changed one that depends on one stopping then goes with it,
	// dependents first as ever.
	first, then := removedFirst(old, stop, len(d.Removed))
	err = ignoreNotRunning(s.stopBatch(ctx, old, first))
	if err == nil && len(then) > 0 {
		err = ignoreNotRunning(s.stopBatch(ctx, old, then))
	}
	if err != nil {
		retire(false) // they stay in the table
		return d, nil, fmt.Errorf("stop: %w", err)
	}
	for _, i := range again {
		if p := old.procs[i]; p.stops.Load() > stopsBefore[i]+1 { // more than the apply's own
			d.NotStarted = append(d.NotStarted, p.name)
		}
	}
	// From here on nothing can fail: every goroutine asked below is idle or nearly so.
	gone = make(map[string]procState, len(stop))
	for _, i := range stop {
		p := old.procs[i]
		if p.call(cmdQuit{}) == nil {
			<-p.done
		}
		gone[p.name] = p.st // its goroutine has ended
	}
	if lc, ok := s.o.Launcher.(LauncherCloser); ok && len(d.Removed) > 0 {
		forget := slices.Clone(d.Removed)
		for _, name := range d.Removed {
			if r := old.procs[old.index[name]].prog.Ready; r != nil && r.Kind == plan.ProbeExec {
				forget = append(forget, ProbeName(name)) // its probe's commands' cgroup
			}
		}
		lc.Forget(forget...)
	}

	tab := &table{plan: next, procs: make([]*proc, len(next.Programs)), index: map[string]int{}}
	var start []int
	for i, pr := range next.Programs {
		tab.index[pr.ProcessName] = i
		if j, ok := old.index[pr.ProcessName]; ok && !leaving[pr.ProcessName] {
			p := old.procs[j]
			p.call(cmdUpdate{prog: pr})
			tab.procs[i] = p
			if pr.Autostart && !old.plan.Programs[j].Autostart && !p.snap.Load().State.Active() {
				start = append(start, i) // autostart turned on: as a restart would have
			}
			continue
		}
		tab.procs[i] = newProc(s, pr)
		if st, ok := seed[pr.ProcessName]; ok {
			tab.procs[i].restore(st)
			continue
		}
		if slices.Contains(d.NotStarted, pr.ProcessName) {
			// Left stopped: it shows when it stopped, as it did, not "Not started".
			if st, ok := gone[pr.ProcessName]; ok && st.State == Stopped {
				tab.procs[i].restore(st)
			}
			continue
		}
		if pr.Autostart || wasActive[pr.ProcessName] {
			start = append(start, i)
		}
	}
	shutting := s.closed.Load()
	if shutting {
		start = nil // a shutdown came meanwhile: nothing starts only to be stopped again
	}
	releaseNew := s.markPending(tab, start) // covers the gap until startBatch marks them
	s.tab.Store(tab)
	s.broadcast() // waiting dependents look their dependencies up again
	if s.sampleEvery(false) > 0 {
		select { // memory_max: the sampler's loop may be waiting for nobody
		case s.samples.kick <- struct{}{}:
		default:
		}
	}

	if shutting {
		releaseNew()
		releaseOld()
		return d, gone, ErrShutdown
	}
	b := s.startBatch(s.ctx, tab, start, true)
	releaseNew()
	releaseOld()
	s.bg.Add(1)
	go func() { defer s.bg.Done(); <-b.done }()
	select {
	case <-b.issued:
	case <-ctx.Done():
		select {
		case <-b.issued: // both were ready: the starts went out, so the apply did
		default:
			return d, gone, fmt.Errorf("start: %w", ctx.Err())
		}
	}
	return d, gone, nil
}

// removedFirst splits stop, whose first nRemoved are the removed processes and the rest
// the changed ones, into the removed plus the changed that depend on one of those (or on
// one of these, and so on), and the other changed ones.
func removedFirst(tab *table, stop []int, nRemoved int) (first, then []int) {
	first = slices.Clone(stop[:nRemoved])
	rest := slices.Clone(stop[nRemoved:])
	for grew := true; grew; {
		grew = false
		for k := 0; k < len(rest); k++ {
			if slices.ContainsFunc(first, func(j int) bool { return tab.dependsOn(rest[k], j) }) {
				first = append(first, rest[k])
				rest = slices.Delete(rest, k, k+1)
				k--
				grew = true
			}
		}
	}
	return first, rest
}

// Start starts the named processes (process names) and waits until each has left
// STARTING: nil for RUNNING, ErrSpawn when it went to BACKOFF, ErrAbnormalTermination when
// it was stopped meanwhile, ErrAlreadyStarted when it was not stopped. Processes start in
// start order, a priority level at a time (spawns, not RUNNING, are awaited between
// levels), and one with depends_on only once its dependencies are ready.
func (s *Supervisor) Start(ctx context.Context, names ...string) error {
	if s.closed.Load() {
		return ErrShutdown
	}
	tab := s.tab.Load()
	idx, errs := resolve(tab, names)
	b := s.startBatch(ctx, tab, idx, false)
	<-b.done
	errs = append(errs, s.startReplaced(ctx, tab, b.errs)...)
	return errors.Join(s.followRestarts(ctx, tab, errs)...)
}

// followRestarts answers a start cut short by someone else's restart (stopped, to start
// again) as that restart's start is answered, as supervisorctl's waiting start follows
// it: it said "abnormal termination" of a process that came back RUNNING. A stop's cut
// stands: nothing starts it again.
func (s *Supervisor) followRestarts(ctx context.Context, tab *table, errs []error) []error {
	for k, e := range errs {
		name, ok := failedWith(e, ErrAbnormalTermination)
		if !ok {
			continue
		}
		i, ok := tab.index[name]
		if !ok {
			continue
		}
		p := tab.procs[i]
		if p.pending.Load() == 0 {
			continue // no start on its way: a stop
		}
		// Until it is up or failed, or nothing more is on its way; a start that waits on
		// for a failed dependency (the daemon's own, after a restart) may wait for good.
		if err := s.waitFor(ctx, func() (bool, error) {
			switch st := p.snap.Load().State; {
			case st == Running || st == Backoff || st == Fatal || p.blocked.Load():
				return true, nil
			default:
				return p.pending.Load() == 0 && st != Starting && st != Stopping, nil
			}
		}); err != nil {
			errs[k] = &ProcessError{Name: name, Err: err}
			continue
		}
		switch sn := p.snap.Load(); sn.State {
		case Running:
			errs[k] = nil
		case Backoff, Fatal:
			errs[k] = &ProcessError{Name: name, Err: fmt.Errorf("%w: %s", ErrSpawn, sn.Err)}
		}
	}
	return errs
}

// startReplaced starts again, in the current table, the processes whose start failed
// with ErrNoSuchProcess because an Apply replaced them meanwhile (tab is the table the
// start began with): the caller asked for the program, and it is still there. It
// returns errs with the new answers in place of those.
func (s *Supervisor) startReplaced(ctx context.Context, tab *table, errs []error) []error {
	replaced := failedProcs(tab, errs, ErrNoSuchProcess)
	// And those an apply's stop cut short to replace them (a restart's start came as
	// the apply's job was done): "abnormal termination" though the apply's start of the
	// new version came a millisecond later.
	for _, p := range failedProcs(tab, errs, ErrAbnormalTermination) {
		if p.retired.Load() {
			replaced = append(replaced, p)
		}
	}
	now, again := s.successors(ctx, tab, replaced)
	if now != tab {
		// Those the apply removed: said so, where a cut-short start said "abnormal
		// termination" of a process nothing killed.
		for _, p := range replaced {
			if _, ok := now.index[p.name]; !ok {
				for k, e := range errs {
					if pe, ok := e.(*ProcessError); ok && pe.Name == p.name {
						errs[k] = &ProcessError{Name: p.name, Err: ErrRemoved}
					}
				}
			}
		}
	}
	if len(again) == 0 || s.closed.Load() {
		return errs
	}
	b := s.startBatch(ctx, now, again, false)
	<-b.done
	// A successor the apply is starting (STARTING) was not started by this call, but it
	// is what the caller asked for: its answer is that start's, when it leaves STARTING
	// ("started" means RUNNING; it said so of one STARTING).
	for k, e := range b.errs {
		if name, ok := failedWith(e, ErrAlreadyStarted); ok {
			if i, ok := now.index[name]; ok {
				c := cmdAwait{reply: make(chan error, 1)}
				err := now.procs[i].call(c)
				if err == nil {
					select {
					case err = <-c.reply:
					case <-ctx.Done():
						err = ctx.Err()
					}
				}
				b.errs[k] = nil
				if err != nil {
					b.errs[k] = &ProcessError{Name: name, Err: err}
				}
			}
		}
	}
	// And again, should another apply replace them meanwhile.
	return append(withoutErrsOf(errs, now, again), s.startReplaced(ctx, now, slices.DeleteFunc(b.errs, func(e error) bool { return e == nil }))...)
}

// stopFollowing stops members of tab; those an Apply replaced meanwhile it follows to
// their successors, and stops those too: the Apply started them again, and the stop came
// last. A successor the Apply left stopped is what the caller asked for.
func (s *Supervisor) stopFollowing(ctx context.Context, tab *table, members []int) []error {
	var errs []error
	for _, pe := range ProcessErrors(s.stopBatch(ctx, tab, members)) {
		errs = append(errs, pe)
	}
	procs := make([]*proc, len(members))
	for k, i := range members {
		procs[k] = tab.procs[i]
	}
	now, again := s.successors(ctx, tab, procs)
	if len(again) == 0 {
		return errs
	}
	var next []error
	for _, e := range s.stopFollowing(ctx, now, again) {
		if !errors.Is(e, ErrNotRunning) {
			next = append(next, e)
		}
	}
	return append(withoutErrsOf(errs, now, again), next...)
}

// successors waits until the Apply replacing some of procs (of tab; those retired) has
// stored its table, or taken their retirement back when it failed, and returns the
// table then current with the indexes in it of the retired ones' names. It returns no
// index when none was retired, or ctx ended first.
func (s *Supervisor) successors(ctx context.Context, tab *table, procs []*proc) (*table, []int) {
	retired := slices.DeleteFunc(slices.Clone(procs), func(p *proc) bool { return !p.retired.Load() })
	if len(retired) == 0 {
		return tab, nil
	}
	err := s.waitFor(ctx, func() (bool, error) {
		return s.tab.Load() != tab || !slices.ContainsFunc(retired, func(p *proc) bool { return p.retired.Load() }), nil
	})
	if err != nil {
		return tab, nil
	}
	now := s.tab.Load()
	var idx []int
	for _, p := range retired {
		if i, ok := now.index[p.name]; ok {
			idx = append(idx, i)
		}
	}
	return now, idx
}

// failedProcs returns the processes of tab that errs say failed with target.
func failedProcs(tab *table, errs []error, target error) []*proc {
	var out []*proc
	for _, e := range errs {
		if name, ok := failedWith(e, target); ok {
			if i, ok := tab.index[name]; ok {
				out = append(out, tab.procs[i])
			}
		}
	}
	return out
}

// withoutErrsOf returns errs but those about the processes members of tab.
func withoutErrsOf(errs []error, tab *table, members []int) []error {
	var out []error
	for _, e := range errs {
		var pe *ProcessError
		if errors.As(e, &pe) && slices.ContainsFunc(members, func(i int) bool { return tab.procs[i].name == pe.Name }) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// failedWith returns the process e is about, when it is a *ProcessError wrapping target.
func failedWith(e, target error) (name string, ok bool) {
	var pe *ProcessError
	if errors.As(e, &pe) && errors.Is(pe.Err, target) {
		return pe.Name, true
	}
	return "", false
}

// Stop stops the named processes and waits for STOPPED: reverse start order, a priority
// level at a time, dependents before their dependencies. A process that is not running
// gives ErrNotRunning.
func (s *Supervisor) Stop(ctx context.Context, names ...string) error {
	tab := s.tab.Load()
	idx, errs := resolve(tab, names)
	return errors.Join(append(errs, s.stopFollowing(ctx, tab, idx)...)...)
}

// Restart stops the named processes (those not running are fine), then starts them.
func (s *Supervisor) Restart(ctx context.Context, names ...string) error {
	if s.closed.Load() {
		return ErrShutdown // at once: its stop would wait for the shutdown's
	}
	tab := s.tab.Load()
	idx, errs := resolve(tab, names)
	idx, errs = keepBlocked(tab, idx, errs)
	release := s.markPending(tab, idx) // dependents waiting for these wait for the restart
	defer release()
	// Not following a process an apply replaced meanwhile into its successor, as a stop
	// does: the apply counted it up (Resuming) and started its new version, which is the
	// restart done; stopping that too spawned it only to stop it 5 ms later, and waited
	// out a second stop_timeout.
	if err := ignoreNotRunning(s.stopBatch(ctx, tab, idx)); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if s.closed.Load() {
		return ErrShutdown
	}
	b := s.startBatch(ctx, tab, idx, false) // those replaced meanwhile: see startReplaced
	// The batch counts its own members as on their way now. Holding the restart's mark
	// until the batch ends would keep a dependent waiting for a dependency that someone
	// else stopped meanwhile, and the batch waits for that dependent: a hang.
	release()
	<-b.done
	errs = append(errs, s.startReplaced(ctx, tab, b.errs)...)
	s.waitOnFor(s.tab.Load(), errs)
	return errors.Join(errs...)
}

// waitOnFor hands the processes whose restart failed on a dependency (one that was on
// its way when the restart began, then failed) to a start of the daemon's own, which
// waits for the dependency like one at boot: the restart took them down, so they come
// back once it is fixed, instead of staying stopped for good.
func (s *Supervisor) waitOnFor(tab *table, errs []error) {
	var again []int
	for _, e := range errs {
		if name, ok := failedWith(e, ErrDependency); ok {
			if i, ok := tab.index[name]; ok && !tab.procs[i].snap.Load().State.Active() {
				again = append(again, i)
			}
		}
	}
	if len(again) == 0 {
		return
	}
	s.startBehind(tab, again)
}

// startBehind starts members of tab as the daemon's own starts (they wait on for their
// dependencies), on goroutines Shutdown waits for; nil when shutting down.
func (s *Supervisor) startBehind(tab *table, members []int) *batch {
	s.closeMu.Lock() // no Add may follow Shutdown's bg.Wait, which follows close
	defer s.closeMu.Unlock()
	if s.closed.Load() {
		return nil
	}
	s.bg.Add(1)
	b := s.startBatch(s.ctx, tab, members, true)
	go func() { defer s.bg.Done(); <-b.done }()
	return b
}

// keepBlocked takes out of members those with a dependency, not restarted with them,
// that will not get ready by itself (FATAL, its probe gave up): their start would fail,
// so a restart must not take them down. Each gets its dependency's error in errs.
func keepBlocked(tab *table, members []int, errs []error) ([]int, []error) {
	var kept []int
	for _, i := range members {
		var failed error
		for _, j := range tab.deps(i) {
			if slices.Contains(members, j) {
				continue
			}
			if _, err := tab.procs[j].asDependency(); err != nil {
				failed = err
				break
			}
		}
		if failed != nil {
			errs = append(errs, &ProcessError{Name: tab.procs[i].name, Err: failed})
			continue
		}
		kept = append(kept, i)
	}
	return kept, errs
}

// close marks the supervisor as shutting down: no start may begin.
func (s *Supervisor) close() {
	s.closeMu.Lock()
	s.closed.Store(true)
	s.closeMu.Unlock()
}

// ShuttingDown reports whether Shutdown has begun: no start, apply or reload may follow.
func (s *Supervisor) ShuttingDown() bool { return s.closed.Load() }

// ReopenLogs makes every process's log writers open their files again by name on
// their next write, as supervisord does on SIGUSR2: after an external logrotate
// renamed a file, the output goes to a new one instead of the renamed one.
func (s *Supervisor) ReopenLogs() {
	for _, p := range s.tab.Load().procs {
		p.call(cmdReopen{}) // ErrNoSuchProcess: removed meanwhile, nothing to reopen
	}
}

// Signal sends sig to each named process (to the process, not its group, as supervisord
// does). Allowed in STARTING, RUNNING and STOPPING; otherwise ErrNotRunning.
func (s *Supervisor) Signal(ctx context.Context, sig syscall.Signal, names ...string) error {
	tab := s.tab.Load()
	idx, errs := resolve(tab, names)
	return errors.Join(append(errs, s.signal(ctx, sig, tab, idx)...)...)
}

// signal signals members of tab; one an Apply replaced meanwhile, its successor instead.
func (s *Supervisor) signal(ctx context.Context, sig syscall.Signal, tab *table, members []int) []error {
	var errs []error
	for _, i := range members {
		p := tab.procs[i]
		c := cmdSignal{sig: sig, reply: make(chan error, 1)}
		err := p.call(c)
		if err == nil {
			err = <-c.reply
		}
		if err != nil {
			errs = append(errs, &ProcessError{Name: p.name, Err: err})
		}
	}
	now, again := s.successors(ctx, tab, failedProcs(tab, errs, ErrNoSuchProcess))
	if len(again) == 0 {
		return errs
	}
	return append(withoutErrsOf(errs, now, again), s.signal(ctx, sig, now, again)...)
}

// Status describes every process, in start order, with CPU and memory figures. It
// reads published snapshots only, so it never waits for a process goroutine. A call
// counts as someone watching: sampling runs for a while after it (see sample.go).
func (s *Supervisor) Status() []Status {
	now := s.clock.Now()
	return s.status(now, s.usage(now))
}

// States is Status without the figures, and without starting to sample: for answers
// that only need states (an action's), which would otherwise cost a sampling round
// right after every start or stop burst.
func (s *Supervisor) States() []Status {
	return s.status(s.clock.Now(), nil)
}

func (s *Supervisor) status(now time.Time, usage map[int]Usage) []Status {
	tab := s.tab.Load()
	out := make([]Status, len(tab.procs))
	for i, p := range tab.procs {
		pr := &tab.plan.Programs[i]
		sn := p.snap.Load()
		group := pr.Group
		if group == "" {
			group = pr.Name
		}
		out[i] = Status{
			Queued: p.queued.Load() > 0, Resuming: p.resuming(sn),
			Name: pr.ProcessName, Group: group, State: sn.State, Ready: sn.ready(), Pid: sn.Pid,
			ExitCode: sn.ExitCode, Since: sn.Since, Started: sn.Started, Description: describe(pr.ProcessName, sn, now),
			Hash: pr.Hash, Restarts: sn.Restarts, SpawnFailed: sn.SpawnFailed,
		}
		if sn.Restarts > 0 && sn.RestartWhy != "" {
			out[i].LastRestart = sn.RestartWhy + ", " + roundS(now.Sub(sn.RestartAt)).String() + " ago"
			out[i].RestartWhy, out[i].RestartAt = sn.RestartWhy, sn.RestartAt
		}
		// A crash loop's, and a failure's on its first try (FATAL, EXITED not done): a
		// health check's reason without the log's text. Not after a start that spawned
		// nothing: the words are an earlier run's.
		failed := sn.State == Fatal || sn.State == Backoff || sn.State == Exited && !sn.Done
		if (sn.Restarts > 0 && sn.RestartWhy != "" || failed) && !sn.SpawnFailed {
			out[i].LastWordsLog, out[i].LastWords, out[i].LastWordsAt = p.logs.lastWords()
		}
		switch {
		case sn.State == Stopping:
			// supervisord leaves it empty; a stop that hangs should say how long it may.
			in := sn.KillAfter - now.Sub(sn.Since)      // as armed: a stop_timeout changed since is for the next stop
			why := cmp.Or(sn.StopWhy, "stop requested") // memory_max's stop: nobody asked
			// Whole seconds that add up to the stop_timeout: rounded apart, a 2 s one said
			// "2s ago; SIGKILL in 1s" as the SIGKILL went.
			// Whole seconds gone, not rounded up: 0.2 s after the stop, "1s ago; SIGKILL in
			// 2s" of a 3 s timeout read as 0.8 s lost.
			ago := now.Sub(sn.Since).Truncate(time.Second)
			when := ago.String() + " ago"
			if ago == 0 {
				when = "just now"
			}
			out[i].Description = fmt.Sprintf("%s %s; SIGKILL in %s", why, when, sn.KillAfter-ago)
			if left := sn.KillAfter - ago; left <= 0 && in > 0 {
				out[i].Description = fmt.Sprintf("%s %s; SIGKILL in under a second", why, when)
			}
			if in <= 0 {
				out[i].Description = fmt.Sprintf("%s %s ago; SIGKILL sent", why, roundS(now.Sub(sn.Since)))
			}
		case sn.Job && sn.State == Starting && sn.Pid > 0:
			// A job stays STARTING until it exits; its dependents wait for that.
			out[i].Description = describe(pr.ProcessName, &snapshot{State: Running, Pid: sn.Pid, Started: sn.Started}, now) +
				"; a job, not done yet"
		case sn.State == Starting && sn.Pid > 0:
			// supervisord leaves it empty; the pid is there, and how long until RUNNING.
			out[i].Description = fmt.Sprintf("pid %d, up %s of start_secs %ds", sn.Pid, now.Sub(sn.Started).Truncate(100*time.Millisecond), pr.StartSecs)
		case sn.Job && sn.State == Exited && sn.ready():
			out[i].Description += "; done"
			if sn.ExitCode != 0 { // one of its exit_codes, not 0: which
				out[i].Description += fmt.Sprintf(" (exit status %d)", sn.ExitCode)
			}
			if note := p.putBack.Load(); note != nil {
				out[i].Description += "; " + *note
			}
		case sn.State == Exited && sn.Done && pr.Ready != nil && pr.Ready.Kind != plan.ProbeExited && !p.resuming(sn):
			// A server that exits 0 is down, whatever its exit_codes say: up --detach and
			// apply --wait said so, and status read it as fine.
			out[i].Description += fmt.Sprintf("; exit status %d, with a ready probe: it stopped by itself", sn.ExitCode)
			out[i].Blocked = fmt.Sprintf("EXITED: exit status %d, with a ready probe: it stopped by itself, so it is not up", sn.ExitCode)
		case sn.State == Exited && !sn.Done:
			// A crash and a clean exit looked alike: the stop time alone.
			if sn.ExitCode < 0 {
				by := "a signal"
				if sn.ExitSignal != 0 {
					by = signalName(sn.ExitSignal)
				}
				out[i].Description += "; terminated by " + by + "; not expected"
			} else {
				out[i].Description += fmt.Sprintf("; exit status %d; not expected", sn.ExitCode)
			}
			if !p.resuming(sn) {
				// Nothing restarts it (autorestart): failing, as FATAL is, for status,
				// apply --wait and up alike (up alone said so).
				if sn.ExitCode < 0 {
					by := "a signal"
					if sn.ExitSignal != 0 {
						by = signalName(sn.ExitSignal)
					}
					out[i].Blocked = "EXITED: terminated by " + by
				} else {
					out[i].Blocked = fmt.Sprintf("EXITED: exit status %d, not one of its exit_codes", sn.ExitCode)
				}
			}
		}
		if sn.Probe && sn.State == Running && !sn.Ready {
			// Why its dependents wait: supervisord has no probes, so its words stop before.
			if sn.ReadyErr != "" {
				out[i].Description += "; not ready: " + sn.ReadyErr
				out[i].Blocked = "not ready: " + sn.ReadyErr
			} else {
				out[i].Description += "; not ready yet"
				if last := p.probeLast.Load(); last != nil {
					out[i].Description += " (last try: " + *last + ")"
				}
			}
		}
		if w := p.waitingFor.Load(); w != nil && !sn.State.Active() {
			out[i].Description += "; waiting for " + *w
			if p.blocked.Load() {
				out[i].Blocked = "not started: waiting for " + *w
			}
		}
		if e := p.checkLogs(now); e != "" {
			out[i].LogError = e
			out[i].Description += "; log: " + e
		}
		if sn.Pid > 0 {
			out[i].Usage = usage[sn.Pid]
		}
	}
	return out
}

// Shutdown stops every process in reverse start order (a priority level at a time, all of
// a level in parallel, dependents first), waits for them, closes the logs and ends every
// goroutine. Automatic restarts and pending starts end first. When ctx ends before every
// process stopped, Shutdown returns the error and leaves the processes supervised (their
// stop timers still escalate to SIGKILL); calling it again resumes. Once it succeeded,
// later calls do nothing.
func (s *Supervisor) Shutdown(ctx context.Context) error {
	// Closed at once, not once an apply under way lets go of mu: it starts nothing more
	// (its new versions were spawned only to be stopped again, each stop waited twice).
	s.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return nil
	}
	s.cancel()
	s.bg.Wait() // pending background starts return on the cancel; none can start a process later
	tab := s.tab.Load()
	all := make([]int, len(tab.procs))
	for i, p := range tab.procs {
		all[i] = i
		p.call(cmdHold{}) // ErrNoSuchProcess: removed meanwhile, nothing to hold
	}
	if err := ignoreNotRunning(s.stopBatch(ctx, tab, all)); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	for _, p := range tab.procs {
		if p.call(cmdQuit{}) == nil {
			<-p.done
		}
	}
	if lc, ok := s.o.Launcher.(LauncherCloser); ok {
		lc.Close() // every exit is in: nothing the launcher kept is in use
	}
	if s.events != nil {
		s.events.close()
	}
	s.recording.Wait() // the state file is final before Shutdown returns
	s.finished = true
	return nil
}

// Kill sends SIGKILL to the process group of every live process at once and returns
// how many it signalled, without waiting for the exits: the daemon's answer to a second
// interrupt during a slow Shutdown. It also holds every process (no automatic restarts),
// so a Shutdown in progress finishes as soon as the exits are reaped. Every process is
// asked before any answer is awaited; ctx bounds the wait for the answers (the count
// then leaves out those still to come, whose kills go on).
func (s *Supervisor) Kill(ctx context.Context) int {
	s.close()
	tab := s.tab.Load()
	sent := make(chan bool, len(tab.procs))
	asked := 0
	for _, p := range tab.procs {
		if p.call(cmdKill{sent: sent}) == nil {
			asked++
		}
	}
	n := 0
	for range asked {
		select {
		case ok := <-sent:
			if ok {
				n++
			}
		case <-ctx.Done():
			return n
		}
	}
	return n
}

// resolve maps process names to table positions in start order; unknown names become
// ErrNoSuchProcess errors.
func resolve(tab *table, names []string) ([]int, []error) {
	var errs []error
	seen := map[int]bool{}
	for _, n := range names {
		i, ok := tab.index[n]
		if !ok {
			errs = append(errs, &ProcessError{Name: n, Err: ErrNoSuchProcess})
			continue
		}
		seen[i] = true
	}
	idx := make([]int, 0, len(seen))
	for i := range tab.procs {
		if seen[i] {
			idx = append(idx, i)
		}
	}
	return idx, errs
}

// ignoreNotRunning drops the ErrNotRunning parts of a joined error.
func ignoreNotRunning(err error) error {
	var keep []error
	for _, pe := range ProcessErrors(err) {
		if !errors.Is(pe, ErrNotRunning) {
			keep = append(keep, pe)
		}
	}
	if err != nil && len(ProcessErrors(err)) == 0 {
		return err
	}
	return errors.Join(keep...)
}

// roundS rounds d to the second for a person ("12s", "1m5s"), up from a fraction.
func roundS(d time.Duration) time.Duration {
	if d < time.Second && d > 0 {
		return time.Second
	}
	return d.Round(time.Second)
}
