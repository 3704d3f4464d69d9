package app

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/starvisor/starvisor/engine/api"
	"github.com/starvisor/starvisor/engine/plan"
)

// rollout is apply --rolling: the changed processes of numprocs pools go to their new
// version one at a time, each RUNNING and ready before the next is stopped, so a pool
// keeps serving through a deploy (pm2's reload, for a new version). The daemon applies
// a plan per step, each a whole valid plan: the new one with the members not rolled yet
// held at their running version. A client gone midway leaves a pool half rolled, every
// member serving, and `plan --diff` naming the rest.
type rollout struct {
	steps   []*plan.Plan      // steps[k]: the first k members at their new version
	members []string          // pool by pool, in start order
	from    map[string]string // the running plan the steps were made from (its hashes)
}

// planRollout lists the members to roll: those changed of each pool of two or more
// running processes, not jobs (a job pool runs to its end: nothing to keep serving).
// In a pool, those not serving (serving: nil for all) go first: after a half-failed
// deploy, the members still up are the last to go down. nil when there is none.
func planRollout(running, next *plan.Plan, d plan.Delta, serving func(string) bool) (*rollout, error) {
	// A pool going to or from numprocs = 1 renames its processes (web_0… <-> web): all of
	// them removed and added, so down at once, which --rolling promised it would not.
	for _, n := range d.Added {
		pr, _ := next.Lookup(n)
		for _, old := range d.Removed {
			if was, _ := running.Lookup(old); was.Name == pr.Name {
				return nil, fmt.Errorf("apply --rolling: %s goes from numprocs %d to %d, which renames its processes (%s -> %s): the pool would be replaced at once; keep numprocs above 1 across the change, or apply without --rolling", pr.Name, was.Numprocs, pr.Numprocs, old, n)
			}
		}
	}
	// A pool renamed (web -> site) is one removed and one added, whole: down at once too.
	if gone, come := wholePools(running, d.Removed), wholePools(next, d.Added); len(gone) > 0 && len(come) > 0 {
		return nil, fmt.Errorf("apply --rolling: the pool %s is removed and %s added (renamed?): a pool is rolled only where its processes keep their names, this one would be replaced at once; apply without --rolling, or keep its name", gone[0], come[0])
	}
	changed := map[string]bool{}
	for _, c := range d.Changed {
		changed[c.Name] = true
	}
	perPool := map[string][]string{}
	var pools []string
	for _, pr := range next.Programs {
		old, ok := running.Lookup(pr.ProcessName)
		if !changed[pr.ProcessName] || !ok || old.Name != pr.Name || pr.Numprocs < 2 ||
			pr.Ready != nil && pr.Ready.Kind == plan.ProbeExited {
			continue
		}
		if _, seen := perPool[pr.Name]; !seen {
			pools = append(pools, pr.Name)
		}
		perPool[pr.Name] = append(perPool[pr.Name], pr.ProcessName)
	}
	r := &rollout{from: api.Hashes(running)}
	for _, name := range pools {
		members := perPool[name]
		if len(members) < 2 {
			continue
		}
		old, _ := running.Lookup(members[0])
		if pr, _ := next.Lookup(members[0]); old.Group != pr.Group {
			return nil, fmt.Errorf("apply --rolling: %s moves to another group, and a pool is in one group: its processes cannot go one at a time; apply without --rolling", name)
		}
		if serving != nil {
			slices.SortStableFunc(members, func(a, b string) int {
				return cmp.Compare(b2i(serving(a)), b2i(serving(b)))
			})
		}
		r.members = append(r.members, members...)
	}
	if len(r.members) == 0 {
		return nil, nil
	}
	for k := 0; k <= len(r.members); k++ {
		q, err := holdBack(running, next, r.members[k:])
		if err != nil {
			return nil, fmt.Errorf("apply --rolling: the running version of %s cannot stay beside the new plan: %w; apply without --rolling", r.members[min(k, len(r.members)-1)], err)
		}
		r.steps = append(r.steps, q)
	}
	return r, nil
}

