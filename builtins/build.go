package builtins

import (
	"maps"
	"path/filepath"
	"slices"

	"github.com/starvisor/starvisor/engine/plan"
)

// build assembles the plan once the scripts ran: daemon settings, groups, default logs
// (they follow supervisor(log_dir = ...), which may come after program()), inputs.
func (s *evalState) build() (*plan.Plan, error) {
	p := &plan.Plan{
		Format:   plan.Format,
		Entry:    s.entry,
		Root:     s.root,
		Programs: make([]plan.Program, 0, s.processes()),
		Groups:   []plan.Group{},
		Inputs:   plan.Inputs{Files: s.files, Env: s.env, Unset: slices.Sorted(maps.Keys(s.unset))},
	}
	if len(s.libs) > 0 {
		p.Inputs.Libs = maps.Clone(s.libs)
	}
	sv := &p.Supervisor
	sv.Socket, sv.Pidfile, sv.LogDir, sv.StateDir = s.settings()
	if s.sup != nil {
		sv.MinFDs, sv.Pos = s.sup.minFDs, s.sup.pos
	}

	// Groups: those group() declared, then those program(group = ...) named; a numprocs > 1
	// program in neither is the group of its own name.
	groups := make([]*plan.Group, 0, len(s.groups))
	index := map[string]*plan.Group{}
	memberOf := map[string]string{} // program name -> first group listing it
	for _, g := range s.groups {
		c := *g
		c.Programs = slices.Clone(g.Programs)
		groups = append(groups, &c)
		index[c.Name] = &c
		for _, m := range c.Programs {
			if _, ok := memberOf[m]; !ok {
				memberOf[m] = c.Name
			}
		}
	}
	for _, d := range s.programs {
		g := d.group
		switch {
		case g != "":
			if grp, ok := index[g]; ok {
				if !slices.Contains(grp.Programs, d.name) {
					grp.Programs = append(grp.Programs, d.name)
				}
			} else {
				grp := &plan.Group{Name: g, Programs: []string{d.name}, Priority: d.priority, Pos: d.pos}
				groups = append(groups, grp)
				index[g] = grp
			}
		case memberOf[d.name] != "":
			g = memberOf[d.name]
		case d.numprocs > 1:
			g = d.name // supervisord's homogeneous group; plan.Select knows it without a Groups entry
		}
		for _, pr := range d.instances {
			pr.Group = g
			if d.defaultStdout {
				pr.Stdout = plan.DefaultLog(filepath.Join(sv.LogDir, pr.ProcessName+".log"))
			}
			if d.defaultStderr {
				pr.Stderr = plan.DefaultLog(filepath.Join(sv.LogDir, pr.ProcessName+".err.log"))
			}
			p.Programs = append(p.Programs, pr)
		}
	}
	for _, g := range groups {
		p.Groups = append(p.Groups, *g)
	}
	return p, nil
}

// processes counts the processes declared so far.
func (s *evalState) processes() int { return s.nprocs }
