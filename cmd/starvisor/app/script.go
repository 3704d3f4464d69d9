package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.starlark.net/starlark"

	"github.com/starvisor/starvisor/builtins"
	"github.com/starvisor/starvisor/engine/plan"
)

// scriptFlags are the flags of every verb that evaluates a deploy script.
type scriptFlags struct {
	File string   `short:"f" default:"deploy.star" help:"Deploy script to evaluate (a folder: its deploy.star; by default the one in this folder or the nearest parent)."`
	Lib  []string `name:"lib" sep:"none" placeholder:"NAME=DIR" help:"Library root for load(\"@NAME//...\"); repeatable. Adds to STARVISOR_LIBS."`
}

// eval evaluates the script. A bad --lib is a usage error; a script that fails is
// printed (position and stack) and reported as a plain failure.
func (s *scriptFlags) eval(ctx context.Context, d *Deps) (*plan.Plan, error) {
	if err := s.locate(); err != nil {
		return nil, err
	}
	env, _ := d.LookupEnv("STARVISOR_LIBS")
	libs, err := builtins.ParseLibs(s.Lib, env)
	if err != nil {
		return nil, usageError(err)
	}
	p, err := builtins.Eval(ctx, builtins.Options{
		File:      s.File,
		Libs:      libs,
		LookupEnv: d.LookupEnv,
		Print:     hereWriter{d.Stderr, filepath.Dir(s.File)}, // print()'s positions as the errors'
	})
	if err != nil {
		var msg bytes.Buffer
		printScriptError(&msg, err)
		d.Stderr.Write(fromHere(msg.Bytes(), filepath.Dir(s.File)))
		if hint := libHint(s.File, err); hint != "" {
			fmt.Fprintln(d.Stderr, hint)
		}
		return nil, reported(ExitFailure)
	}
	return p, nil
}

// libHint, for a script that loads a library this shell did not declare (a fresh shell
// without STARVISOR_LIBS), names the folder the bundle's daemon was last applied with,
// from the plan it recorded in the default state_dir; "" when there is none.
func libHint(script string, err error) string {
	_, rest, ok := strings.Cut(err.Error(), "unknown library @")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, " ")
	ran, rerr := recordedPlan(filepath.Join(filepath.Dir(script), "run"))
	if rerr != nil || ran.Inputs.Libs[name] == "" {
		return ""
	}
	return fmt.Sprintf("starvisor: hint: this bundle's daemon was last applied with --lib %s=%s", name, ran.Inputs.Libs[name])
}

// locate sets File to the script to evaluate: a folder stands for its deploy.star, and
// the default deploy.star, when this folder has none, is the nearest parent's, as the
// control verbs find it (an apply typed in the bundle's src/ after an edit).
func (s *scriptFlags) locate() error {
	if st, err := os.Stat(s.File); err == nil && st.IsDir() {
		s.File = filepath.Join(s.File, scriptName)
		return named(s.File)
	}
	if s.File != scriptName {
		return named(s.File)
	}
	if _, err := os.Stat(s.File); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	found, err := findScript()
	if err != nil {
		wd, _ := os.Getwd()
		return usageError(fmt.Errorf("no %s in %s or a folder above it: give -f FILE", scriptName, wd)) // as the client verbs: nothing said which bundle
	}
	s.File = found
	return nil
}

// named checks that -f names a script to read: "load: no file" said neither which
// file nor that it came from -f.
func named(file string) error {
	abs, _ := filepath.Abs(file)
	st, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return usageError(fmt.Errorf("%s: no such file (-f names the deploy script, or its folder)", abs))
	case err != nil:
		return err
	case !st.Mode().IsRegular():
		return usageError(fmt.Errorf("%s: not a regular file (-f names the deploy script, or its folder)", abs))
	}
	return nil
}

// scriptPos is a position in a script file as errors give it: "lib/x.star:2:49".
var scriptPos = regexp.MustCompile(`(?m)(^|[\s(])([^\s:()"'@]+\.star):(\d+(?::\d+)?)`)

// fromHere rewrites the positions in msg, relative to the bundle's root, to be relative
// to the working folder, as compilers give them: run from elsewhere (plan -f app/etc),
// lib/helpers.star:2:49 named no file an editor could open from there.
func fromHere(msg []byte, root string) []byte {
	wd, err := os.Getwd()
	if err != nil {
		return msg
	}
	absRoot, err := filepath.Abs(root)
	if err != nil || absRoot == wd {
		return msg
	}
	prefix := absRoot
	if rel, err := filepath.Rel(wd, absRoot); err == nil && !strings.HasPrefix(rel, "..") {
		prefix = rel
	}
	return scriptPos.ReplaceAllFunc(msg, func(m []byte) []byte {
		sub := scriptPos.FindSubmatch(m)
		name := string(sub[2])
		if filepath.IsAbs(name) {
			return m
		}
		if _, err := os.Stat(filepath.Join(absRoot, name)); err != nil {
			return m // not a file of the bundle's
		}
		return []byte(string(sub[1]) + filepath.Join(prefix, name) + ":" + string(sub[3]))
	})
}

// hereWriter writes what print() says with its positions from the working folder (see
// fromHere), as the errors of the same run give them.
type hereWriter struct {
	w    io.Writer
	root string
}

func (h hereWriter) Write(p []byte) (int, error) {
	if _, err := h.w.Write(fromHere(p, h.root)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// printScriptError prints err, and the Starlark call stack when the message does not
// already carry it.
func printScriptError(w io.Writer, err error) {
	msg := strings.TrimRight(err.Error(), "\n")
	fmt.Fprintln(w, msg)
	var ee *starlark.EvalError
	if errors.As(err, &ee) && !strings.Contains(msg, "Traceback") {
		fmt.Fprintln(w, strings.TrimRight(ee.Backtrace(), "\n"))
	}
}
