package builtins

import (
	"fmt"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// pathModule provides here(), root() and the path struct. Relative paths resolve against
// the folder of the calling file (see doc.go for the @stdlib rule).
type pathModule struct{}

func (pathModule) Name() string { return "path" }

func (pathModule) Members() starlark.StringDict {
	return starlark.StringDict{
		"here": starlark.NewBuiltin("here", hereFn),
		"root": starlark.NewBuiltin("root", rootFn),
		"path": &starlarkstruct.Module{Name: "path", Members: starlark.StringDict{
			"join": starlark.NewBuiltin("path.join", pathJoin),
			"abs":  starlark.NewBuiltin("path.abs", pathAbs),
			"base": starlark.NewBuiltin("path.base", pathBase),
			"dir":  starlark.NewBuiltin("path.dir", pathDir),
			"rel":  starlark.NewBuiltin("path.rel", pathRel),
			"list": starlark.NewBuiltin("path.list", pathList),
		}},
	}
}

// hereFn: here(rel = "") is the calling file's folder joined with rel.
func hereFn(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, err := stateFrom(th)
	if err != nil {
		return nil, err
	}
	rel := ""
	if err := unpack(fn.Name(), args, kwargs, "rel?", &rel); err != nil {
		return nil, err
	}
	return starlark.String(s.abs(th, rel)), nil
}

// rootFn: root(rel = "") is the bundle root (the entry script's folder) joined with rel.
func rootFn(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, err := stateFrom(th)
	if err != nil {
		return nil, err
	}
	rel := ""
	if err := unpack(fn.Name(), args, kwargs, "rel?", &rel); err != nil {
		return nil, err
	}
	if filepath.IsAbs(rel) {
		return nil, fmt.Errorf("%s: rel: got absolute path %q, want a path relative to the root", fn.Name(), rel)
	}
	return starlark.String(filepath.Join(s.root, rel)), nil
}

// pathJoin joins like Python's os.path.join: an absolute part restarts the path.
func pathJoin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(kwargs) > 0 {
		return nil, fmt.Errorf("%s: unexpected keyword arguments", fn.Name())
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("%s: got 0 arguments, want at least 1", fn.Name())
	}
	parts := make([]string, 0, len(args))
	for i, a := range args {
		p, ok := starlark.AsString(a)
		if !ok {
			return nil, fmt.Errorf("%s: for parameter %d: got %s, want string", fn.Name(), i+1, a.Type())
		}
		if filepath.IsAbs(p) {
			parts = parts[:0]
		}
		parts = append(parts, p)
	}
	return starlark.String(filepath.Join(parts...)), nil
}

func pathAbs(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, err := stateFrom(th)
	if err != nil {
		return nil, err
	}
	var p string
	if err := unpack(fn.Name(), args, kwargs, "path", &p); err != nil {
		return nil, err
	}
	return starlark.String(s.abs(th, p)), nil
}

func pathBase(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var p string
	if err := unpack(fn.Name(), args, kwargs, "path", &p); err != nil {
		return nil, err
	}
	return starlark.String(filepath.Base(p)), nil
}

func pathDir(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var p string
	if err := unpack(fn.Name(), args, kwargs, "path", &p); err != nil {
		return nil, err
	}
	return starlark.String(filepath.Dir(p)), nil
}

// pathRel: rel(path, start = here()) is path relative to start; both resolve first.
func pathRel(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, err := stateFrom(th)
	if err != nil {
		return nil, err
	}
	var p, start string
	if err := unpack(fn.Name(), args, kwargs, "path", &p, "start?", &start); err != nil {
		return nil, err
	}
	r, err := filepath.Rel(s.abs(th, start), s.abs(th, p))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn.Name(), err)
	}
	return starlark.String(r), nil
}

// pathList: list(*dirs) is an OS path list ("a:b") of absolute dirs; lists are flattened.
func pathList(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, err := stateFrom(th)
	if err != nil {
		return nil, err
	}
	if len(kwargs) > 0 {
		return nil, fmt.Errorf("%s: unexpected keyword arguments", fn.Name())
	}
	var dirs []string
	for i, a := range args {
		if str, ok := starlark.AsString(a); ok {
			dirs = append(dirs, str)
			continue
		}
		var l stringList
		if err := l.Unpack(a); err != nil {
			return nil, fmt.Errorf("%s: for parameter %d: got %s, want string or list of strings", fn.Name(), i+1, a.Type())
		}
		dirs = append(dirs, l...)
	}
	out := make([]string, len(dirs))
	for i, d := range dirs {
		if d == "" || strings.ContainsRune(d, filepath.ListSeparator) {
			return nil, fmt.Errorf("%s: got %q, want a non-empty path without %q", fn.Name(), d, filepath.ListSeparator)
		}
		out[i] = s.abs(th, d)
	}
	return starlark.String(strings.Join(out, string(filepath.ListSeparator))), nil
}

// Interface guards.
var _ Module = pathModule{}
