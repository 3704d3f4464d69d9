package stdlib_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/starvisor/starvisor/builtins"
	"github.com/starvisor/starvisor/builtins/startest"
	"github.com/starvisor/starvisor/stdlib"
)

func TestPythonStar(t *testing.T)   { startest.Run(t, "python_test.star", startest.Options{}) }
func TestVersionsStar(t *testing.T) { startest.Run(t, "versions_test.star", startest.Options{}) }
func TestSupervisordStar(t *testing.T) {
	startest.Run(t, "supervisord_test.star", startest.Options{})
}

// TestEveryLibraryLoads loads each shipped library on its own, so a broken file
// cannot hide behind one that no test happens to load.
func TestEveryLibraryLoads(t *testing.T) {
	files, err := fs.Glob(stdlib.FS, "*.star")
	if err != nil {
		t.Fatal(err)
	}
	libs := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.star") {
			continue
		}
		libs++
		t.Run(f, func(t *testing.T) {
			dir := t.TempDir()
			name := strings.TrimSuffix(f, ".star")
			script := "load(\"@stdlib//" + f + "\", \"" + name + "\")\nprint(" + name + ")\n"
			if err := os.WriteFile(filepath.Join(dir, "deploy.star"), []byte(script), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star"), Print: &strings.Builder{}})
			if err != nil {
				t.Fatal(err)
			}
			if p.Inputs.Files["@stdlib//"+f] == "" {
				t.Errorf("inputs lack @stdlib//%s: %v", f, p.Inputs.Files)
			}
		})
	}
	if libs < 2 {
		t.Fatalf("found %d libraries, want python.star and versions.star at least", libs)
	}
}
