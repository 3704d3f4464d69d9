package builtins

import (
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/starvisor/starvisor/engine/plan"
)

// groupModule provides group(name, programs = [], priority = 999).
type groupModule struct{}

func (groupModule) Name() string { return "group" }

func (groupModule) Members() starlark.StringDict {
	return starlark.StringDict{"group": starlark.NewBuiltin("group", groupFn)}
}

// groupFn declares a named group. Programs may also join a group with program(group = ...),
// before or after this call; the members are settled after evaluation.
func groupFn(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, err := stateFrom(th)
	if err != nil {
		return nil, err
	}
	var (
		name     string
		programs namesArg
		priority = plan.Defaults().Priority
	)
	if err := unpack(fn.Name(), args, kwargs, "name", &name, "programs?", &programs, "priority?", &priority); err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("%s: name: %w", fn.Name(), err)
	}
	if prev, ok := s.groupIndex[name]; ok {
		return nil, fmt.Errorf("%s: name: %q already declared at %s", fn.Name(), name, prev.Pos)
	}
	members := []string{}
	seen := map[string]bool{}
	for _, p := range programs {
		if !seen[p] {
			seen[p] = true
			members = append(members, p)
		}
	}
	g := &plan.Group{Name: name, Programs: members, Priority: priority, Pos: posString(declaredAt(th))}
	s.groups = append(s.groups, g)
	s.groupIndex[name] = g

	names := make(starlark.Tuple, len(members))
	for i, m := range members {
		names[i] = starlark.String(m)
	}
	v := starlarkstruct.FromStringDict(starlark.String("group"), starlark.StringDict{
		"name":     starlark.String(name),
		"programs": names,
		"priority": starlark.MakeInt(priority),
	})
	v.Freeze()
	return v, nil
}

// Interface guards.
var _ Module = groupModule{}
