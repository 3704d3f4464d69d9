package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/api"
	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/plan"
)

// ApplyCmd evaluates the script here, asks the daemon what would change, prints it and
// applies it: removed processes stop, added ones start, changed ones restart, the others
// are not touched. A script that fails evaluation or validation changes nothing.
type ApplyCmd struct {
	scriptFlags `embed:""`
	socketOnly  `embed:""`
	DryRun      bool          `name:"dry-run" help:"Show the difference only."`
	Wait        time.Duration `placeholder:"DURATION" help:"Then wait up to DURATION for the processes the apply started (and the autostart ones waiting on them) to be RUNNING and ready, or done (a job); exit 1 if one is not. With nothing to apply: those failing or not up yet."`
	Force       bool          `help:"Apply even when a running program's new version would not start (what check finds: a missing command or folder, an unknown user)."`
	Rolling     bool          `help:"Restart the changed processes of each numprocs pool one at a time, each RUNNING and ready (--wait, default 60s) before the next goes down, so the pool keeps serving; one that does not get ready is put back and the roll stops."`
	JSON        bool          `name:"json" help:"Print, on stdout, one JSON object: the difference planned (as plan --diff --json), what was applied, its counts, and \"changed\" (whether this apply changed anything); the other lines go to stderr."`
}

// applyJSON is apply --json's answer: for configuration management, whose "changed"
// had to be read from the text ("no changes", or the counts), or from a plan --diff made
// before the apply, which a concurrent apply made wrong.
type applyJSON struct {
	Planned   json.RawMessage `json:"planned"`
	Applied   *plan.Delta     `json:"applied"` // null: nothing was applied (dry run, no changes)
	Stopped   int             `json:"stopped"`
	Restarted int             `json:"restarted"`
	Started   int             `json:"started"`
	Changed   bool            `json:"changed"`
	DryRun    bool            `json:"dry_run,omitempty"`
	// Pending: --wait ran out while the daemon still worked on this apply (its jobs,
	// or another's it is queued behind), which it goes on with: applied is not known.
	Pending bool `json:"pending,omitempty"`
}

