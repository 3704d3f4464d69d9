package plan

import "slices"

// checkGroups checks the groups and the programs' group fields against them.
// A group's name may equal a program's name only when the group is that
// program alone: supervisord gives every numprocs program a group of its own
// name, and "x" then means the same processes whichever way it is read.
func checkGroups(ps *problems, p *Plan) {
	isProgram := map[string]bool{}
	for i := range p.Programs {
		isProgram[p.Programs[i].Name] = true
	}
	byName := map[string]*Group{}
	memberOf := map[string]string{} // program name -> the first group listing it
	for i := range p.Groups {
		g := &p.Groups[i]
		if msg := NameProblem(g.Name); msg != "" {
			ps.group(g, "name", "%s", msg)
		} else if _, dup := byName[g.Name]; dup {
			ps.group(g, "name", "group declared twice")
		} else {
			byName[g.Name] = g
		}
		if isProgram[g.Name] && !slices.Equal(g.Programs, []string{g.Name}) {
			ps.group(g, "name", "is also the name of a program; a group may share a name only with its one member")
		}
		if len(g.Programs) == 0 {
			ps.group(g, "programs", "is empty")
		}
		for j, m := range g.Programs {
			switch other, listed := memberOf[m]; {
			case !isProgram[m]:
				ps.group(g, "programs", "no such program %q", Short(m))
			case slices.Contains(g.Programs[:j], m):
				ps.group(g, "programs", "%q is listed twice", Short(m))
			case listed:
				ps.group(g, "programs", "%q is already in group %q; a program belongs to at most one group", Short(m), Short(other))
			default:
				memberOf[m] = g.Name
			}
		}
	}
	for i := range p.Programs {
		pr := &p.Programs[i]
		listed, ok := memberOf[pr.Name]
		switch {
		case ok && pr.Group != listed:
			ps.program(pr, "group", "is %q but group %q lists this program", Short(pr.Group), Short(listed))
		case ok, pr.Group == "", pr.Group == pr.Name:
			// In its listed group, in no group, or in its own implicit group.
		case byName[pr.Group] != nil:
			ps.program(pr, "group", "group %q does not list this program", Short(pr.Group))
		default:
			ps.program(pr, "group", "no such group %q", Short(pr.Group))
		}
	}
}
