package plan

import (
	"fmt"
	"slices"
	"strings"
)

// programDeps returns each program's depends_on (the union over its instances,
// in listed order), with programs in order of first appearance.
func programDeps(progs []Program) (names []string, deps map[string][]string, first map[string]*Program) {
	names, idx := byProgram(progs)
	deps = make(map[string][]string, len(names))
	first = make(map[string]*Program, len(names))
	for _, n := range names {
		first[n] = &progs[idx[n][0]]
		var ds []string
		for _, i := range idx[n] {
			for _, d := range progs[i].DependsOn {
				if !slices.Contains(ds, d) {
					ds = append(ds, d)
				}
			}
		}
		deps[n] = ds
	}
	return names, deps, first
}

// nearestName is the name of names a typo away from d (an edit per three letters, two at
// most), or "".
func nearestName(d string, names []string) string {
	if len(d) > shortName {
		return "" // a generated name: no typo of a person's, and quadratic to compare
	}
	best, bestD := "", min(2, len(d)/3)+1 // a short name is near too many others
	for _, n := range names {
		if abs(len(n)-len(d)) >= bestD {
			continue // at least that many edits apart
		}
		if e := EditDistance(d, n); e < bestD {
			best, bestD = n, e
		}
	}
	return best
}

// EditDistance is the Levenshtein distance between a and b, in bytes (names are ASCII):
// how far a typo is from a name (the builtins' "did you mean" too).
func EditDistance(a, b string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// cyclePath writes a depends_on cycle as "a -> b -> c -> a". One over a generated fleet
// is elided in the middle: "s0 -> s1 -> s2 -> … (19996 more) -> s19999 -> s0".
func cyclePath(cycle []string) string {
	shown := cycle
	if len(cycle) > 8 {
		shown = []string{cycle[0], cycle[1], cycle[2], cycle[len(cycle)-1]}
	}
	names := make([]string, 0, len(shown)+2)
	for _, n := range shown {
		names = append(names, Short(n))
	}
	if len(cycle) > 8 {
		names = slices.Insert(names, 3, fmt.Sprintf("… (%d more)", len(cycle)-4))
	}
	names = append(names, Short(cycle[0]))
	return strings.Join(names, " -> ")
}

// checkDependencies reports depends_on names that are not programs, and every
// cycle, named by its path so the user sees which edge to cut.
func checkDependencies(ps *problems, progs []Program) {
	names, deps, first := programDeps(progs)
	for _, n := range names {
		for _, d := range deps[n] {
			if d != "" && first[d] == nil {
				near := ""
				if len(ps.errs) < MaxProblems { // past it, not printed: a typo in a generator made thousands, each compared with every name
					near = nearestName(d, names)
				}
				if near == n {
					near = "" // not itself: that would be a cycle
				}
				if near != "" {
					ps.program(first[n], "depends_on", "no such program %q (did you mean %q?)", Short(d), Short(near))
				} else {
					ps.program(first[n], "depends_on", "no such program %q", Short(d))
				}
			}
		}
	}
	// Depth-first search in declaration order; a edge back to a program on the
	// stack closes a cycle. Each back edge is reported once.
	const (
		unseen = iota
		onStack
		done
	)
	state := make(map[string]int, len(names))
	var stack []string
	var visit func(n string)
	visit = func(n string) {
		state[n] = onStack
		stack = append(stack, n)
		for _, d := range deps[n] {
			switch {
			case first[d] == nil:
			case state[d] == onStack:
				at := slices.Index(stack, d)
				ps.program(first[d], "depends_on", "cycle %s", cyclePath(stack[at:]))
			case state[d] == unseen:
				visit(d)
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
	}
	for _, n := range names {
		if state[n] == unseen {
			visit(n)
		}
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
