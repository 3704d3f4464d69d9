package plan

import (
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

// checkDependencies reports depends_on names that are not programs, and every
// cycle, named by its path so the user sees which edge to cut.
func checkDependencies(ps *problems, progs []Program) {
	names, deps, first := programDeps(progs)
	for _, n := range names {
		for _, d := range deps[n] {
			if d != "" && first[d] == nil {
				ps.program(first[n], "depends_on", "no such program %q", d)
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
				path := append(slices.Clone(stack[at:]), d)
				ps.program(first[d], "depends_on", "cycle %s", strings.Join(path, " -> "))
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
