// Package examples holds runnable bundles; this test evaluates each one and pins its plan.
package examples

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/diff"

	"github.com/starvisor/starvisor/builtins"
	"github.com/starvisor/starvisor/engine/plan"
)

// bundles are the examples and their entry scripts, relative to the bundle folder.
var bundles = []struct{ name, entry string }{
	{"quickstart", "deploy.star"},
	{"python-fleet", "etc/deploy.star"},
}

// generated are folders a bundle makes when set up or run; they are never part of its plan.
var generated = map[string]bool{"envs": true, "log": true, "run": true, "__pycache__": true}

// TestPlansMatchGolden evaluates each example in a fresh copy and compares its plan, with
// the bundle folder written as $ROOT, to testdata/NAME.plan.json. UPDATE_GOLDEN=1 rewrites.
func TestPlansMatchGolden(t *testing.T) {
	for _, b := range bundles {
		t.Run(b.name, func(t *testing.T) {
			dir := copyBundle(t, b.name, filepath.Join(tempDir(t), b.name))
			got := rootless(t, evalBundle(t, dir, b.entry), dir)
			golden := filepath.Join("testdata", b.name+".plan.json")
			if os.Getenv("UPDATE_GOLDEN") != "" {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("plan of %s differs from %s (UPDATE_GOLDEN=1 rewrites it):\n%s", b.name, golden, diff.Diff(golden, want, "got", got))
			}
		})
	}
}

// TestBundlesAreRelocatable copies each bundle to two folders of different names and
// depths: the plans must differ, and differ only in where the bundle lies.
func TestBundlesAreRelocatable(t *testing.T) {
	for _, b := range bundles {
		t.Run(b.name, func(t *testing.T) {
			tmp := tempDir(t)
			dirA := copyBundle(t, b.name, filepath.Join(tmp, "a", b.name))
			dirB := copyBundle(t, b.name, filepath.Join(tmp, "b", "deeper", "renamed"))
			rawA, rawB := evalBundle(t, dirA, b.entry), evalBundle(t, dirB, b.entry)
			if bytes.Equal(rawA, rawB) {
				t.Fatal("the two plans are identical: the bundle's folder does not show in its plan")
			}
			if bytes.Contains(rawB, []byte(dirA)) {
				t.Errorf("the plan of the copy in %s refers to the other copy %s", dirB, dirA)
			}
			if src, err := filepath.Abs(b.name); err == nil && bytes.Contains(rawA, []byte(src)) {
				t.Errorf("the plan of the copy in %s refers to the source folder %s", dirA, src)
			}
			normA, normB := rootless(t, rawA, dirA), rootless(t, rawB, dirB)
			if !bytes.Equal(normA, normB) {
				t.Errorf("the plans differ beyond their folders:\n%s", diff.Diff(dirA, normA, dirB, normB))
			}
		})
	}
}

// evalBundle evaluates a bundle with an empty host environment, so the plan does not
// depend on the machine running the test.
func evalBundle(t *testing.T, dir, entry string) []byte {
	t.Helper()
	p, err := builtins.Eval(context.Background(), builtins.Options{
		File:      filepath.Join(dir, entry),
		LookupEnv: func(string) (string, bool) { return "", false },
		Print:     io.Discard,
	})
	if err != nil {
		t.Fatalf("evaluate %s: %v", entry, err)
	}
	b, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rootless writes dir as $ROOT and recomputes each program's hash over the rewritten
// fields, since a hash covers the absolute paths it was computed from.
func rootless(t *testing.T, planJSON []byte, dir string) []byte {
	t.Helper()
	text := strings.ReplaceAll(string(planJSON), dir, "$ROOT")
	var p plan.Plan
	if err := json.Unmarshal([]byte(text), &p); err != nil {
		t.Fatal(err)
	}
	for i := range p.Programs {
		p.Programs[i].Hash = plan.HashProgram(p.Programs[i])
	}
	b, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tempDir is t.TempDir with symlinks resolved, so the paths in a plan start with it.
func tempDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// copyBundle copies the example folder src to dst, leaving out generated folders.
func copyBundle(t *testing.T, src, dst string) string {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir() && generated[d.Name()]:
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	return dst
}
