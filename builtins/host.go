package builtins

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// hostModule provides host.name(), host.os(), host.arch(), host.cpus() and
// host.env(name, default = None). They are functions, not values, so that every read is
// recorded in the plan's inputs.env: host values under "host.name", "host.os", ...,
// variables under their own name ("" when unset).
type hostModule struct{}

func (hostModule) Name() string { return "host" }

func (hostModule) Members() starlark.StringDict {
	value := func(name string, get func() (string, starlark.Value, error)) *starlark.Builtin {
		return starlark.NewBuiltin("host."+name, func(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			s, err := stateFrom(th)
			if err != nil {
				return nil, err
			}
			if err := starlark.UnpackPositionalArgs(fn.Name(), args, kwargs, 0); err != nil {
				return nil, err
			}
			rec, v, err := get()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", fn.Name(), err)
			}
			s.env["host."+name] = rec
			return v, nil
		})
	}
	str := func(v string) (string, starlark.Value, error) { return v, starlark.String(v), nil }
	return starlark.StringDict{"host": &starlarkstruct.Module{Name: "host", Members: starlark.StringDict{
		"name": value("name", func() (string, starlark.Value, error) {
			h, err := os.Hostname()
			if err != nil {
				return "", nil, err
			}
			return str(h)
		}),
		"os":   value("os", func() (string, starlark.Value, error) { return str(runtime.GOOS) }),
		"arch": value("arch", func() (string, starlark.Value, error) { return str(runtime.GOARCH) }),
		"cpus": value("cpus", func() (string, starlark.Value, error) {
			n := runtime.NumCPU()
			return strconv.Itoa(n), starlark.MakeInt(n), nil
		}),
		"env": starlark.NewBuiltin("host.env", hostEnv),
	}}}
}

func hostEnv(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, err := stateFrom(th)
	if err != nil {
		return nil, err
	}
	var name string
	var def starlark.Value = starlark.None
	if err := unpack(fn.Name(), args, kwargs, "name", &name, "default?", &def); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("%s: name: empty", fn.Name())
	}
	v, ok := s.readEnv(name)
	if !ok {
		return def, nil
	}
	return starlark.String(v), nil
}

// Interface guards.
var _ Module = hostModule{}
