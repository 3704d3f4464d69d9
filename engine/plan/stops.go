package plan

import (
	"slices"
	"time"
)

// Levels splits members (positions in p.Programs, which is start order) into runs of
// equal rank (group priority, then priority: Ranker). With wholeGroups a group() is one
// run whatever its members' own priorities: supervisord stops a group at a time, all
// its members signalled together (their stop_timeouts do not add up).
func (p *Plan) Levels(members []int, wholeGroups bool) [][]int {
	// Positions are start order. Callers may list members in another order (an apply:
	// the removed, then the changed); taken as they come, a dependency could land in a
	// level stopped before its dependent's, each then waiting for the other.
	members = slices.Sorted(slices.Values(members))
	rank := Ranker(p.Groups)
	grouped := map[string]bool{}
	for _, g := range p.Groups {
		grouped[g.Name] = wholeGroups
	}
	same := func(a, b *Program) bool {
		if grouped[a.Group] || grouped[b.Group] {
			return a.Group == b.Group
		}
		return rank(a) == rank(b)
	}
	var out [][]int
	for k, i := range members {
		if k == 0 || !same(&p.Programs[i], &p.Programs[members[k-1]]) {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], i)
	}
	return out
}

// WorstStop is how long stopping every process can take at most, as the daemon's
// shutdown does it: a level at a time in reverse start order, a process once its
// dependents stopped, each allowed its stop_timeout before SIGKILL. A unit's
// TimeoutStopSec shorter than this kills programs in the middle of a graceful stop.
func (p *Plan) WorstStop() time.Duration {
	all := make([]int, len(p.Programs))
	for i := range all {
		all[i] = i
	}
	done := make([]time.Duration, len(p.Programs)) // when each is stopped at the latest
	var gate time.Duration                         // when the level after this one is stopped
	lvs := p.Levels(all, true)
	for l := len(lvs) - 1; l >= 0; l-- {
		var end time.Duration
		// Within a level, dependents stop first: later in start order, so walked first.
		for k := len(lvs[l]) - 1; k >= 0; k-- {
			i := lvs[l][k]
			begin := gate
			for j := range p.Programs {
				if j != i && slices.Contains(p.Programs[j].DependsOn, p.Programs[i].Name) {
					begin = max(begin, done[j])
				}
			}
			done[i] = begin + p.Programs[i].StopTimeout.D()
			end = max(end, done[i])
		}
		gate = max(gate, end)
	}
	return gate
}
