package startest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarktest"

	"github.com/starvisor/starvisor/builtins"
)

// Env is the environment scripts see through host.env in these tests.
var Env = map[string]string{"HOME": "/home/tester", "STARVISOR_TEST": "yes"}

// Options tunes a run; the zero value runs with builtins.Default().
type Options struct {
	Modules []builtins.Module // added to Default() and the assert module
	Libs    map[string]string // @NAME -> dir, relative dirs resolved against the test file's folder
}

// Run runs every chunk of the .star test file as a subtest. The file's folder is copied
// to a temporary bundle first (symlinks kept), so chunks can load their neighbours and
// each chunk runs as the same file name, keeping positions exact.
func Run(t *testing.T, file string, o Options) {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := ReadChunks(file, string(src))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := copyTree(filepath.Dir(file), dir); err != nil {
		t.Fatal(err)
	}
	libs := map[string]string{}
	for name, d := range o.Libs {
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		libs[name] = d
	}
	entry := filepath.Join(dir, filepath.Base(file))
	for _, c := range chunks {
		t.Run(fmt.Sprintf("line%d", c.Line), func(t *testing.T) {
			if err := os.WriteFile(entry, []byte(c.Source), 0o644); err != nil {
				t.Fatal(err)
			}
			mods := append(builtins.Default(), assertModule{t})
			mods = append(mods, o.Modules...)
			_, err := builtins.Eval(context.Background(), builtins.Options{
				File:    entry,
				Libs:    libs,
				Modules: mods,
				Print:   io.Discard,
				LookupEnv: func(k string) (string, bool) {
					v, ok := Env[k]
					return v, ok
				},
			})
			Check(t, filepath.Base(file), c.Want, err)
		})
	}
}

// Check compares an evaluation result with the expectation of a chunk of file.
func Check(t *testing.T, file string, want *Want, err error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error:\n%v", err)
	case want == nil:
		return
	case err == nil:
		t.Fatalf("%s:%d: want an error matching %q, got none", file, want.Line, want.Pattern)
	}
	if ok, rerr := regexp.MatchString(want.Pattern, err.Error()); rerr != nil || !ok {
		t.Fatalf("%s:%d: error does not match %q (%v):\n%v", file, want.Line, want.Pattern, rerr, err)
	}
	at := fmt.Sprintf("%s:%d:", file, want.Line)
	var be *builtins.Error
	if errors.As(err, &be) {
		if strings.HasPrefix(be.Pos+":", at) {
			return
		}
		for _, f := range be.Stack {
			if strings.HasPrefix(f, at) {
				return
			}
		}
	} else if strings.HasPrefix(err.Error(), at) {
		return
	}
	t.Fatalf("%s:%d: error is not reported at this line:\n%v", file, want.Line, err)
}

// assertModule gives scripts starlarktest's assert, reporting to the subtest's t.
type assertModule struct{ t *testing.T }

func (assertModule) Name() string { return "assert" }

func (m assertModule) Members() starlark.StringDict {
	env, err := starlarktest.LoadAssertModule()
	if err != nil {
		m.t.Fatal(err)
	}
	return starlark.StringDict{"assert": env["assert"]}
}

func (m assertModule) NewState(th *starlark.Thread) { starlarktest.SetReporter(th, m.t) }

// Interface guards.
var (
	_ builtins.Module = assertModule{}
	_ builtins.Stater = assertModule{}
)

// copyTree copies the files and symlinks under src into dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
	})
}
