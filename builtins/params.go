package builtins

import (
	"fmt"

	"go.starlark.net/starlark"

	"github.com/starvisor/starvisor/engine/plan"
)

// paramSpec is a builtin's parameter list, indexed once. starlark.UnpackArgs scans every
// name for every keyword given, which shows in program(): the builtin a script calls
// most, with the most parameters. Messages match UnpackArgs, shaped "fn: param: problem".
type paramSpec struct {
	names    []string
	index    map[string]int
	required int // the first `required` parameters must be given
}

func newParamSpec(required int, names ...string) *paramSpec {
	ps := &paramSpec{names: names, index: make(map[string]int, len(names)), required: required}
	for i, n := range names {
		ps.index[n] = i
	}
	return ps
}

// unpack stores the arguments through ptrs, one per parameter in order (see starlark.UnpackArg).
func (ps *paramSpec) unpack(fn string, args starlark.Tuple, kwargs []starlark.Tuple, ptrs ...any) error {
	if len(ptrs) != len(ps.names) {
		return fmt.Errorf("internal error: %s: %d parameters, %d variables", fn, len(ps.names), len(ptrs))
	}
	if len(args) > len(ps.names) {
		return fmt.Errorf("%s: got %d arguments, want at most %d", fn, len(args), len(ps.names))
	}
	set := make([]bool, len(ps.names))
	for i, a := range args {
		set[i] = true
		if i >= ps.required && noneAsDefault(a, ptrs[i]) {
			continue
		}
		if err := starlark.UnpackArg(a, ptrs[i]); err != nil {
			return fmt.Errorf("%s: %s: %w", fn, ps.names[i], err)
		}
	}
	for _, kv := range kwargs {
		name, _ := starlark.AsString(kv[0])
		i, ok := ps.index[name]
		if !ok {
			err := fmt.Errorf("%s: unexpected keyword argument %q", fn, name)
			if near := nearest(name, ps.names); near != "" {
				err = fmt.Errorf("%w (did you mean %s?)", err, near)
			}
			return err
		}
		if set[i] {
			return fmt.Errorf("%s: got multiple values for keyword argument %s", fn, name)
		}
		set[i] = true
		if i >= ps.required && noneAsDefault(kv[1], ptrs[i]) {
			continue
		}
		if err := starlark.UnpackArg(kv[1], ptrs[i]); err != nil {
			return fmt.Errorf("%s: %s: %w", fn, name, err)
		}
	}
	for i := range ps.required {
		if !set[i] {
			return fmt.Errorf("%s: missing argument for %s", fn, ps.names[i])
		}
	}
	return nil
}

// noneAsDefault says whether v, given for an optional parameter that takes no None,
// is None: then it stands for the parameter not given, as a library's helper passes
// its own optional arguments on (group = group, its default None). Where None has a
// meaning of its own (stdout = None: discard; ready = None: no probe), it is unpacked.
func noneAsDefault(v starlark.Value, ptr any) bool {
	if v != starlark.None {
		return false
	}
	switch ptr.(type) {
	case *starlark.Value, *starlark.NoneType:
		return false
	}
	if u, ok := ptr.(starlark.Unpacker); ok {
		return u.Unpack(starlark.None) != nil
	}
	return true
}

// nearest returns the candidate closest to x by edit distance, if close enough to be a typo.
func nearest(x string, candidates []string) string {
	best, bestD := "", len(x)/2+1
	for _, c := range candidates {
		if d := editDistance(x, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is plan.EditDistance: one measure of a typo for both.
func editDistance(a, b string) int { return plan.EditDistance(a, b) }