// wholePools are the programs of p with numprocs > 1 all of whose processes are among
// names.
func wholePools(p *plan.Plan, names []string) []string {
	count := map[string]int{}
	for _, n := range names {
		if pr, ok := p.Lookup(n); ok && pr.Numprocs > 1 {
			count[pr.Name]++
		}
	}
	var out []string
	for _, pr := range p.Programs {
		if count[pr.Name] == pr.Numprocs && !slices.Contains(out, pr.Name) {
			out = append(out, pr.Name)
		}
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// holdBack is next with the processes held at their running version (their pool's
// numprocs taken from next: it changes in place), validated.
func holdBack(running, next *plan.Plan, held []string) (*plan.Plan, error) {
	q := *next
	q.Programs = slices.Clone(next.Programs)
	for i, pr := range q.Programs {
		if slices.Contains(held, pr.ProcessName) {
			old, _ := running.Lookup(pr.ProcessName)
			old.Numprocs, old.NumprocsStart = pr.Numprocs, pr.NumprocsStart
			q.Programs[i] = old
		}
	}
	if err := q.Finish(); err != nil {
		return nil, err
	}
	return &q, nil
}

// has says whether name was rolled (false for no rollout).
func (r *rollout) has(name string) bool { return r != nil && slices.Contains(r.members, name) }

// say tells what will roll.
func (r *rollout) say(d *Deps) {
	fmt.Fprintf(d.Stdout, "rolling %s one at a time, each ready before the next goes down\n", strings.Join(r.members, ", "))
}

// run rolls the members after the first, which the apply of steps[1] restarted with the
// rest of the difference (rest: what that apply added or changed besides): it waits for
// each to be ready (at most wait) before applying the next step. A member that does not
// get ready is put back to its running version (steps[k-1]) and the roll stops there,
// the pool whole again; the rest stays applied, and what of it failed is said.
func (r *rollout) run(ctx context.Context, d *Deps, cl *api.Client, wait time.Duration, force bool, rest []string) error {
	for k := 1; k <= len(r.members); k++ {
		if k > 1 {
			// Only over the plan of the step before: another apply or a reload in between
			// stops the roll, which would otherwise undo it (and restart the whole pool).
			req := api.ApplyRequest{Plan: r.steps[k], Force: force, Expect: api.Hashes(r.steps[k-1])}
			if _, err := cl.ApplyRequest(ctx, req); err != nil {
				if strings.Contains(err.Error(), api.ErrPlanChanged.Error()) {
					fmt.Fprintf(d.Stderr, "starvisor: apply --rolling: stopped before %s: another apply or a reload changed the plan meanwhile, and it holds (plan --diff shows how this script differs)\n", r.members[k-1])
				} else {
					fmt.Fprintf(d.Stderr, "starvisor: apply --rolling: stopped before %s; %s\n", r.members[k-1], r.versions(k-1))
				}
				return clientError("apply", err)
			}
		}
		m := r.members[k-1]
		if err := waitReady(ctx, d, "apply", cl, r.steps[k], []string{m}, wait); err != nil {
			if _, perr := cl.ApplyRequest(ctx, api.ApplyRequest{Plan: r.steps[k-1], Force: true, Expect: api.Hashes(r.steps[k])}); perr != nil {
				fmt.Fprintf(d.Stderr, "starvisor: apply --rolling: stopped at %s, which could not be put back: %v\n", m, perr)
				return err
			}
			// Said once it serves again, or that it does not (its old release removed since):
			// "put back" alone read as the pool whole.
			if werr := waitReadyAs(ctx, d, "apply", cl, r.steps[k-1], []string{m}, wait, "ready again, put back to its running version", "put back to its running version, which failed too: "); werr != nil {
				fmt.Fprintf(d.Stderr, "starvisor: apply --rolling: stopped at %s, put back to its running version, which does not get ready either: the pool is short of it\n", m)
				return err
			}
			look := lookNow(ctx, cl)
			look.since = d.Began
			for _, n := range rest {
				if why := look.failed(n, map[string]bool{}); why != "" {
					fmt.Fprintf(d.Stdout, "%s: %s%s\n", namespec(look.byName[n]), why, look.lastWords(n))
				}
			}
			fmt.Fprintf(d.Stderr, "starvisor: apply --rolling: stopped at %s, put back to its running version; %s\n", m, r.versions(k-1))
			if len(rest) > 0 {
				fmt.Fprintf(d.Stderr, "starvisor: apply --rolling: the rest of the difference went with %s and stays applied: %s\n", r.members[0], strings.Join(rest, ", "))
			}
			return err
		}
	}
	return nil
}

// versions says which members run which version after the first k were rolled.
func (r *rollout) versions(k int) string {
	run := func(names []string, what string) string {
		verb := " runs "
		if len(names) > 1 {
			verb = " run "
		}
		return strings.Join(names, ", ") + verb + what
	}
	var parts []string
	if k > 0 {
		parts = append(parts, run(r.members[:k], "the new version"))
	}
	if k < len(r.members) {
		parts = append(parts, run(r.members[k:], "the version running before"))
	}
	return strings.Join(parts, ", ") + " (plan --diff shows what is left; apply again once fixed)"
}
