package builtins_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"
	"go.starlark.net/starlark"

	"github.com/starvisor/starvisor/builtins"
)

// TestCancel checks that cancelling the context stops a script that would run forever.
// The script cancels through a builtin, so the test knows it is already running.
func TestCancel(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- deploy.star --
def spin():
    n = 0
    while True:
        n = (n + 1) % 3
cancel()
spin()
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mod := funcModule{"cancel": func() { cancel() }}
	_, err := builtins.Eval(ctx, builtins.Options{
		File: filepath.Join(dir, "deploy.star"), MaxSteps: 1 << 62, Timeout: 1 << 62,
		Modules: append(builtins.Default(), mod),
	})
	var e *builtins.Error
	is.True(errors.As(err, &e))
	is.Equal(e.Msg, "Starlark computation cancelled: context canceled")
	// With no step limit or timeout, returning at all shows the cancellation stopped the
	// loop; where exactly it caught the script depends on the scheduler.
	is.True(strings.HasPrefix(e.Stack[0], "deploy.star:"))
	var ee *starlark.EvalError
	is.True(errors.As(err, &ee)) // the Starlark error stays reachable
}

// funcModule turns Go funcs into builtins taking no arguments.
type funcModule map[string]func()

func (funcModule) Name() string { return "funcs" }

func (m funcModule) Members() starlark.StringDict {
	d := starlark.StringDict{}
	for name, f := range m {
		d[name] = starlark.NewBuiltin(name, func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			f()
			return starlark.None, nil
		})
	}
	return d
}

func TestEvalInputErrors(t *testing.T) {
	is := is.New(t)
	_, err := builtins.Eval(context.Background(), builtins.Options{})
	is.Equal(err.Error(), "eval: no script file given")

	dir := t.TempDir()
	_, err = builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "none.star")})
	is.Equal(err.Error(), `load: no file "none.star"`)

	_, err = builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "x.star"), Libs: map[string]string{"a b": dir}})
	is.Equal(err.Error(), `eval: library name "a b": want letters, digits, '_', '.' or '-'`)
}

// TestErrorFormat pins the whole text of an error: position, message, stack.
func TestErrorFormat(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- deploy.star --
load("lib/svc.star", "service")
service("web", retries = -5)
-- lib/svc.star --
def service(name, retries):
    return program(name = name, command = "x", start_retries = retries)
`)
	_, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star")})
	is.Equal(err.Error(), strings.Join([]string{
		"lib/svc.star:2:48: program: start_retries: got -5, want >= -1", // the keyword's position
		"Traceback (most recent call last):",
		"  deploy.star:2:8: in <toplevel>",
		"  lib/svc.star:2:19: in service",
	}, "\n"))
}

// TestConcurrentEvals checks that evaluations share no state (run with -race).
func TestConcurrentEvals(t *testing.T) {
	dir := writeTxtar(t, `
-- deploy.star --
load("@stdlib//python.star", "python")
load("lib.star", "N")
for i in range(N):
    program(name = "p%d" % i, command = python.system().module("m"), numprocs = 2, stdout = log("{process_name}.log"))
-- lib.star --
N = 20
`)
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() {
			p, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star")})
			if err == nil && len(p.Programs) != 40 {
				err = fmt.Errorf("got %d processes, want 40", len(p.Programs))
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// BenchmarkEval1000 evaluates scripts declaring 1,000 programs in a loop: "realistic"
// formats names and ports, sets env, logs, a probe and a dependency, as deploy scripts do;
// "minimal" gives only name and command.
func BenchmarkEval1000(b *testing.B) {
	for _, bc := range []struct{ name, script string }{
		{"realistic", `
-- deploy.star --
supervisor(log_dir = "log")
base = program(name = "base", command = "bin/base", ready = probe.tcp(5000))
for i in range(999):
    program(
        name = "svc%d" % i,
        command = "python3 -m service.svc%d.run --port %d" % (i, 6000 + i),
        env = {"PYTHONPATH": path.list(here("code/v%d" % (i % 3))), "N": str(i)},
        directory = here("."),
        autorestart = True,
        start_retries = 5,
        priority = 10 + i % 5,
        stdout = log("log/svc%d.out" % i, max_bytes = "10MB", backups = 3),
        depends_on = [base],
    )
`},
		{"minimal", `
-- deploy.star --
for i in range(1000):
    program(name = "svc" + str(i), command = ["python3", "-m", "svc"])
`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dir := writeTxtar(b, bc.script)
			o := builtins.Options{File: filepath.Join(dir, "deploy.star")}
			b.ReportAllocs()
			for b.Loop() {
				p, err := builtins.Eval(context.Background(), o)
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Programs) != 1000 {
					b.Fatal(fmt.Sprintf("got %d programs", len(p.Programs)))
				}
			}
		})
	}
}

// Wherever the step limit falls in a loop that does work, the error names the loop's
// line: the jump back has no position, and read as the function's first line.
func TestStepLimitNamesTheLoopLine(t *testing.T) {
	dir := writeTxtar(t, `
-- deploy.star --
x = 1

def count():
    n = 0
    while True:
        n += 1

count()
`)
	for limit := uint64(2000); limit < 2024; limit++ {
		_, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star"), MaxSteps: limit})
		if err == nil || !strings.HasPrefix(err.Error(), "deploy.star:6:") {
			t.Fatalf("limit %d: got %v, want an error at line 6", limit, err)
		}
	}
}
