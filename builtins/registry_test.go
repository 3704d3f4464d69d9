package builtins_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/matryer/is"
	"go.starlark.net/starlark"

	"github.com/starvisor/starvisor/builtins"
	"github.com/starvisor/starvisor/engine/plan"
)

// greetModule is a module plugged in from Go: a builtin, a Validator and a Stater.
type greetModule struct {
	name     string
	validate func(*plan.Plan) error
	states   *int
}

func (m greetModule) Name() string { return m.name }

func (m greetModule) Members() starlark.StringDict {
	return starlark.StringDict{"greet": starlark.NewBuiltin("greet", func(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var who string
		if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "who", &who); err != nil {
			return nil, err
		}
		return starlark.String(fmt.Sprintf("hello %s (%v)", who, th.Local("greet.state"))), nil
	})}
}

func (m greetModule) Validate(p *plan.Plan) error { return m.validate(p) }

func (m greetModule) NewState(th *starlark.Thread) {
	*m.states++
	th.SetLocal("greet.state", *m.states)
}

var (
	_ builtins.Module    = greetModule{}
	_ builtins.Validator = greetModule{}
	_ builtins.Stater    = greetModule{}
)

func TestExtraModule(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- deploy.star --
program(name = "a", command = "a", env = {"GREETING": greet("you")})
`)
	states := 0
	var seen *plan.Plan
	mod := greetModule{name: "greet", states: &states, validate: func(p *plan.Plan) error { seen = p; return nil }}
	p, err := builtins.Eval(context.Background(), builtins.Options{
		File:    filepath.Join(dir, "deploy.star"),
		Modules: append(builtins.Default(), mod),
	})
	is.NoErr(err)
	is.Equal(p.Programs[0].Env["GREETING"], "hello you (1)") // state from NewState, once
	is.Equal(seen, p)                                        // the validator saw the finished plan
	is.True(seen.Programs[0].Hash != "")

	mod.validate = func(*plan.Plan) error { return errors.New("no greetings on Sundays") }
	_, err = builtins.Eval(context.Background(), builtins.Options{
		File:    filepath.Join(dir, "deploy.star"),
		Modules: append(builtins.Default(), mod),
	})
	is.Equal(err.Error(), "module greet: no greetings on Sundays")

	_, err = builtins.Eval(context.Background(), builtins.Options{
		File:    filepath.Join(dir, "deploy.star"),
		Modules: []builtins.Module{mod}, // without the defaults, program is unknown
	})
	is.Equal(firstLine(err), "deploy.star:1:1: undefined: program")
}

func TestPredeclared(t *testing.T) {
	is := is.New(t)
	env, err := builtins.Predeclared(builtins.Default()...)
	is.NoErr(err)
	for _, name := range []string{"program", "group", "supervisor", "log", "here", "root", "path", "host", "fs", "probe", "version", "struct", "json"} {
		is.True(env.Has(name)) // DESIGN.md names
	}

	_, err = builtins.Predeclared(greetModule{name: ""})
	is.Equal(err.Error(), `predeclared: module #0 (builtins_test.greetModule) has an empty name`)
	_, err = builtins.Predeclared(greetModule{name: "g"}, greetModule{name: "g"})
	is.Equal(err.Error(), `predeclared: module "g" registered twice`)
	_, err = builtins.Predeclared(greetModule{name: "g"}, greetModule{name: "h"})
	is.Equal(err.Error(), `predeclared: module "h": name "greet" already declared by module "g"`)
}
