package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/starvisor/starvisor/builtins"
	"github.com/starvisor/starvisor/engine/export"
	"github.com/starvisor/starvisor/engine/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fixture evaluates testdata/bundle/deploy.star.
func fixture(t *testing.T) *plan.Plan {
	t.Helper()
	abs, err := filepath.Abs("testdata/bundle/deploy.star")
	if err != nil {
		t.Fatal(err)
	}
	return evalFixture(t, abs)
}

// fixtureCopy evaluates a copy of the bundle in a temporary folder that has the log and
// run folders supervisord insists on.
func fixtureCopy(t *testing.T) *plan.Plan {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/bundle")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"log", "run"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return evalFixture(t, filepath.Join(dir, "deploy.star"))
}

func evalFixture(t *testing.T, abs string) *plan.Plan {
	t.Helper()
	p, err := builtins.Eval(context.Background(), builtins.Options{File: abs, Print: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func run(t *testing.T, format string, p *plan.Plan) export.Result {
	t.Helper()
	res, err := export.Export(format, p, export.Options{Name: "demo", LookPath: func(string) (string, error) { return "", exec.ErrNotFound }})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestGolden compares each format's files and problem lines with testdata/<format>.golden
// (the bundle's folder written as /BUNDLE).
func TestGolden(t *testing.T) {
	p := fixture(t)
	for _, format := range export.Formats {
		t.Run(format, func(t *testing.T) {
			res := run(t, format, p)
			var b bytes.Buffer
			if err := export.Print(&b, res.Files); err != nil {
				t.Fatal(err)
			}
			b.WriteString("# problems\n")
			for _, pr := range res.Problems {
				b.WriteString(pr.String() + "\n")
			}
			got := strings.ReplaceAll(b.String(), p.Root, "/BUNDLE")
			golden := filepath.Join("testdata", format+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the export (go test -update rewrites it):\n%s", golden, got)
			}
		})
	}
}

func TestWriteIsAtomicIntoDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	res := run(t, "systemd", fixture(t))
	if err := export.Write(dir, res.Files); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(res.Files) {
		t.Fatalf("%d files in %s, want %d", len(ents), dir, len(res.Files))
	}
	for _, f := range res.Files {
		data, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil || !bytes.Equal(data, f.Data) {
			t.Errorf("%s: %v, content equal %t", f.Name, err, bytes.Equal(data, f.Data))
		}
	}
}

func TestUnknownFormat(t *testing.T) {
	if _, err := export.Export("k8s", fixture(t), export.Options{}); err == nil || !strings.Contains(err.Error(), "unknown format") {
		t.Fatalf("got %v", err)
	}
}

// TestSystemdAnalyzeVerify runs systemd-analyze verify on the units; any line it prints
// about them fails the test.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	dir := t.TempDir()
	res := run(t, "systemd", fixture(t))
	if err := export.Write(dir, res.Files); err != nil {
		t.Fatal(err)
	}
	// Instances, not templates, are what verify can load.
	var units []string
	for _, f := range res.Files {
		if strings.HasSuffix(f.Name, ".target") {
			units = append(units, filepath.Join(dir, f.Name))
		}
	}
	for _, f := range res.Files {
		if strings.HasSuffix(f.Name, "@.service") {
			units = append(units, filepath.Join(dir, strings.Replace(f.Name, "@.", "@1.", 1)))
		}
	}
	cmd := exec.Command(sa, append([]string{"verify", "--man=no"}, units...)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":", "SYSTEMD_LOG_COLOR=0")
	out, err := cmd.CombinedOutput()
	if err != nil && bytes.Contains(out, []byte("System has not been booted with systemd")) {
		t.Skipf("systemd-analyze cannot run here: %s", out)
	}
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestNomadDecodesStrictly reads the job back into the API types, rejecting unknown
// fields, and checks Nomad's rules for a job.
func TestNomadDecodesStrictly(t *testing.T) {
	p := fixture(t)
	res := run(t, "nomad", p)
	if len(res.Files) != 1 || res.Files[0].Name != "demo.nomad.json" {
		t.Fatalf("files %v", res.Files)
	}
	dec := json.NewDecoder(bytes.NewReader(res.Files[0].Data))
	dec.DisallowUnknownFields()
	var j export.NomadJob
	if err := dec.Decode(&j); err != nil {
		t.Fatal(err)
	}
	job := j.Job
	if job == nil || job.ID == nil || *job.ID != "demo" || job.Type == nil || *job.Type != "service" {
		t.Fatalf("job ID/type: %+v", job)
	}
	seen := map[string]bool{}
	tasks := map[string]int{} // task name -> count of its group
	for _, tg := range job.TaskGroups {
		if tg.Name == nil || seen[*tg.Name] {
			t.Errorf("task group name missing or repeated: %v", tg.Name)
			continue
		}
		seen[*tg.Name] = true
		if tg.Count == nil || *tg.Count < 1 {
			t.Errorf("group %s: count %v", *tg.Name, tg.Count)
		}
		for _, task := range tg.Tasks {
			if task.Driver != "raw_exec" {
				t.Errorf("task %s: driver %q", task.Name, task.Driver)
			}
			if _, ok := task.Config["command"].(string); !ok {
				t.Errorf("task %s: no command", task.Name)
			}
			tasks[task.Name] = *tg.Count
		}
	}
	want := map[string]int{"web": 1, "worker": 3, "cron": 1, "mail": 1}
	for name, n := range want {
		if tasks[name] != n {
			t.Errorf("task %s: count %d, want %d (all: %v)", name, tasks[name], n, tasks)
		}
	}
	// cron and mail share group "jobs": mail depends on cron, so cron is a prestart sidecar.
	for _, tg := range job.TaskGroups {
		for _, task := range tg.Tasks {
			if task.Name == "cron" && (task.Lifecycle == nil || task.Lifecycle.Hook != "prestart" || !task.Lifecycle.Sidecar) {
				t.Errorf("cron: lifecycle %+v, want prestart sidecar", task.Lifecycle)
			}
			if task.Name == "web" {
				args, _ := task.Config["args"].([]any)
				if task.Config["command"] != "/bin/sh" || len(args) < 3 || args[2] != "/bin/sh" {
					t.Errorf("web: directory wrapper missing: %v", task.Config)
				}
			}
		}
	}
}

// Nomad refuses a job ID that holds a space (Job.Validate: "Job ID contains a space"):
// a bundle folder named "My Services" gave one. The ID has '-' for blanks, the Name
// keeps the folder's, and the change is said.
func TestNomadIDHasNoBlanks(t *testing.T) {
	p := fixture(t)
	res, err := export.Export("nomad", p, export.Options{Name: "My Services\tx", LookPath: func(string) (string, error) { return "", exec.ErrNotFound }})
	if err != nil {
		t.Fatal(err)
	}
	var j export.NomadJob
	if err := json.Unmarshal(res.Files[0].Data, &j); err != nil {
		t.Fatal(err)
	}
	if *j.Job.ID != "My-Services-x" || *j.Job.Name != "My Services\tx" || res.Files[0].Name != "My-Services-x.nomad.json" {
		t.Errorf("ID %q, Name %q, file %q", *j.Job.ID, *j.Job.Name, res.Files[0].Name)
	}
	said := false
	for _, pr := range res.Problems {
		said = said || pr.Field == "ID" && strings.Contains(pr.Why, `"My-Services-x"`)
	}
	if !said {
		t.Errorf("the ID's change is not said: %v", res.Problems)
	}
}

// Problems of several programs that say the same are one line naming them all.
func TestLinesGroupAlikeProblems(t *testing.T) {
	got := export.Lines([]export.Problem{
		{Format: "systemd", Program: "a", Field: "backoff", Why: "not mapped"},
		{Format: "systemd", Program: "a", Field: "ready", Why: "no equivalent"},
		{Format: "systemd", Program: "b", Field: "backoff", Why: "not mapped"},
		{Format: "systemd", Group: "g", Field: "priority", Why: "ignored"},
	})
	want := []string{
		`export systemd: programs "a", "b": backoff: not mapped`,
		`export systemd: program "a": ready: no equivalent`,
		`export systemd: group "g": priority: ignored`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A job (probe.exited) is done once it exited: a systemd oneshot that stays active
// (After= waits for its end; a dependent's restart does not run it again), a Nomad
// prestart task that is no sidecar (one was restarted until the allocation failed).
func TestJobsExportAsJobs(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "deploy.star")
	src := `program(name = "migrate", command = ["/bin/true"], ready = probe.exited(), autorestart = False)
program(name = "app", command = ["/bin/sleep", "1000"], depends_on = ["migrate"])
group(name = "g", programs = ["migrate", "app"])
`
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p := evalFixture(t, script)
	units := map[string]string{}
	for _, f := range run(t, "systemd", p).Files {
		units[f.Name] = string(f.Data)
	}
	checked := 0
	for name, unit := range units {
		switch {
		case strings.Contains(name, "migrate"):
			checked++
			if !strings.Contains(unit, "\nType=oneshot\nRemainAfterExit=yes\n") {
				t.Errorf("%s: want a oneshot that stays active:\n%s", name, unit)
			}
		case strings.Contains(name, "app"):
			checked++
			if !strings.Contains(unit, "\nType=simple\n") {
				t.Errorf("%s: want Type=simple:\n%s", name, unit)
			}
		}
	}
	if checked != 2 {
		t.Errorf("units %v: want one of migrate and one of app", slices.Collect(maps.Keys(units)))
	}
	var job struct {
		Job struct {
			TaskGroups []struct {
				Tasks []struct {
					Name      string
					Lifecycle *struct {
						Hook    string
						Sidecar bool
					}
				}
			}
		}
	}
	if err := json.Unmarshal(run(t, "nomad", p).Files[0].Data, &job); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tg := range job.Job.TaskGroups {
		for _, task := range tg.Tasks {
			if task.Name == "migrate" {
				found = true
				if task.Lifecycle == nil || task.Lifecycle.Hook != "prestart" || task.Lifecycle.Sidecar {
					t.Errorf("migrate: lifecycle %+v, want prestart, no sidecar", task.Lifecycle)
				}
			}
		}
	}
	if !found {
		t.Error("no migrate task")
	}
}

// A value the systemd units write as it is (User=, WorkingDirectory=, a log path) may
// not hold a newline: user = "root\nExecStartPre=/bin/id" added that directive to the
// unit, exit 0. The export refuses, as the supervisord one does.
func TestSystemdRefusesNewlinesInValues(t *testing.T) {
	dir := t.TempDir()
	for _, kw := range []string{
		`user = "root\nExecStartPre=/bin/id"`,
		`directory = "/tmp\nUser=root"`,
		`stdout = log("log/a\nExecStartPre=/bin/id.log")`,
	} {
		script := filepath.Join(dir, "deploy.star")
		src := "program(name = \"a\", command = [\"/bin/true\"], " + kw + ")\n"
		if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := builtins.Eval(context.Background(), builtins.Options{File: script, Print: &bytes.Buffer{}})
		if err != nil {
			continue // refused already by the script's validation: nothing to export
		}
		res, err := export.Export("systemd", p, export.Options{Name: "demo", LookPath: func(string) (string, error) { return "", exec.ErrNotFound }})
		if err == nil || !strings.Contains(err.Error(), "holds a control character") {
			for _, f := range res.Files {
				t.Logf("%s:\n%s", f.Name, f.Data)
			}
			t.Errorf("%s: %v, want a refusal", kw, err)
		}
	}
}

// A file written over one planted at its name (0666, or a symlink to one) is 0600 and
// its own: it took the planted file's mode, and another user read and edited root's
// export, secrets and all.
func TestWriteFileTakesNoModeFromThePlanted(t *testing.T) {
	dir := t.TempDir()
	planted := filepath.Join(dir, "planted")
	must(t, os.WriteFile(planted, []byte("theirs\n"), 0o666))
	must(t, os.Chmod(planted, 0o666))
	must(t, os.Symlink(planted, filepath.Join(dir, "supervisord.conf")))
	must(t, os.WriteFile(filepath.Join(dir, "web.service"), nil, 0o666))
	must(t, os.Chmod(filepath.Join(dir, "web.service"), 0o666))
	must(t, export.Write(dir, []export.File{{Name: "supervisord.conf", Data: []byte("secret\n")}, {Name: "web.service", Data: []byte("secret\n")}}))
	for _, name := range []string{"supervisord.conf", "web.service"} {
		st, err := os.Lstat(filepath.Join(dir, name))
		must(t, err)
		if !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 { // the link replaced, not followed
			t.Errorf("%s: %v, want a regular file 0600", name, st.Mode())
		}
	}
	if b, err := os.ReadFile(planted); err != nil || string(b) != "theirs\n" {
		t.Errorf("the planted file: %q, %v", b, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A pool whose instances differ otherwise than %i spells their number ("80{num:02}" past
// ten: %i is never zero-padded) gets a unit file per instance, which systemd takes over
// the template: one template gave all twelve the first one's port.
func TestSystemdUnitPerInstanceWhenPadded(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "deploy.star")
	must(t, os.WriteFile(script, []byte(`program(name = "web", command = ["/bin/sleep", "80{num:02}"], numprocs = 12)`+"\n"), 0o644))
	res := run(t, "systemd", evalFixture(t, script))
	units := map[string]string{}
	for _, f := range res.Files {
		units[f.Name] = string(f.Data)
	}
	if _, ok := units["demo-web@.service"]; ok {
		t.Error("a template for instances it cannot spell")
	}
	for _, n := range []int{0, 5, 11} {
		u := units[fmt.Sprintf("demo-web@%d.service", n)]
		if want := fmt.Sprintf("\nExecStart=/bin/sleep 80%02d\n", n); !strings.Contains(u, want) {
			t.Errorf("instance %d: no %q in:\n%s", n, want, u)
		}
	}
	if !strings.Contains(units["demo.target"], "demo-web@11.service") {
		t.Errorf("target:\n%s", units["demo.target"])
	}
}

// A secret in a program's env goes into the unit's Environment=, which systemctl show
// gives any user: said among what the export cannot keep as it was.
func TestSystemdSaysSecretsInEnvironment(t *testing.T) {
	script := filepath.Join(t.TempDir(), "deploy.star")
	src := "program(name = \"a\", command = [\"/bin/true\"], env = {\"DB_PASSWORD\": \"pw\", \"MODE\": \"prod\"})\n"
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := builtins.Eval(context.Background(), builtins.Options{File: script, Print: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := export.Export("systemd", p, export.Options{Name: "demo", LookPath: func(string) (string, error) { return "", exec.ErrNotFound }})
	if err != nil {
		t.Fatal(err)
	}
	var said []string
	for _, pb := range res.Problems {
		said = append(said, pb.String())
	}
	if !slices.ContainsFunc(said, func(s string) bool {
		return strings.Contains(s, "DB_PASSWORD in Environment=, which systemctl show gives any user") && !strings.Contains(s, "MODE")
	}) {
		t.Errorf("problems: %q", said)
	}
}
