package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/starvisor/starvisor/builtins"
	"github.com/starvisor/starvisor/engine/plan"
)

// corpusDir holds the supervisord configs of conformance/supervisord.
const corpusDir = "../../../conformance/supervisord/testdata"

// TestImportPlanEqualsLoad checks, for every config of the corpus, that the script
// `starvisor import` prints has the plan of supervisord.load_conf on the same file
// (compared as JSON, without positions and inputs).
func TestImportPlanEqualsLoad(t *testing.T) {
	corpus, err := filepath.Abs(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	confs, err := filepath.Glob(filepath.Join(corpus, "*.conf"))
	if err != nil || len(confs) < 30 {
		t.Fatalf("corpus: %d configs, %v", len(confs), err)
	}
	env := map[string]string{"HOME": "/home/tester", "APP_ROOT": "/ignored"}
	for _, conf := range confs {
		t.Run(strings.TrimSuffix(filepath.Base(conf), ".conf"), func(t *testing.T) {
			code, script, stderr := run(t, env, "import", conf)
			if code != ExitOK {
				t.Fatalf("import: exit %d\n%s", code, stderr)
			}
			bundle := t.TempDir()
			imported := evalScript(t, bundle, "imported.star", script, corpus, env)
			loaded := evalScript(t, bundle, "loaded.star",
				fmt.Sprintf("load(\"@stdlib//supervisord.star\", \"supervisord\")\nsupervisord.load_conf(%q)\n", conf), corpus, env)
			if a, b := planJSON(t, imported), planJSON(t, loaded); a != b {
				t.Errorf("plans differ\n--- imported script:\n%s\n--- imported plan:\n%s\n--- load_conf plan:\n%s", script, a, b)
			}
		})
	}
}

// TestImportWritesLoops pins the shape of the output on a config whose programs differ
// by one value.
func TestImportWritesLoops(t *testing.T) {
	code, out, stderr := run(t, map[string]string{}, "import", filepath.Join(corpusDir, "18_autorestart_values.conf"))
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"for name, autorestart in [\n    (\"ar_true\", True),",
		"        autorestart = autorestart,\n",
		"program(\n    name = \"ar_unexpected\",",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "program("); n != 2 {
		t.Errorf("%d program() calls, want 2 (one loop, one block):\n%s", n, out)
	}
}

func TestImportErrorNamesKey(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "s.conf")
	if err := os.WriteFile(conf, []byte("[program:x]\ncommand=/bin/x\nautorestrat=true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, nil, "import", conf)
	if code != ExitFailure || !strings.Contains(stderr, "s.conf: [program:x] autorestrat: not supported by starvisor") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func evalScript(t *testing.T, dir, name, src, lib string, env map[string]string) *plan.Plan {
	t.Helper()
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := builtins.Eval(context.Background(), builtins.Options{
		File:      file,
		Libs:      map[string]string{"corpus": lib},
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Print:     &bytes.Buffer{},
	})
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, src)
	}
	return p
}

// planJSON is the plan's JSON without what depends on the script text.
func planJSON(t *testing.T, p *plan.Plan) string {
	t.Helper()
	c := *p
	c.Entry, c.Inputs = "", plan.Inputs{}
	c.Programs = append([]plan.Program(nil), p.Programs...)
	for i := range c.Programs {
		c.Programs[i].Pos = ""
	}
	c.Groups = append([]plan.Group(nil), p.Groups...)
	for i := range c.Groups {
		c.Groups[i].Pos = ""
	}
	b, err := json.MarshalIndent(&c, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
