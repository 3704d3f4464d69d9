package builtins

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Each process of a numprocs program gets its own number and name where the command,
// the env values and the directory say {num} or {process_name}; other braces stay.
func TestInstanceTokensExpand(t *testing.T) {
	dir := t.TempDir()
	src := `program(name = "http", command = ["serve", "--port", "80{num:02}", "--name={process_name}", "{}"], ` +
		`numprocs = 2, numprocs_start = 1, env = {"PORT": "80{num}", "J": "{\"a\": 1}"}, directory = "data/{num}-{process_name}")` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "deploy.star"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Eval(context.Background(), Options{File: filepath.Join(dir, "deploy.star")})
	if err != nil {
		t.Fatal(err)
	}
	for i, pr := range p.Programs {
		num := []string{"01", "02"}[i]
		name := []string{"http_1", "http_2"}[i]
		if want := []string{"serve", "--port", "80" + num, "--name=" + name, "{}"}; !slices.Equal(pr.Command, want) {
			t.Errorf("%s: command %q, want %q", pr.ProcessName, pr.Command, want)
		}
		if pr.Env["PORT"] != "80"+num[1:] || pr.Env["J"] != `{"a": 1}` {
			t.Errorf("%s: env %q", pr.ProcessName, pr.Env)
		}
		if want := filepath.Join(dir, "data", num[1:]+"-"+name); pr.Directory != want {
			t.Errorf("%s: directory %q, want %q", pr.ProcessName, pr.Directory, want)
		}
	}
}

// The plan tells a variable read unset from one read empty: inputs.unset.
func TestInputsRecordUnsetVariables(t *testing.T) {
	dir := t.TempDir()
	src := `program(name = "a", command = ["x", host.env("EMPTY", "d1"), host.env("NOPE", "d2")])` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "deploy.star"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"EMPTY": ""}
	p, err := Eval(context.Background(), Options{File: filepath.Join(dir, "deploy.star"),
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Inputs.Unset, []string{"NOPE"}) || p.Inputs.Env["EMPTY"] != "" || p.Inputs.Env["NOPE"] != "" {
		t.Errorf("inputs %+v", p.Inputs)
	}
}

// A pool's ready probe is each process's own where it says {num} or {process_name}:
// probe.tcp's port given as a string, probe.http's URL, probe.exec's command.
func TestInstanceTokensInProbes(t *testing.T) {
	dir := t.TempDir()
	src := `program(name = "t", command = ["serve", "80{num:02}"], numprocs = 2, numprocs_start = 1, ready = probe.tcp("80{num:02}"))
program(name = "h", command = ["serve"], numprocs = 2, ready = probe.http("http://127.0.0.1:81{num:02}/{process_name}"))
program(name = "e", command = ["serve"], numprocs = 2, ready = probe.exec(["check", "--slot={num}", "{}"]))
program(name = "one", command = ["serve"], ready = probe.tcp(8080))
`
	if err := os.WriteFile(filepath.Join(dir, "deploy.star"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Eval(context.Background(), Options{File: filepath.Join(dir, "deploy.star")})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, pr := range p.Programs {
		r := pr.Ready
		got[pr.ProcessName] = fmt.Sprintf("%d %s %q", r.Port, r.URL, r.Command)
	}
	want := map[string]string{
		"t_1": `8001  []`, "t_2": `8002  []`,
		"h_0": `0 http://127.0.0.1:8100/h_0 []`, "h_1": `0 http://127.0.0.1:8101/h_1 []`,
		"e_0": `0  ["check" "--slot=0" "{}"]`, "e_1": `0  ["check" "--slot=1" "{}"]`,
		"one": `8080  []`,
	}
	if !maps.Equal(got, want) {
		t.Errorf("probes %q, want %q", got, want)
	}
}