func (c *ApplyCmd) Run(d *Deps) error {
	ctx := context.Background()
	var answer *applyJSON
	if c.JSON {
		// The lines for people go to stderr; stdout has the JSON alone, whatever happens.
		out, dd := d.Stdout, *d
		dd.Stdout = d.Stderr
		d = &dd
		answer = &applyJSON{DryRun: c.DryRun}
		defer func() {
			if answer.Planned != nil {
				b, _ := json.MarshalIndent(answer, "", "  ")
				fmt.Fprintf(out, "%s\n", b)
			}
		}()
	}
	p, cl, dry, err := showDiff(ctx, d, "apply", &c.scriptFlags, &c.socketOnly, false)
	delta := dry.Delta
	if err != nil {
		return err
	}
	if answer != nil {
		var planned bytes.Buffer
		if err := writeDeltaJSON(&planned, delta, dry.Refused, dry.Notes); err != nil {
			return err
		}
		answer.Planned = bytes.TrimSpace(planned.Bytes())
	}
	if dry.Refused != "" && !c.Force {
		// Before "first the job ...": the daemon would refuse before running it.
		return fmt.Errorf("apply: %s", dry.Refused)
	}
	var roll *rollout
	if c.Rolling && !delta.Empty() {
		running, err := cl.Plan(ctx)
		if err != nil {
			return clientError("apply", err)
		}
		serving := func(string) bool { return true }
		if st, err := cl.States(ctx); err == nil {
			up := map[string]bool{}
			for _, ps := range st.Programs {
				up[ps.Name] = ps.State == "RUNNING" && ps.Ready
			}
			serving = func(n string) bool { return up[n] }
		}
		if roll, err = planRollout(running, p, delta, serving); err != nil {
			return err
		}
		if roll != nil {
			roll.say(d)
		}
	}
	if delta.Empty() && !c.DryRun {
		recordInputs(ctx, d, cl, p)
	}
	if delta.Empty() {
		noteFailed(ctx, d, cl)
		if c.Wait > 0 && !c.DryRun {
			// Nothing to apply, but --wait asks for a deployment that serves: a pipeline's
			// retry of a failed apply went green while its programs stayed FATAL.
			return waitReady(ctx, d, "apply", cl, p, unwell(ctx, cl, p), c.Wait)
		}
	}
	if c.DryRun || delta.Empty() {
		return nil
	}

	jobs := dry.FirstJobs
	sayFirstJobs(d, jobs)
	var before []api.ProgramStatus
	if c.Wait > 0 {
		st, err := cl.States(ctx)
		if err != nil {
			return clientError("apply", err)
		}
		before = st.Programs
	}
	req := api.ApplyRequest{Plan: p, Force: c.Force}
	if roll != nil {
		// The rest of the difference, and each pool's first member, over the plan the
		// steps were made from: another apply since would be undone.
		req.Plan, req.Expect = roll.steps[1], roll.from
	}
	// --wait bounds the jobs run first too: a migration stuck on a lock held the deploy
	// until the CI runner's own timeout. The daemon goes on with the apply.
	// So does another apply's, this one queued behind it (a retried deploy).
	behind := slices.ContainsFunc(dry.Notes, func(n string) bool { return strings.HasPrefix(n, api.RunningFirstNote) })
	actx, stop := ctx, context.CancelFunc(func() {})
	if len(jobs) > 0 || behind {
		actx, stop = bounded(ctx, c.Wait)
	}
	r, err := applyTelling(actx, d, cl, req, jobs)
	stop()
	if err != nil && errors.Is(context.Cause(actx), errWaitedOut) {
		if answer != nil {
			answer.Pending = true
		}
		if behind {
			fmt.Fprintf(d.Stderr, "starvisor: apply: still queued after %s behind another apply running its jobs first: the daemon applies this one after it (starvisor status shows how it does)\n", c.Wait)
			return reported(ExitFailure)
		}
		fmt.Fprintf(d.Stderr, "starvisor: apply: still running the %s after %s, first: the daemon goes on with the apply (starvisor status shows how it does)\n", map[bool]string{true: "job " + strings.Join(jobs, ", "), false: "jobs " + strings.Join(jobs, ", ")}[len(jobs) == 1], c.Wait)
		return reported(ExitFailure)
	}
	if err != nil {
		sayJobsLastWords(d, p, jobs, err)
		return clientError("apply", err) // a job's failure names it, and its state
	}
	if r.StateError != "" {
		fmt.Fprintf(d.Stderr, "starvisor: warning: the daemon cannot record what it runs (%s): should it be killed, the next one finds its processes only by their environment (and, in cgroup mode, their cgroup)\n", r.StateError)
	}
	if len(jobs) > 0 {
		// Done, or the apply would have failed: "migrate: done (exit status 0)". (One the
		// daemon could not run first, it runs with the rest: --wait waits for it.)
		jobs = sayDone(ctx, d, cl, jobs)
	}
	got := r.Delta
	if roll != nil {
		wait := c.Wait
		if wait <= 0 {
			wait = time.Minute
		}
		var rest []string
		for _, n := range append(slices.Clone(got.Added), changedNames(got)...) {
			if !roll.has(n) {
				rest = append(rest, n)
			}
		}
		if err := roll.run(ctx, d, cl, wait, c.Force, rest); err != nil {
			return err
		}
		for _, m := range roll.members[1:] {
			got.Changed = append(got.Changed, plan.Change{Name: m})
		}
		// Held at their running version, they were updated in place (their pool's
		// numprocs) before they were restarted: count them once.
		got.Updated = slices.DeleteFunc(slices.Clone(got.Updated), func(c plan.Change) bool { return roll.has(c.Name) })
	}
	// The added, but those with autostart = False are there, stopped; and the changed
	// that were not running.
	added := 0
	for _, n := range got.Added {
		if pr, ok := p.Lookup(n); ok && pr.Autostart {
			added++
		}
	}
	stopped, restarted, started := len(got.Removed), len(got.Changed)-len(got.NotStarted)-len(got.WasDown), added+len(got.WasDown)
	if answer != nil && !got.Empty() { // made by another apply meanwhile: null, as none
		answer.Applied, answer.Changed = &got, true
		answer.Stopped, answer.Restarted, answer.Started = stopped, restarted, started
	}
	fmt.Fprintf(d.Stdout, "applied: %d stopped, %d restarted, %d started", stopped, restarted, started)
	if n := len(got.Added) - added; n > 0 {
		fmt.Fprintf(d.Stdout, ", %d added stopped (autostart = False)", n)
	}
	if n := len(got.NotStarted); n > 0 {
		fmt.Fprintf(d.Stdout, ", %d changed left stopped", n)
	}
	if len(got.Updated) > 0 {
		fmt.Fprintf(d.Stdout, ", %d updated", len(got.Updated))
	}
	fmt.Fprintln(d.Stdout)
	if got.Empty() && roll == nil {
		// The difference shown was gone when the daemon came to it: done by another
		// apply (or a reload) meanwhile, which "applied: 0 ..." alone left unsaid.
		fmt.Fprintln(d.Stderr, "starvisor: note: another apply (or a reload) made this difference meanwhile: nothing was left to do")
	}
	if c.Wait > 0 {
		// What this apply started, and what the difference shown promised: an apply
		// that found its work done by another (one a dropped client left to finish)
		// starts nothing, and its pipeline must still wait for the new version.
		var wait []string
		for _, n := range append(startedBy(got, p, before), startedBy(delta, p, before)...) {
			if !slices.Contains(wait, n) && !slices.Contains(jobs, n) && !roll.has(n) { // said done or ready above
				wait = append(wait, n)
			}
		}
		return waitReady(ctx, d, "apply", cl, p, wait, c.Wait)
	}
	return nil
}

