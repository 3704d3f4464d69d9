package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/api"
	"github.com/starvisor/starvisor/engine/plan"
)

// namesArg is the NAME... | GROUP:* | all argument of the action verbs.
type namesArg struct {
	Names []string `arg:"" name:"name" help:"NAME, GROUP:*, GROUP:NAME or all."`
}

// Validate refuses an empty name (an unset shell variable: `stop "$SVC"`), which
// selected nothing and was said as ": ERROR (no such process)".
func (n namesArg) Validate() error { return noEmptyName(n.Names) }

func noEmptyName(names []string) error {
	if slices.Contains(names, "") {
		return errors.New("an empty name selects nothing (an unset variable?)")
	}
	return nil
}

// StartCmd starts processes and waits until each is RUNNING or failed.
type StartCmd struct {
	socketFlag `embed:""`
	namesArg   `embed:""`
	waitFlag   `embed:""`
}

// waitFlag is start's and restart's --wait: a deploy step's `restart api && smoke-test`
// needs api to answer, not only to have stayed up start_secs.
type waitFlag struct {
	Wait time.Duration `placeholder:"DURATION" help:"Then wait up to DURATION for the processes started to be RUNNING and ready (their ready probe passed), or done (a job); exit 1 if one is not."`
}

// StopCmd stops processes and waits for STOPPED.
type StopCmd struct {
	socketFlag `embed:""`
	namesArg   `embed:""`
}

// RestartCmd stops then starts processes.
type RestartCmd struct {
	socketFlag `embed:""`
	namesArg   `embed:""`
	waitFlag   `embed:""`
	Rolling    bool `help:"One process at a time, each RUNNING and ready (--wait, default 60s) before the next is stopped: a pool keeps serving (as pm2 reload, though each is stopped before its new run starts)."`
}

// SignalCmd sends a signal to processes.
type SignalCmd struct {
	socketFlag `embed:""`
	Sig        string `arg:"" name:"sig" help:"Signal name (TERM, HUP, USR1, ...) or number."`
	namesArg   `embed:""`
}

func (c *StartCmd) Run(d *Deps) error {
	return runAction(d, &c.socketFlag, "start", "", c.Names, c.Wait)
}

func (c *StopCmd) Run(d *Deps) error {
	return runAction(d, &c.socketFlag, "stop", "", c.Names, 0)
}

func (c *RestartCmd) Run(d *Deps) error {
	if !c.Rolling {
		return runAction(d, &c.socketFlag, "restart", "", c.Names, c.Wait)
	}
	wait := c.Wait
	if wait <= 0 {
		wait = time.Minute
	}
	ctx := context.Background()
	cl, err := c.client(ctx, d)
	if err != nil {
		return err
	}
	st, err := cl.States(ctx, c.Names...)
	if err != nil {
		return clientError("restart", err)
	}
	for _, u := range st.Unknown {
		fmt.Fprintf(d.Stdout, "%s: ERROR (no such process)\n", u)
	}
	if len(st.Unknown) > 0 {
		return reported(ExitFailure)
	}
	// One at a time, in start order: the next goes down only once this one serves.
	for _, ps := range st.Programs {
		if err := runActionWith(ctx, d, cl, "restart", "", []string{ps.Name}, wait); err != nil {
			fmt.Fprintf(d.Stderr, "starvisor: restart --rolling: stopped at %s; the rest keep running\n", namespec(ps))
			return err
		}
	}
	return nil
}

func (c *SignalCmd) Run(d *Deps) error {
	if _, err := engine.ParseSignal(c.Sig); err != nil {
		return usageError(fmt.Errorf("signal: %w", err))
	}
	return runAction(d, &c.socketFlag, "signal", c.Sig, c.Names, 0)
}

// done is what each verb prints for a process it handled: "web: started".
var done = map[string]string{"start": "started", "stop": "stopped", "restart": "started", "signal": "signalled"}

// harmless are the per-process errors that leave the process in the asked state, so they
// are printed but do not fail the command (supervisorctl: start ignores ALREADY_STARTED,
// stop ignores NOT_RUNNING; a restart that finds the process started by a concurrent
// one has what it asked for too).
var harmless = map[string]error{"start": engine.ErrAlreadyStarted, "stop": engine.ErrNotRunning, "restart": engine.ErrAlreadyStarted}

// runAction sends the request, prints one line per process and returns the exit code.
func runAction(d *Deps, sf *socketFlag, verb, sig string, names []string, wait time.Duration) error {
	ctx := context.Background()
	cl, err := sf.client(ctx, d)
	if err != nil {
		return err
	}
	return runActionWith(ctx, d, cl, verb, sig, names, wait)
}

