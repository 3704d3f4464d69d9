package api

import (
	"fmt"
	"slices"
	"strings"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/plan"
)

// Breaking refuses a change of next (d: from the running plan) that would restart a
// program running now into a version that cannot start, by check (the daemon's own
// view: its PATH, its users): it would take a working service down. A program added or
// stopped is not refused (nothing to lose: the machine may be meant to change with the
// apply), nor one that depends on a job the apply runs first, which may make what is
// missing (a venv). nil when check is nil.
func Breaking(states []engine.Status, next *plan.Plan, d plan.Delta, check func(plan.Program) []string) error {
	if check == nil {
		return nil
	}
	active := map[string]bool{}
	for _, st := range states {
		active[st.Name] = st.State.Active()
	}
	jobs := d.JobsFirst(next)
	seen := map[string]bool{}
	var why []string
	for _, c := range d.Changed {
		pr, ok := next.Lookup(c.Name)
		if !ok || seen[pr.Name] || !active[c.Name] || slices.ContainsFunc(pr.DependsOn, func(dep string) bool { return jobs[dep] != "" }) {
			continue
		}
		seen[pr.Name] = true
		if problems := check(pr); len(problems) > 0 {
			why = append(why, pr.Name+" ("+strings.Join(problems, "; ")+")")
		}
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%s %s now, and would be restarted into a version that cannot start: nothing applied; fix it, or apply --force",
		strings.Join(why, ", "), map[bool]string{true: "runs", false: "run"}[len(why) == 1])
}