// sayJobsLastWords prints, when the apply failed on a job it ran first, the last line
// that job's run wrote (stderr's log first): put back, the job shows done again, and its
// output is what the one deploying needs.
func sayJobsLastWords(d *Deps, p *plan.Plan, jobs []string, err error) {
	for _, n := range jobs {
		pr, ok := p.Lookup(n)
		if !ok || !strings.Contains(err.Error(), "the job "+n+" ") {
			continue
		}
		// Only this apply's run wrote it: a job that could not start (a release's missing
		// interpreter) wrote nothing, and the last run's "migrate: OK" read as its words.
		if shown, line, at := lastLogOf(p, pr, 2*time.Minute, time.Time{}); line != "" && !at.Before(d.Began) {
			fmt.Fprintf(d.Stderr, "starvisor: %s: last line of %s: %s\n", n, shown, line)
		}
	}
}

// noteFailed, when an apply changes nothing, names the FATAL processes, which it leaves so
// (as supervisord's update): their code fixed outside the script, `apply` said "no
// changes" to someone who meant "make it run".
func noteFailed(ctx context.Context, d *Deps, cl *api.Client) {
	st, err := cl.States(ctx)
	if err != nil {
		return
	}
	var fatal []string
	for _, ps := range st.Programs {
		if ps.State == "FATAL" {
			fatal = append(fatal, namespec(ps))
		}
	}
	if len(fatal) > 0 {
		fmt.Fprintf(d.Stderr, "starvisor: note: %s %s FATAL, and apply restarts only what the script changes: starvisor start %s\n",
			strings.Join(fatal, ", "), map[bool]string{true: "is", false: "are"}[len(fatal) == 1], strings.Join(fatal, " "))
	}
}

// unwell are the processes that are failing or not yet up: FATAL, BACKOFF, STARTING,
// RUNNING but not ready, or blocked. Stopped ones (by hand, or done) are as asked.
func unwell(ctx context.Context, cl *api.Client, p *plan.Plan) []string {
	st, err := cl.States(ctx)
	if err != nil {
		return nil
	}
	look := newReadiness(p, st.Programs)
	var out []string
	for _, ps := range st.Programs {
		switch {
		case ps.State == "FATAL" || ps.State == "BACKOFF" || ps.State == "STARTING" && !ps.Ready,
			ps.State == "RUNNING" && !ps.Ready, ps.Blocked != "",
			ps.State == "EXITED" && !look.done(ps.Name): // a server with a probe that exited 0
			out = append(out, ps.Name)
		}
	}
	return out
}

// sayFirstJobs says which jobs the daemon runs first (its dry run's answer), on their
// own, while what depends on them stays as it is (running its current version, or
// stopped).
func sayFirstJobs(d *Deps, names []string) {
	if len(names) > 0 {
		fmt.Fprintf(d.Stdout, "first the %s %s, while what depends on %s stays as it is\n",
			map[bool]string{true: "job", false: "jobs"}[len(names) == 1], strings.Join(names, ", "),
			map[bool]string{true: "it", false: "them"}[len(names) == 1])
	}
}

// sayDone prints "name: done (exit status N)" for each of jobs done, and returns those.
func sayDone(ctx context.Context, d *Deps, cl *api.Client, jobs []string) []string {
	look := lookNow(ctx, cl)
	var done []string
	for _, n := range jobs {
		if look.done(n) {
			fmt.Fprintf(d.Stdout, "%s: done (exit status %d)\n", namespec(look.byName[n]), look.byName[n].ExitCode)
			done = append(done, n)
		}
	}
	return done
}

// applyTelling applies p and, while the apply waits for processes to stop (one slow to
// stop holds up the restarts after it), says which, every few seconds, on stderr, as
// supervisord logs "waiting for x to stop".
func applyTelling(ctx context.Context, d *Deps, cl *api.Client, req api.ApplyRequest, jobs []string) (r api.ApplyResponse, err error) {
	telling(ctx, d, cl, "apply", nil, jobs, func() { r, err = cl.ApplyRequest(ctx, req) })
	return r, err
}

// errWaitedOut: --wait ran out while the daemon still worked on what was asked (a job
// that hangs on a lock), which it goes on with.
var errWaitedOut = errors.New("waited out")

// bounded is ctx ending after wait (none when wait is 0), with errWaitedOut as its cause.
func bounded(ctx context.Context, wait time.Duration) (context.Context, context.CancelFunc) {
	if wait <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, wait, errWaitedOut)
}

