package api

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/plan"
)

// AfterJobs is, for a dry run, what the apply would refuse once its jobs ran first unless
// they made what is missing: the programs that depend on a job it runs first and cannot
// start as things are. "" when none. (The apply runs the job, a migration, and refuses
// then: a dry run in review said nothing of it.)
func AfterJobs(states []engine.Status, next *plan.Plan, d plan.Delta, check func(plan.Program) []string) string {
	if check == nil {
		return ""
	}
	jobs := d.JobsFirst(next)
	var names []string
	afterJob := func(pr plan.Program) bool {
		for _, dep := range pr.DependsOn {
			if jobs[dep] != "" {
				names = append(names, dep)
				return true
			}
		}
		return false
	}
	why := engine.CannotStart(states, next, d, afterJob, check)
	if len(why) == 0 {
		return ""
	}
	slices.Sort(names)
	why = alike(why)
	return fmt.Sprintf("%s cannot start as things are: the apply runs first %s, then refuses unless that made what is missing (nothing else applied, the job's work done)",
		strings.Join(why, ", "), strings.Join(slices.Compact(names), ", "))
}

// Breaking refuses a change of next (d: from the running plan) that would restart a
// program running now into a version that cannot start, by check (the daemon's own
// view: its PATH, its users): it would take a working service down. A program added or
// stopped is not refused (nothing to lose: the machine may be meant to change with the
// apply), nor one that depends on a job the apply runs first, which may make what is
// missing (a venv): the engine checks that one once the job ran. nil when check is nil.
func Breaking(states []engine.Status, next *plan.Plan, d plan.Delta, check func(plan.Program) []string) error {
	if check == nil {
		return nil
	}
	jobs := d.JobsFirst(next)
	noJobFirst := func(pr plan.Program) bool {
		return !slices.ContainsFunc(pr.DependsOn, func(dep string) bool { return jobs[dep] != "" })
	}
	// A job the apply runs first that cannot start itself, with no job before it to make
	// what it lacks (its release's interpreter): it was run and retried into FATAL, and
	// the apply refused only then.
	var stuck []string
	for _, job := range slices.Sorted(maps.Keys(jobs)) {
		pr, ok := next.Lookup(job)
		if !ok || !noJobFirst(pr) {
			continue
		}
		if problems := check(pr); len(problems) > 0 {
			stuck = append(stuck, job+" ("+strings.Join(problems, "; ")+")")
		}
	}
	if len(stuck) > 0 {
		return fmt.Errorf("the job %s cannot start, and what depends on it would wait for it: nothing applied; fix it, or apply --force",
			strings.Join(alike(stuck), ", "))
	}
	why := alike(engine.CannotStart(states, next, d, noJobFirst, check))
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%s %s now, and would be restarted into a version that cannot start: nothing applied; fix it, or apply --force",
		strings.Join(why, ", "), map[bool]string{true: "runs", false: "run"}[len(why) == 1 && !strings.Contains(why[0], ", ")])
}

// alike joins the "name (problems)" of CannotStart that share their problems: "beat, web,
// worker (directory: …)", where a release's missing folder was said once per program.
func alike(why []string) []string {
	var out []string
	at := map[string]int{} // problems -> index in out
	for _, w := range why {
		i := strings.Index(w, " (")
		if i < 0 {
			out = append(out, w)
			continue
		}
		name, problems := w[:i], w[i:]
		if j, ok := at[problems]; ok {
			out[j] = strings.TrimSuffix(out[j], problems) + ", " + name + problems
			continue
		}
		at[problems] = len(out)
		out = append(out, w)
	}
	return out
}
