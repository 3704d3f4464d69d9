package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/starvisor/starvisor/builtins"
	"github.com/starvisor/starvisor/engine/export"
	"github.com/starvisor/starvisor/engine/plan"
)

// TestSupervisordExportReadsBack: generated deploy scripts (quoting in commands and
// environment values, numprocs, groups, logs, every restart and stop setting that
// supervisord has) exported as supervisord.conf and read back by
// @stdlib//supervisord.star give the same processes, field by field. Needs no
// supervisord (TestSupervisordRoundTrip checks its parser on the fixture).
func TestSupervisordExportReadsBack(t *testing.T) {
	for seed := range 60 {
		rng := rand.New(rand.NewPCG(uint64(seed), 11))
		pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
		dir := t.TempDir()
		var script strings.Builder
		script.WriteString("supervisor(log_dir = \"log\", state_dir = \"run\")\n")
		groups := map[string][]string{}
		for i := range 1 + rng.IntN(4) {
			name := fmt.Sprintf("p%d", i)
			var kw []string
			kw = append(kw, fmt.Sprintf("name = %q", name))
			kw = append(kw, "command = "+pick(
				`["/bin/sleep", "100"]`,
				`["/bin/sh", "-c", "echo 'it''s' \"$HOME\" 100% ;done #x"]`,
				`"/usr/bin/env A=1 B='two words' /bin/true"`,
				`["/opt/app/run", "--name=a b", "--pct=50%", "--q=\"x\""]`,
				`["/opt/app/run", "--port=80{num:02}", "--slot", "{num}"]`)) // a pool's own
			if rng.IntN(2) == 0 {
				kw = append(kw, "env = "+pick(`{"A": "1"}`, `{"GREETING": "hello, world", "PCT": "50%"}`, `{"PATH": "/a:/b", "EMPTY": ""}`, `{"K": "a=b;c"}`, `{"SLOT": "s{num}"}`))
			}
			if rng.IntN(2) == 0 {
				kw = append(kw, "directory = "+pick(`"/tmp"`, `"/srv/app"`, `here()`, `"/srv/d{num}"`))
			}
			settings := [][]string{
				{"autostart", "True", "False"},
				{"autorestart", "True", "False", `"unexpected"`},
				{"exit_codes", "[0]", "[0, 2]", "[1, 3, 255]"},
				{"start_secs", "0", "1", "10"},
				{"start_retries", "0", "3", "-1"},
				{"stop_signal", `"TERM"`, `"INT"`, `"QUIT"`, `"KILL"`, `"HUP"`, `"USR1"`},
				{"stop_timeout", `"1s"`, `"30s"`, `"2m"`},
				{"stop_as_group", "True", "False"},
				{"kill_as_group", "True", "False"},
				{"priority", "1", "999", "500"},
				{"umask", `"022"`, `"077"`},
			}
			for _, s := range settings {
				if rng.IntN(2) == 0 {
					v := s[1+rng.IntN(len(s)-1)]
					if s[0] == "kill_as_group" && v == "False" && slices.Contains(kw, "stop_as_group = True") {
						continue // refused, as by supervisord: a group stopped together is killed together
					}
					kw = append(kw, s[0]+" = "+v)
				}
			}
			numprocs := rng.IntN(3) == 0
			if numprocs {
				kw = append(kw, fmt.Sprintf("numprocs = %d", 2+rng.IntN(2)), fmt.Sprintf("numprocs_start = %d", rng.IntN(3)),
					"process_name = "+pick(`"{name}_{num}"`, `"{name}-{num:02}"`))
			}
			logName := `"log/` + name + `.log"`
			if i%2 == 1 {
				logName = `"log/` + name + `_100%.log"` // supervisord expands log paths twice
			}
			if numprocs {
				logName = `"log/{process_name}.log"`
			}
			redirect := false
			switch rng.IntN(4) {
			case 0:
				kw = append(kw, "stdout = None")
			case 1:
				kw = append(kw, fmt.Sprintf("stdout = log(%s, max_bytes = %q, backups = %d)", logName, pick("1KB", "5MB", "0"), rng.IntN(5)))
			case 2:
				kw = append(kw, fmt.Sprintf("stdout = log(%s)", logName), "redirect_stderr = True")
				redirect = true
			}
			if !redirect && rng.IntN(4) == 0 {
				kw = append(kw, "stderr = None")
			}
			if rng.IntN(3) == 0 {
				g := pick("g1", "g2")
				groups[g] = append(groups[g], name)
			}
			script.WriteString("program(" + strings.Join(kw, ", ") + ")\n")
		}
		for g, members := range groups {
			list, _ := json.Marshal(members) // a JSON string list is a Starlark one
			fmt.Fprintf(&script, "group(name = %q, programs = %s, priority = %d)\n", g, list, 100+rng.IntN(900))
		}
		p := evalAt(t, dir, "deploy.star", script.String())
		res, err := export.Export("supervisord", p, export.Options{Name: "demo"})
		if err != nil {
			t.Fatalf("seed %d: export: %v\n%s", seed, err, script.String())
		}
		if err := export.Write(dir, res.Files); err != nil {
			t.Fatal(err)
		}
		back := evalAt(t, dir, "back.star", "load(\"@stdlib//supervisord.star\", \"supervisord\")\nsupervisord.load_conf(\"supervisord.conf\")\n")
		if a, b := processes(p), processes(back); a != b {
			conf, _ := os.ReadFile(filepath.Join(dir, "supervisord.conf"))
			t.Fatalf("seed %d: read back differs\n--- script:\n%s\n--- supervisord.conf:\n%s\n--- plan:\n%s\n--- read back:\n%s", seed, script.String(), conf, a, b)
		}
	}
}

func evalAt(t *testing.T, dir, name, src string) *plan.Plan {
	t.Helper()
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := builtins.Eval(context.Background(), builtins.Options{File: file, Print: &bytes.Buffer{}})
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, src)
	}
	return p
}

// processes is what supervisord can express of each process, as JSON: start_retries -1
// is written as 2147483647, and stop_as_group without kill_as_group with both (export
// reports both).
func processes(p *plan.Plan) string {
	type proc struct {
		Name, Group, Directory, Umask, Autorestart, StopSignal string
		Command                                                []string
		Env                                                    map[string]string
		Autostart, StopAsGroup, KillAsGroup, RedirectStderr    bool
		ExitCodes                                              []int
		StartSecs, StartRetries, Priority                      int
		StopTimeout                                            plan.Duration
		Stdout, Stderr                                         *plan.Log
	}
	var out []proc
	for _, pr := range p.Programs {
		if pr.Directory == p.Root {
			pr.Directory = "" // the same place: read back, a directory that is the root is left out
		}
		retries := pr.StartRetries
		if retries == -1 {
			retries = 2147483647
		}
		out = append(out, proc{pr.ProcessName, pr.Group, pr.Directory, pr.Umask, pr.Autorestart, pr.StopSignal,
			pr.Command, pr.Env, pr.Autostart, pr.StopAsGroup, pr.KillAsGroup || pr.StopAsGroup, pr.RedirectStderr,
			pr.ExitCodes, pr.StartSecs, retries, pr.Priority, pr.StopTimeout, pr.Stdout, pr.Stderr})
	}
	b, _ := json.MarshalIndent(out, "", " ")
	return string(b)
}
