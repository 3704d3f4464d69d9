package builtins

import (
	"errors"
	"fmt"
	"sort"

	"go.starlark.net/starlark"

	"github.com/starvisor/starvisor/engine/plan"
)

// A Module contributes predeclared names to deploy scripts. Its lifecycle in one Eval:
//
//  1. Eval merges every module's Members into the predeclared environment (Predeclared);
//     an empty or duplicate module name, or a member name two modules share, is an error.
//  2. If the module is a Stater, Eval calls NewState once with the evaluation's thread,
//     before the entry script runs, so the module can keep per-evaluation state on it.
//  3. The scripts run; builtins reach the plan under construction through the thread.
//  4. After the plan is assembled and plan.Finish succeeded, every module that is a
//     Validator checks the whole plan; their errors are joined.
type Module interface {
	Name() string                 // registration name, unique: "program", "fs", ...
	Members() starlark.StringDict // predeclared names it adds: builtins or *starlarkstruct.Module values
}

// Validator is implemented by modules that check the finished plan (lifecycle step 4).
type Validator interface {
	Validate(p *plan.Plan) error
}

// Stater is implemented by modules that keep state per evaluation (lifecycle step 2):
// they store it with th.SetLocal and read it back in their builtins.
type Stater interface {
	NewState(th *starlark.Thread)
}

// Default returns the modules of DESIGN.md "The script", in a fixed order.
func Default() []Module {
	return []Module{
		programModule{}, groupModule{}, supervisorModule{}, logModule{}, pathModule{},
		hostModule{}, fsModule{}, probeModule{}, versionModule{}, coreModule{},
		supervisordConfModule{},
	}
}

// Predeclared merges the members of mods into one environment. It fails on an empty or
// duplicate module name and on a member name declared twice: never a silent override.
func Predeclared(mods ...Module) (starlark.StringDict, error) {
	env := starlark.StringDict{}
	owner := map[string]string{} // member -> module name
	seen := map[string]bool{}
	var errs []error
	for i, m := range mods {
		name := m.Name()
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("predeclared: module #%d (%T) has an empty name", i, m))
			continue
		case seen[name]:
			errs = append(errs, fmt.Errorf("predeclared: module %q registered twice", name))
			continue
		}
		seen[name] = true
		members := m.Members()
		keys := members.Keys() // sorted, so errors come in a stable order
		for _, k := range keys {
			if prev, ok := owner[k]; ok {
				errs = append(errs, fmt.Errorf("predeclared: module %q: name %q already declared by module %q", name, k, prev))
				continue
			}
			owner[k] = name
			env[k] = members[k]
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return env, nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
