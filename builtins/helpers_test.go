package builtins_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/starvisor/starvisor/builtins"
	"github.com/starvisor/starvisor/builtins/startest"
	"github.com/starvisor/starvisor/engine/plan"
)

// writeTxtar writes the files of a txtar archive under a new temporary folder and returns it.
func writeTxtar(t testing.TB, archive string) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir()) // positions and paths compare with the real path
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range txtar.Parse([]byte(archive)).Files {
		p := filepath.Join(dir, f.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// evalTxtar evaluates deploy.star of a txtar bundle and fails the test on error.
func evalTxtar(t testing.TB, archive string) (*plan.Plan, string) {
	t.Helper()
	dir := writeTxtar(t, archive)
	p, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star")})
	if err != nil {
		t.Fatalf("eval: %v", err)
	}
	return p, dir
}

// runStar runs testdata/NAME.star, with @mylib bound to testdata/libroot.
func runStar(t *testing.T, name string) {
	t.Helper()
	startest.Run(t, "testdata/"+name+".star", startest.Options{Libs: map[string]string{"mylib": "libroot"}})
}