// telling runs call and, while it waits for processes to stop, says which every few
// seconds on stderr, with what their stop is at ("SIGKILL in 6s"), and the jobs of jobs
// still running: a stop of a program that ignores its stop signal waited stop_timeout
// in silence. specs: the processes to watch ("all" when none).
func telling(ctx context.Context, d *Deps, cl *api.Client, verb string, specs, jobs []string, call func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		call()
	}()
	tick := time.NewTicker(applyTellEvery)
	defer tick.Stop()
	said := map[string]string{} // a job's state, said again once it changes
	saidAt := map[string]time.Time{}
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		// A look that waits no longer than a tick: one at a hung daemon would hold the
		// command past the call's own deadline.
		lctx, cancel := context.WithTimeout(ctx, applyTellEvery)
		st, err := cl.States(lctx, specs...)
		cancel()
		if err != nil {
			continue
		}
		for _, ps := range st.Programs {
			switch {
			case ps.State == "STOPPING":
				fmt.Fprintf(d.Stderr, "starvisor: %s: waiting for %s to stop (%s)\n", verb, namespec(ps), ps.Description)
			case slices.Contains(jobs, ps.Name) && (ps.State == "STARTING" || ps.State == "BACKOFF"):
				// When its state changes, else every 15 s, as up says what it waits for:
				// its uptime alone made a line every 2 s of a ten-minute job.
				if said[ps.Name] != ps.State || time.Since(saidAt[ps.Name]) >= 15*time.Second {
					said[ps.Name], saidAt[ps.Name] = ps.State, time.Now()
					fmt.Fprintf(d.Stderr, "starvisor: %s: waiting for the job %s (%s: %s)\n", verb, ps.Name, ps.State, ps.Description)
				}
			}
		}
	}
}

// applyTellEvery is how often applyTelling says what an apply still waits for.
var applyTellEvery = 2 * time.Second

// startedBy lists the processes an apply starts: the added ones that autostart, the
// changed ones that autostart or were active, and the updated ones whose autostart was
// turned on while they were not active (see engine.Supervisor.Apply).
func startedBy(d plan.Delta, p *plan.Plan, before []api.ProgramStatus) []string {
	active := map[string]bool{}
	for _, st := range before {
		s, err := engine.ParseState(st.State)
		active[st.Name] = err == nil && s.Active()
	}
	var out []string
	for _, n := range d.Added {
		if pr, ok := p.Lookup(n); ok && pr.Autostart {
			out = append(out, n)
		}
	}
	for _, c := range d.Changed {
		if pr, ok := p.Lookup(c.Name); ok && (pr.Autostart || active[c.Name]) {
			out = append(out, c.Name)
		}
	}
	for _, c := range d.Updated {
		pr, ok := p.Lookup(c.Name)
		switch {
		case !ok:
		case pr.Autostart && !active[c.Name] && slices.Contains(c.Fields, "autostart"):
			out = append(out, c.Name)
		case active[c.Name] && slices.Contains(c.Fields, "ready"):
			out = append(out, c.Name) // judged by its new probe
		}
	}
	// Of the dependents, those waiting to start (for a dependency the apply may fix): not
	// one someone stopped (starvisor stop), which the apply leaves so (a deploy failed on
	// "api: STOPPED: nothing will start it", a stop made on purpose), nor one running
	// untouched ("worker: ready" stood beside its dependency's FATAL).
	left := map[string]bool{}
	for _, st := range before {
		left[st.Name] = !st.Resuming && !strings.HasPrefix(st.Blocked, "not started: waiting for")
	}
	return withDependents(p, out, left)
}

// withDependents adds to names the autostart processes that depend on them, directly or
// not, but those of left: a dependency fixed by an apply lets its waiting dependents
// start, and a pipeline waiting for the apply wants them up too (those running already
// count at once).
func withDependents(p *plan.Plan, names []string, left map[string]bool) []string {
	in := map[string]bool{}
	for _, n := range names {
		in[n] = true
	}
	for grew := true; grew; {
		grew = false
		for _, pr := range p.Programs {
			if in[pr.ProcessName] || !pr.Autostart || left[pr.ProcessName] {
				continue
			}
			for _, dep := range pr.DependsOn {
				if slices.ContainsFunc(depProcesses(p, dep), func(n string) bool { return in[n] }) {
					in[pr.ProcessName], grew = true, true
					names = append(names, pr.ProcessName)
					break
				}
			}
		}
	}
	return names
}

// waitReady polls the daemon until each named process is RUNNING and ready, done (a job,
// or any program, EXITED with one of its exit_codes), or has failed: FATAL, EXITED with
// another code, or waiting for a dependency that failed. One line per process; an error
// (exit 1) unless all are ready or done before the timeout.
func waitReady(ctx context.Context, d *Deps, verb string, cl *api.Client, p *plan.Plan, names []string, timeout time.Duration) error {
	return waitReadyAs(ctx, d, verb, cl, p, names, timeout, "ready", "")
}