func runActionWith(ctx context.Context, d *Deps, cl *api.Client, verb, sig string, names []string, wait time.Duration) error {
	var r api.ActionResponse
	var err error
	var jobs []string
	if verb == "signal" {
		r, err = cl.Signal(ctx, sig, names)
	} else {
		// A start of a job lasts its run: said as it goes, and bounded by --wait (one
		// that hung held start and restart for good). The daemon goes on with it.
		if verb == "start" || verb == "restart" {
			if p, perr := cl.Plan(ctx); perr == nil {
				for _, spec := range names {
					sel, _ := p.Select(spec)
					for _, n := range sel {
						if pr, ok := p.Lookup(n); ok && pr.IsJob() {
							jobs = append(jobs, n)
						}
					}
				}
			}
		}
		actx, stop := bounded(ctx, wait)
		defer stop()
		telling(actx, d, cl, verb, names, jobs, func() { r, err = cl.Action(actx, verb, names) })
		if err != nil && errors.Is(context.Cause(actx), errWaitedOut) {
			what := jobs
			if len(what) == 0 {
				what = names
			}
			fmt.Fprintf(d.Stderr, "starvisor: %s: still starting after %s (%s): the daemon goes on with it (starvisor status shows how it does)\n", verb, wait, strings.Join(capped(what, 10), ", "))
			return reported(ExitFailure)
		}
	}
	var ae *api.ActionError
	if err != nil && !errors.As(err, &ae) {
		return clientError(verb, err)
	}
	if ae != nil {
		r.Results = ae.Results
	}
	if ae != nil && !slices.ContainsFunc(r.Results, func(res api.Result) bool { return res.Error != "" }) {
		// No process to blame: the whole request failed (the daemon is shutting down),
		// and the others were not handled either.
		return fmt.Errorf("%s: %w", verb, ae)
	}
	failed := false
	var started []string
	var look *readiness // for the failed starts' last log lines
	for _, res := range r.Results {
		name := namespec(api.ProgramStatus{Name: res.Name, Group: res.Group})
		if res.Stopped {
			fmt.Fprintf(d.Stdout, "%s: stopped\n", name) // supervisorctl's restart says both
		}
		if res.Error == "" {
			word := done[verb]
			if slices.Contains(jobs, res.Name) && res.State == "EXITED" {
				word = "done" // its start waited for its run: "started" read as just begun
			}
			fmt.Fprintf(d.Stdout, "%s: %s\n", name, word)
			started = append(started, res.Name)
			continue
		}
		last := ""
		if ok := harmless[verb]; (verb == "start" || verb == "restart") && (ok == nil || res.Error != ok.Error()) {
			if look == nil { // (not for one already started: no run failed)
				look = lookNow(ctx, cl)
				look.since = d.Began
			}
			last = look.lastWords(res.Name)
		}
		fmt.Fprintf(d.Stdout, "%s: ERROR (%s)%s\n", name, res.Error, last)
		if ok := harmless[verb]; ok == nil || res.Error != ok.Error() {
			failed = true
		} else if verb == "start" {
			started = append(started, res.Name) // running, maybe not ready: --wait waits for that too
		}
	}
	if failed {
		return reported(ExitFailure)
	}
	if wait > 0 && (verb == "start" || verb == "restart") {
		p, err := cl.Plan(ctx)
		if err != nil {
			return clientError(verb, err)
		}
		// Of a group or all, the daemon left out what was up already (supervisorctl's
		// way), but --wait means each of them ready: one still STARTING (someone's
		// restart, an apply) is waited for too, as a named one is.
		for _, spec := range names {
			if spec != "all" && !strings.HasSuffix(spec, ":*") && !strings.HasSuffix(spec, ":") {
				continue
			}
			sel, _ := p.Select(spec)
			for _, n := range sel {
				if !slices.Contains(started, n) {
					started = append(started, n)
				}
			}
		}
		order := map[string]int{}
		for i, pr := range p.Programs {
			order[pr.ProcessName] = i
		}
		slices.SortStableFunc(started, func(a, b string) int { return order[a] - order[b] })
		if len(started) > 0 {
			return waitReady(ctx, d, verb, cl, p, started, wait)
		}
	}
	return nil
}

// lookNow is the daemon's plan and states, for lastWords; an empty one when it cannot be
// had.
func lookNow(ctx context.Context, cl *api.Client) *readiness {
	p, err := cl.Plan(ctx)
	if err != nil {
		return newReadiness(&plan.Plan{}, nil)
	}
	st, err := cl.States(ctx)
	if err != nil {
		return newReadiness(&plan.Plan{}, nil)
	}
	return newReadiness(p, st.Programs)
}
