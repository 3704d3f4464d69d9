package builtins_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/starvisor/starvisor/builtins"
)

// TestErrors evaluates each broken bundle in testdata/errors and checks the exact
// "file:line:col: message" line. The archive comment holds directives, $DIR standing
// for the bundle's temporary folder:
//
//	want: LINE          the exact first line of the error
//	want-prefix: TEXT   the first line starts with TEXT (when the position varies)
//	contains: TEXT      the whole error text holds TEXT (repeatable; stack lines)
//	entry: PATH         entry script (default deploy.star)
//	maxsteps: N / timeout: D / lib: NAME=DIR / symlink: PATH -> TARGET
func TestErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("got %d broken scripts, want at least 25", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dir := writeTxtar(t, string(txtar.Format(&txtar.Archive{Files: ar.Files})))
			o := builtins.Options{File: filepath.Join(dir, "deploy.star"), Libs: map[string]string{}}
			var want, wantPrefix string
			var contains []string
			for _, line := range strings.Split(string(ar.Comment), "\n") {
				key, val, ok := strings.Cut(line, ": ")
				if !ok {
					continue
				}
				val = strings.ReplaceAll(val, "$DIR", dir)
				switch key {
				case "want":
					want = val
				case "want-prefix":
					wantPrefix = val
				case "contains":
					contains = append(contains, val)
				case "entry":
					o.File = filepath.Join(dir, val)
				case "maxsteps":
					n, err := strconv.ParseUint(val, 10, 64)
					if err != nil {
						t.Fatal(err)
					}
					o.MaxSteps = n
				case "timeout":
					d, err := time.ParseDuration(val)
					if err != nil {
						t.Fatal(err)
					}
					o.Timeout, o.MaxSteps = d, 1<<62 // only the clock can stop it
				case "lib":
					name, d, _ := strings.Cut(val, "=")
					o.Libs[name] = filepath.Join(dir, d)
				case "symlink":
					link, target, _ := strings.Cut(val, " -> ")
					if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
						t.Fatal(err)
					}
				default:
					t.Fatalf("unknown directive %q", key)
				}
			}
			_, err = builtins.Eval(context.Background(), o)
			if err == nil {
				t.Fatal("evaluation succeeded, want an error")
			}
			first := strings.SplitN(err.Error(), "\n", 2)[0]
			if want != "" && first != want {
				t.Errorf("got  %s\nwant %s", first, want)
			}
			if wantPrefix != "" && !strings.HasPrefix(first, wantPrefix) {
				t.Errorf("got  %s\nwant prefix %s", first, wantPrefix)
			}
			for _, c := range contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error lacks %q:\n%s", c, err)
				}
			}
			if t.Failed() {
				t.Logf("whole error:\n%s", err)
			}
		})
	}
}