// waitReadyAs is waitReady saying ready as readyWord, and starting other outcomes with
// what: a member a rolling apply put back is "ready again" on its old version, which
// plain "ready" read as the new one's success, and its failure the same line twice.
func waitReadyAs(ctx context.Context, d *Deps, verb string, cl *api.Client, p *plan.Plan, names []string, timeout time.Duration, readyWord, what string) error {
	deadline := time.Now().Add(timeout)
	// Only what the wait reads (the names and what they depend on): a rolling apply of a
	// pool of 20 in a bundle of 500 fetched all 500 at every look (4.7 s of the daemon's
	// CPU for the roll).
	specs := withDependencies(p, names)
	if len(specs) > 64 {
		specs = nil // a query that long costs more than the answer it saves
	}
	pause := pollEvery
	for looked := false; ; looked = true {
		st, err := cl.States(ctx, specs...)
		switch {
		case err != nil && looked && errors.Is(err, api.ErrUnreachable):
			// One line, not each process's "STOPPED: nothing will start it".
			return &exitError{code: ExitFailure, err: fmt.Errorf("%s: the daemon exited while waiting (a shutdown?)", verb)}
		case err != nil:
			return clientError(verb, err)
		case st.ShuttingDown:
			return &exitError{code: ExitFailure, err: fmt.Errorf("%s: the daemon is shutting down (a shutdown came while waiting)", verb)}
		}
		look := newReadiness(p, st.Programs)
		look.since = d.Began
		lines, pending, bad := make([]string, len(names)), false, false
		failing := make([]bool, len(names)) // said on stderr, as up --detach says them
		for i, n := range names {
			ps := look.byName[n]
			shown := n
			if ps.Name != "" {
				shown = namespec(ps) // as status and the action lines name it
			}
			switch why := look.failed(n, map[string]bool{}); {
			case look.done(n):
				lines[i] = fmt.Sprintf("%s: done (exit status %d)", shown, ps.ExitCode)
			case ps.Ready:
				lines[i] = shown + ": " + readyWord
			case why != "":
				lines[i], bad, failing[i] = shown+": "+what+why+look.lastWords(n), true, true
			default:
				lines[i], pending, failing[i] = fmt.Sprintf("%s: %s%s after %s", shown, what, look.pending(n), timeout), true, true
			}
		}
		if !pending || time.Now().After(deadline) {
			// What failed goes to stderr, as up --detach says it: a CI step showing stderr
			// as the error showed the apply's notes there, and the FATAL among the report.
			for i, l := range lines {
				if failing[i] {
					fmt.Fprintln(d.Stderr, "starvisor: "+l) // worded as up --detach words it
				} else {
					fmt.Fprintln(d.Stdout, l)
				}
			}
			if pending || bad {
				return reported(ExitFailure)
			}
			return nil
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond) // each look is a status round in the daemon
	}
}

// withDependencies is names with the processes they depend on, and those depend on, as
// readiness.failed follows them.
func withDependencies(p *plan.Plan, names []string) []string {
	out := slices.Clone(names)
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	for i := 0; i < len(out); i++ {
		pr, ok := p.Lookup(out[i])
		if !ok {
			continue
		}
		for _, dep := range pr.DependsOn {
			for _, dn := range depProcesses(p, dep) {
				if !seen[dn] {
					seen[dn] = true
					out = append(out, dn)
				}
			}
		}
	}
	return out
}

// readiness is one look at the daemon's processes, for waitReady.
type readiness struct {
	p      *plan.Plan
	byName map[string]api.ProgramStatus
	// since: lastWords quotes only a log written since (zero: any). The command's start:
	// a failed run that wrote nothing was quoted its healthy predecessor's "Serving HTTP
	// on ...", which read as the server started.
	since time.Time
}

// newReadiness is the look at programs, of plan p.
func newReadiness(p *plan.Plan, programs []api.ProgramStatus) *readiness {
	r := &readiness{p: p, byName: make(map[string]api.ProgramStatus, len(programs))}
	for _, ps := range programs {
		r.byName[ps.Name] = ps
	}
	return r
}

// done says whether name has EXITED with one of its exit_codes: a job that completed
// (a migration), which a pipeline waiting for it counts as a success. Not a program
// with a ready probe of another kind: a server that exits 0 is down, and a deploy whose
// server exited before it listened went green ("api: done (exit status 0)").
func (r readiness) done(name string) bool {
	ps := r.byName[name]
	if ps.State != "EXITED" {
		return false
	}
	pr, ok := r.p.Lookup(name)
	return ok && (pr.Ready == nil || pr.IsJob()) && ps.ExitCode >= 0 && slices.Contains(pr.ExitCodes, ps.ExitCode)
}

// pending says what name is still waiting for, for the line after a timeout.
func (r readiness) pending(name string) string {
	ps := r.byName[name]
	pr, _ := r.p.Lookup(name)
	switch {
	case ps.State == "RUNNING" && !ps.Ready:
		return "RUNNING but not ready yet"
	case ps.State == "STARTING" && pr.IsJob():
		return "a job, not done yet"
	case ps.State == "BACKOFF" && ps.Description != "":
		return "still BACKOFF (" + ps.Description + ")"
	case ps.State == "STOPPED" && strings.Contains(ps.Description, "waiting for"):
		return "not started (" + ps.Description + ")"
	}
	return "still " + ps.State
}

// lastWords is, for a process that failed by itself (FATAL, BACKOFF, or EXITED with a
// code not its own), the last line of its log, stderr's first (a traceback ends there), as
// " (last line of log/web.err.log: ...)": where the failure is said, what a person
// looks for first. "" when there is none.
func (r readiness) lastWords(name string) string {
	// A file clock runs a tick (~4 ms) behind: a line written just after since may show
	// a time just before it.
	if shown, line, at := r.lastLogLine(name, 2*time.Minute, time.Time{}); line != "" && !at.Before(r.since.Add(-5*time.Millisecond)) {
		return fmt.Sprintf(" (last line of %s: %s)", shown, line)
	}
	return ""
}

