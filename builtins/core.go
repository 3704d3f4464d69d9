package builtins

import (
	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// coreModule provides struct (go.starlark.net/starlarkstruct) and json
// (go.starlark.net/lib/json). fail and print are Starlark's own; print goes to
// Options.Print, prefixed with "file:line: ".
type coreModule struct{}

func (coreModule) Name() string { return "core" }

func (coreModule) Members() starlark.StringDict {
	return starlark.StringDict{
		"struct": starlark.NewBuiltin("struct", starlarkstruct.Make),
		"json":   json.Module,
	}
}

// Interface guards.
var _ Module = coreModule{}
