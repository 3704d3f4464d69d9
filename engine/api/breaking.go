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
// missing (a venv): the engine checks that one once the job ran. nil when check is nil.
func Breaking(states []engine.Status, next *plan.Plan, d plan.Delta, check func(plan.Program) []string) error {
	if check == nil {
		return nil
	}
	jobs := d.JobsFirst(next)
	noJobFirst := func(pr plan.Program) bool {
		return !slices.ContainsFunc(pr.DependsOn, func(dep string) bool { return jobs[dep] != "" })
	}
	why := engine.CannotStart(states, next, d, noJobFirst, check)
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%s %s now, and would be restarted into a version that cannot start: nothing applied; fix it, or apply --force",
		strings.Join(why, ", "), map[bool]string{true: "runs", false: "run"}[len(why) == 1])
}
