package plan

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNoSuchProcess is wrapped by Select's error for a spec that matches nothing.
var ErrNoSuchProcess = errors.New("no such process or group")

// One resolves a spec that must name a single process (`logs`, `pid`): its process
// name, or group:process as status prints it, or a program of one instance. A spec
// selecting several processes is an error that lists them.
func (p *Plan) One(spec string) (Program, error) {
	names, err := p.Select(spec)
	if err != nil {
		return Program{}, fmt.Errorf("no such process: %s", spec)
	}
	if len(names) > 1 {
		return Program{}, fmt.Errorf("%s selects %d processes (%s): name one", spec, len(names), strings.Join(names, ", "))
	}
	pr, _ := p.Lookup(names[0])
	return pr, nil
}

// Lookup returns the entry whose process name is processName.
func (p *Plan) Lookup(processName string) (Program, bool) {
	for i := range p.Programs {
		if p.Programs[i].ProcessName == processName {
			return p.Programs[i], true
		}
	}
	return Program{}, false
}

// Select resolves a supervisorctl-style spec to process names, in start order:
//   - "all": every process;
//   - "x": the process named x, every instance of the program x, and every
//     member of the group x (supervisord reads a bare name as a group);
//   - "g:*": every process of group g;
//   - "g:x": the process x, or the instances of program x, within group g.
//
// A group is an entry of Groups, or the group a program's Group field names;
// every program is also a group of its own name, so "worker:*" and
// "worker:worker_01" work for a numprocs program whatever its group.
// A spec matching nothing is an error wrapping ErrNoSuchProcess.
func (p *Plan) Select(spec string) ([]string, error) {
	var match func(pr *Program) bool
	switch group, name, qualified := strings.Cut(spec, ":"); {
	case spec == "all":
		match = func(*Program) bool { return true }
	case !qualified:
		match = func(pr *Program) bool {
			return pr.ProcessName == spec || pr.Name == spec || p.inGroup(pr, spec)
		}
	case name == "*" || name == "": // supervisorctl reads "web:" as "web:*"
		match = func(pr *Program) bool { return p.inGroup(pr, group) }
	default:
		match = func(pr *Program) bool {
			return p.inGroup(pr, group) && (pr.ProcessName == name || pr.Name == name)
		}
	}
	var out []string
	for i := range p.Programs {
		if pr := &p.Programs[i]; match(pr) {
			out = append(out, pr.ProcessName)
		}
	}
	if len(out) == 0 || spec == "" {
		return nil, fmt.Errorf("%w: %s", ErrNoSuchProcess, spec)
	}
	return out, nil
}

// inGroup reports whether pr belongs to group g: by its Group field, by being
// listed in a Groups entry named g, or by g being its own program name.
func (p *Plan) inGroup(pr *Program, g string) bool {
	if g == "" {
		return false
	}
	if pr.Group == g || pr.Name == g {
		return true
	}
	for i := range p.Groups {
		if p.Groups[i].Name == g {
			for _, m := range p.Groups[i].Programs {
				if m == pr.Name {
					return true
				}
			}
		}
	}
	return false
}
