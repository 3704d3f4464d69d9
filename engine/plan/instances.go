package plan

import "strings"

// byProgram groups entry indices by program name, programs in order of first appearance.
func byProgram(progs []Program) (names []string, idx map[string][]int) {
	idx = make(map[string][]int, len(progs))
	names = make([]string, 0, len(progs))
	// Most programs have one instance: give each a one-element window of a
	// shared array instead of an allocation; appending a second instance
	// reallocates that program's slice alone (the window's capacity is 1).
	one := make([]int, len(progs))
	for i := range progs {
		n := progs[i].Name
		if is, ok := idx[n]; ok {
			idx[n] = append(is, i)
			continue
		}
		names = append(names, n)
		one[i] = i
		idx[n] = one[i : i+1 : i+1]
	}
	return names, idx
}

// checkProcessNames reports a process name used twice; the engine addresses
// processes by this name alone.
func checkProcessNames(ps *problems, progs []Program) {
	owner := map[string]string{}
	for i := range progs {
		pr := &progs[i]
		if pr.ProcessName == "" {
			continue // reported by checkProgram
		}
		if other, ok := owner[pr.ProcessName]; ok {
			ps.program(pr, "process_name", "%q is already the process name of program %q", Short(pr.ProcessName), Short(other))
			continue
		}
		owner[pr.ProcessName] = pr.Name
	}
}

// checkInstances checks the entries that numprocs expanded from one declaration:
// they agree on the program's settings, their count and numbers match numprocs,
// and no two of them write to the same log file.
func checkInstances(ps *problems, progs []Program) {
	names, idx := byProgram(progs)
	for _, name := range names {
		is := idx[name]
		first := &progs[is[0]]
		if redeclared(ps, progs, is) {
			continue
		}
		agree := true
		for _, i := range is[1:] {
			pr := &progs[i]
			if pr.Numprocs != first.Numprocs || pr.NumprocsStart != first.NumprocsStart {
				ps.program(pr, "numprocs", "instances disagree: %q has numprocs %d from %d, %q has %d from %d",
					Short(first.ProcessName), first.Numprocs, first.NumprocsStart, Short(pr.ProcessName), pr.Numprocs, pr.NumprocsStart)
				agree = false
			}
		}
		if !agree || first.Numprocs < 1 || first.NumprocsStart > MaxNumprocsStart(first.Numprocs) {
			continue // the numbers cannot be checked (checkProgram said why)
		}
		if len(is) != first.Numprocs {
			ps.program(first, "numprocs", "is %d but the plan has %d processes of this program", first.Numprocs, len(is))
		}
		lo, hi := first.NumprocsStart, first.NumprocsStart+first.Numprocs-1
		if len(is) == 1 { // the common case: nothing to share a number or a log with
			if first.ProcessNum < lo || first.ProcessNum > hi {
				ps.program(first, "process_num", "%d of %q is outside numprocs_start..numprocs_start+numprocs-1 (%d..%d)",
					first.ProcessNum, Short(first.ProcessName), lo, hi)
			}
			continue
		}
		nums := map[int]string{}
		stdout, stderr := map[string]string{}, map[string]string{}
		for _, i := range is {
			pr := &progs[i]
			if pr.ProcessNum < lo || pr.ProcessNum > hi {
				ps.program(pr, "process_num", "%d of %q is outside numprocs_start..numprocs_start+numprocs-1 (%d..%d)",
					pr.ProcessNum, Short(pr.ProcessName), lo, hi)
			} else if other, ok := nums[pr.ProcessNum]; ok {
				ps.program(pr, "process_num", "%d is used by both %q and %q", pr.ProcessNum, Short(other), Short(pr.ProcessName))
			} else {
				nums[pr.ProcessNum] = pr.ProcessName
			}
			sharedLog(ps, pr, "stdout", pr.Stdout, stdout)
			sharedLog(ps, pr, "stderr", pr.Stderr, stderr)
		}
	}
}

// redeclared reports two declarations of one program name (entries from
// different positions), which would otherwise show up as a numprocs mismatch.
func redeclared(ps *problems, progs []Program, is []int) bool {
	first := &progs[is[0]]
	for _, i := range is[1:] {
		if pr := &progs[i]; pr.Pos != first.Pos {
			where := first.Pos
			if where == "" {
				where = "an earlier entry"
			}
			ps.program(pr, "name", "program declared twice (first at %s)", where)
			return true
		}
	}
	return false
}

// sharedLog reports a log path already written by another instance: rotation
// by two writers would lose lines. Streams and files that do not rotate take appends of
// whole writes from any number of writers, as under supervisord.
func sharedLog(ps *problems, pr *Program, field string, l *Log, seen map[string]string) {
	if l == nil || l.MaxBytes <= 0 || strings.HasPrefix(l.Path, "/dev/") {
		return
	}
	if other, ok := seen[l.Path]; ok {
		ps.program(pr, field, "path %q is shared by processes %q and %q; use {num} or {process_name} in it",
			l.Path, other, pr.ProcessName)
		return
	}
	seen[l.Path] = pr.ProcessName
}