// lastLogLine is, for a process that failed by itself, its log's last line (stderr's
// first), the log's path as shown (relative to the bundle) and when it was written; ""
// when there is none, or none written within fresh (0: any age), or a log was written
// after before (when not zero: a restarted run wrote there since).
// Not for a process whose last start spawned nothing: its log holds an earlier run's
// lines (a traceback since fixed, a healthy start), which read as this failure's cause.
func (r readiness) lastLogLine(name string, fresh time.Duration, before time.Time) (shown, line string, at time.Time) {
	ps := r.byName[name]
	pr, ok := r.p.Lookup(name)
	if !ok || ps.SpawnFailed || ps.State != "FATAL" && ps.State != "BACKOFF" && (ps.State != "EXITED" || r.done(name)) && ps.Restarts == 0 {
		return "", "", time.Time{}
	}
	return lastLogOf(r.p, pr, fresh, before)
}

// shownIn is path as a hint shows it: relative to p's root when under it.
func shownIn(p *plan.Plan, path string) string {
	if p != nil {
		if rel, err := filepath.Rel(p.Root, path); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return path
}

// shownPath is path as a hint shows it (see shownIn).
func (r readiness) shownPath(path string) string { return shownIn(r.p, path) }

// lastLogOf is the last line of pr's logs (stderr's first), the log's path as shown
// (relative to p's root), and when it was written; "" when there is none, or none
// written within fresh (0: any age), or the log it would come from was written after
// before (when not zero).
func lastLogOf(p *plan.Plan, pr plan.Program, fresh time.Duration, before time.Time) (shown, line string, at time.Time) {
	for _, l := range []*plan.Log{pr.Stderr, pr.Stdout} {
		if l == nil {
			continue
		}
		if line, at := lastLine(l.Path, fresh); line != "" {
			if !before.IsZero() && at.After(before) {
				return "", "", time.Time{}
			}
			return shownIn(p, l.Path), line, at
		}
	}
	return "", "", time.Time{}
}

// lastLine is the last line of text in the log file at path, cut to 200 bytes, and when
// the file was written; "" when there is none, it was not written within fresh (0: any
// age), or it cannot be read (a FIFO, a planted symlink).
func lastLine(path string, fresh time.Duration) (string, time.Time) {
	f, err := logs.OpenRead(path)
	if err != nil {
		return "", time.Time{}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || fresh > 0 && time.Since(st.ModTime()) > fresh {
		return "", time.Time{} // not written by the run that just failed: an earlier run's words
	}
	off := max(st.Size()-4096, 0)
	b := make([]byte, st.Size()-off)
	n, _ := f.ReadAt(b, off)
	lines := strings.Split(strings.TrimRight(string(b[:n]), "\r\n \t"), "\n")
	line := strings.TrimSpace(lines[len(lines)-1])
	if len(line) > 200 {
		line = line[:200] + "..."
	}
	return printable(line), st.ModTime()
}

// printable writes the control characters of a program's line as \xNN: quoted to the
// terminal of whoever runs starvisor (root), its escape sequences rewrote the line,
// erased starvisor's words before it, or set the window's title.
func printable(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r):
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// recordInputs has the daemon take p, which restarts nothing, when it read other
// host.env values (or files, or libraries) than the running plan: a reload evaluates
// with the values of the last plan applied, and an apply that changed no process left
// the ones before it (LIVE moved from the environment into the script, then a SIGHUP
// reload switched back to the old LIVE). Expect: another apply meanwhile is the later word.
func recordInputs(ctx context.Context, d *Deps, cl *api.Client, p *plan.Plan) {
	running, err := cl.Plan(ctx)
	if err != nil || running == nil || sameInputs(running.Inputs, p.Inputs) {
		return
	}
	r, err := cl.ApplyRequest(ctx, api.ApplyRequest{Plan: p, Expect: api.Hashes(running)})
	switch {
	case errors.Is(err, api.ErrPlanChanged):
	case err != nil:
		fmt.Fprintf(d.Stderr, "starvisor: warning: the daemon did not record this script's host.env values: %v\n", err)
	case r.StateError != "":
		fmt.Fprintf(d.Stderr, "starvisor: warning: the daemon cannot record what it runs (%s)\n", r.StateError)
	}
}

// sameInputs: a and b read the same files, variables and libraries (none and empty alike).
func sameInputs(a, b plan.Inputs) bool {
	return maps.Equal(a.Files, b.Files) && maps.Equal(a.Env, b.Env) &&
		slices.Equal(a.Unset, b.Unset) && maps.Equal(a.Libs, b.Libs)
}

// stoppedByHand starts failed's word for a process STOPPED that nothing will start: a
// stop someone asked for.
const stoppedByHand = "STOPPED: nothing will start it"

// failed says why name will not get ready by itself: FATAL, EXITED with a code not in
// its exit_codes, its probe gave up, or STOPPED behind a dependency that failed; ""
// while it still may (or is done).
func (r readiness) failed(name string, seen map[string]bool) string {
	ps, ok := r.byName[name]
	switch {
	case !ok:
		return "no such process any more (an apply removed it?)"
	case ps.Blocked != "":
		return ps.Blocked
	case ps.State == "FATAL":
		return ps.State + ": " + ps.Description
	case ps.State == "EXITED" && !r.done(name):
		if ps.ExitCode < 0 {
			return "EXITED: killed by a signal"
		}
		if pr, ok := r.p.Lookup(name); ok && slices.Contains(pr.ExitCodes, ps.ExitCode) {
			return fmt.Sprintf("EXITED: exit status %d, with a ready probe (%s): it stopped by itself, so it is not up", ps.ExitCode, readyCell(pr.Ready))
		}
		return fmt.Sprintf("EXITED: exit status %d, not one of its exit_codes", ps.ExitCode)
	case ps.State != "STOPPED" || seen[name]:
		return ""
	case !ps.Resuming:
		return stoppedByHand + " (stopped meanwhile?)"
	}
	seen[name] = true
	pr, _ := r.p.Lookup(name)
	for _, dep := range pr.DependsOn {
		for _, dn := range depProcesses(r.p, dep) {
			if why := r.failed(dn, seen); why != "" {
				// In the daemon's words (Blocked), which it may not have set yet: the
				// dependency's own line says why.
				word := r.byName[dn].State
				if word == "RUNNING" {
					word = "not ready" // as the daemon words it: its probe gave up
				}
				return "not started: waiting for " + dn + " (" + word + ")"
			}
		}
	}
	return ""
}

// depProcesses lists the processes of the program a depends_on entry names.
func depProcesses(p *plan.Plan, program string) []string {
	var out []string
	for _, pr := range p.Programs {
		if pr.Name == program {
			out = append(out, pr.ProcessName)
		}
	}
	return out
}

// sayStartProblems says what check would say of the programs that start anew: a missing
// interpreter or folder shows before the apply (plan --diff too), not only as BACKOFF
// later. One line per problem, naming the programs that have it: a release's missing
// folder was said once per program (16 lines for one typo).
func sayStartProblems(d *Deps, p *plan.Plan, delta plan.Delta) {
	seen := map[string]bool{} // one look per program, not per process
	var problems []string
	who := map[string][]string{}
	for _, n := range append(slices.Clone(delta.Added), changedNames(delta)...) {
		if pr, ok := p.Lookup(n); ok && !seen[pr.Name] {
			seen[pr.Name] = true
			for _, msg := range programProblems(pr, p.Root, d.LookupEnv) {
				if who[msg] == nil {
					problems = append(problems, msg)
				}
				who[msg] = append(who[msg], pr.Name)
			}
		}
	}
	for _, msg := range problems {
		fmt.Fprintf(d.Stderr, "starvisor: warning: %s: %s\n", strings.Join(who[msg], ", "), msg)
	}
}

// showDiff evaluates the script, asks the daemon what applying it would change, and prints
// that; it changes nothing.
func showDiff(ctx context.Context, d *Deps, verb string, sf *scriptFlags, sock *socketOnly, asJSON bool) (*plan.Plan, *api.Client, api.ApplyResponse, error) {
	p, cl, err := evalForDaemon(ctx, d, sf, sock)
	if err != nil {
		return nil, nil, api.ApplyResponse{}, err
	}
	if p, err = asTheDaemonSpellsIt(ctx, d, verb, sf, cl, p); err != nil {
		return nil, nil, api.ApplyResponse{}, err
	}
	r, err := cl.Apply(ctx, p, true)
	if err != nil {
		return nil, nil, api.ApplyResponse{}, clientError(verb, err)
	}
	if asJSON {
		if err := writeDeltaJSON(d.Stdout, r.Delta, r.Refused, r.Notes); err != nil {
			return nil, nil, api.ApplyResponse{}, err
		}
	} else {
		writeDelta(d.Stdout, r.Delta)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(d.Stderr, "starvisor: note: %s\n", n)
	}
	sayStartProblems(d, p, r.Delta)
	if r.Refused != "" && verb == "plan" {
		fmt.Fprintf(d.Stderr, "starvisor: warning: apply would refuse: %s\n", r.Refused)
	}
	return p, cl, r, nil
}

// asTheDaemonSpellsIt evaluates the script again through the root the running daemon's
// plan names, when p's is the same folder by another path (a symlink: /srv/app and
// /srv/releases/app; cd -P): every path here() makes differs by spelling alone, and an
// apply restarted every program, alternately from each spelling.
func asTheDaemonSpellsIt(ctx context.Context, d *Deps, verb string, sf *scriptFlags, cl *api.Client, p *plan.Plan) (*plan.Plan, error) {
	running, err := cl.Plan(ctx)
	if errors.Is(err, api.ErrUnreachable) {
		return nil, clientError(verb, err) // a hung daemon: said now, not after another wait
	}
	if err != nil || running == nil || running.Root == p.Root || running.Entry != p.Entry {
		return p, nil
	}
	a, err1 := os.Stat(running.Root)
	b, err2 := os.Stat(p.Root)
	if err1 != nil || err2 != nil || !os.SameFile(a, b) {
		return p, nil // another folder: the daemon judges (another bundle, or a move)
	}
	again := *sf
	again.File = filepath.Join(running.Root, running.Entry)
	return again.eval(ctx, d)
}

// evalForDaemon evaluates the script (printing its error, if any) and finds the daemon:
// --socket, STARVISOR_SOCKET, else the socket the script itself names.
func evalForDaemon(ctx context.Context, d *Deps, sf *scriptFlags, sock *socketOnly) (*plan.Plan, *api.Client, error) {
	p, err := sf.eval(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	if err := declaresPrograms(p); err != nil {
		return nil, nil, err
	}
	if sock.Socket == "" {
		if s, ok := d.LookupEnv("STARVISOR_SOCKET"); !ok || s == "" {
			cl := expecting(api.NewClient(daemonSocket(p)), scriptOwner(p))
			tellStarting(d, cl)
			return p, cl, nil
		}
	}
	cl, err := sock.client(ctx, d, sf.File, sf.Lib)
	return p, cl, err
}

// declaresPrograms refuses a plan of no program for a running daemon: valid, but far
// more often a script caught mid-write (cp, an editor, config management: empty, or cut
// after its first comment) by a reload or an apply, which would stop every program.
func declaresPrograms(p *plan.Plan) error {
	if len(p.Programs) > 0 {
		return nil
	}
	return fmt.Errorf("%s declares no program (caught while being written?): nothing applied; to stop everything, starvisor shutdown", filepath.Join(p.Root, p.Entry))
}

// writeDeltaJSON prints the difference as JSON (plan --diff --json), every list present.
func writeDeltaJSON(w io.Writer, d plan.Delta, refused string, notes []string) error {
	for _, l := range []*[]string{&d.Added, &d.Removed, &d.Unchanged} {
		if *l == nil {
			*l = []string{}
		}
	}
	for _, l := range []*[]plan.Change{&d.Changed, &d.Updated} {
		if *l == nil {
			*l = []plan.Change{}
		}
	}
	// Why apply would refuse it, in the JSON too: a review bot read "1 changed" of an
	// apply that changes nothing; and the notes (the jobs run first, the programs stopped
	// by hand it starts), which were on stderr only.
	b, err := json.MarshalIndent(struct {
		plan.Delta
		Refused string   `json:"refused,omitempty"`
		Notes   []string `json:"notes,omitempty"`
	}{d, refused, notes}, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// writeDelta prints what apply does: a summary, then deltaLines.
func writeDelta(w io.Writer, d plan.Delta) {
	if d.Empty() {
		fmt.Fprintf(w, "no changes (%d unchanged)\n", len(d.Unchanged))
		return
	}
	upd := ""
	if len(d.Updated) > 0 {
		// Counted among the unchanged (no restart), said apart as the result counts them.
		upd = fmt.Sprintf(" (%d of them updated without a restart)", len(d.Updated))
	}
	fmt.Fprintf(w, "%d added, %d changed, %d removed, %d unchanged%s\n",
		len(d.Added), len(d.Changed), len(d.Removed), len(d.Unchanged), upd)
	for _, l := range deltaLines(d) {
		fmt.Fprintln(w, l)
	}
}

// deltaLines has one line per process the delta touches: "+" added, "~" changed (with
// the JSON fields that differ), "-" removed, "=" updated without a restart.
func deltaLines(d plan.Delta) []string {
	var out []string
	for _, n := range d.Added {
		out = append(out, "  + "+n)
	}
	out = append(out, changeLines("  ~ ", "", d.Changed)...)
	for _, n := range d.Removed {
		out = append(out, "  - "+n)
	}
	return append(out, changeLines("  = ", " (no restart)", d.Updated)...)
}

// changeLines writes one line per kind of change, naming the processes it touches: a
// pool of eight changed alike was eight identical lines.
func changeLines(mark, note string, changes []plan.Change) []string {
	var whats []string
	who := map[string][]string{}
	for _, c := range changes {
		fields := slices.Clone(c.Fields)
		if i := slices.Index(fields, "env"); i >= 0 && len(c.Env) > 0 {
			names := make([]string, len(c.Env))
			for j, k := range c.Env {
				names[j] = plan.ShowEnvName(k) // a plan from before the check may hold "A\nB"
			}
			fields[i] = "env (" + strings.Join(names, ", ") + ")" // which, not their values
		}
		what := strings.Join(fields, ", ")
		if who[what] == nil {
			whats = append(whats, what)
		}
		who[what] = append(who[what], c.Name)
	}
	out := make([]string, len(whats))
	for i, what := range whats {
		out[i] = mark + nameList(who[what]) + ": " + what + note
	}
	return out
}

// nameList writes names for one diff line, the middle of a long list elided.
func nameList(names []string) string {
	if len(names) <= 6 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, %s, %s … %s (%d processes)", names[0], names[1], names[2], names[len(names)-1], len(names))
}

func changedNames(d plan.Delta) []string {
	out := make([]string, len(d.Changed))
	for i, c := range d.Changed {
		out[i] = c.Name
	}
	return out
}
