package export_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/starvisor/starvisor/engine/export"
	"github.com/starvisor/starvisor/engine/plan"
)

// TestSupervisordRoundTrip reads the exported file with supervisord's own parser
// (conformance/supervisord/dump.py) and compares every process with the plan.
func TestSupervisordRoundTrip(t *testing.T) {
	python := supervisordPython(t)
	p := fixtureCopy(t)
	res := run(t, "supervisord", p)
	readBySupervisord(t, python, p, res, "QUOTE") // reported as not expressible
	if len(res.Problems) == 0 {
		t.Error("the fixture has fields supervisord cannot express; none reported")
	}
}

// TestSupervisordRoundTripPercent: a % in a log path (here in the bundle's folder name)
// is read back by supervisord as it was (and the text after a pool's number, " %.log",
// which was dropped as it starts with a blank). It expands stdout_logfile and stderr_logfile
// twice: written %% as in other keys, supervisord refused the file ("%(here)s" in the
// folder name expanded again, "100%" badly formatted).
func TestSupervisordRoundTripPercent(t *testing.T) {
	python := supervisordPython(t)
	dir := filepath.Join(t.TempDir(), "100% %(here)s")
	for _, d := range []string{"log", "run", "logs dir"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := evalAt(t, dir, "deploy.star", `
supervisor(log_dir = "log", state_dir = "run")
program(name = "pct", command = ["/bin/echo", "50%", "%(here)s"], env = {"P": "1%"},
    stdout = log("logs dir/p%c é.log"), stderr = log("log/e%%(here)s.log"))
program(name = "pool", command = ["/bin/sleep", "1{num}"], numprocs = 2, process_name = "w%{num}",
    stdout = log("log/{process_name} %.log"), redirect_stderr = True)
`)
	readBySupervisord(t, python, p, run(t, "supervisord", p))
}

// TestSupervisordRoundTripNames: program names that need quoting in environment= (the
// STARVISOR_* names the export adds) or escaping are read back by supervisord, and by
// load_conf. A name with a " in it made supervisord refuse the whole file, through
// STARVISOR_PROCESS_NAME and the %(group_name)s it expanded before splitting the line.
func TestSupervisordRoundTripNames(t *testing.T) {
	python := supervisordPython(t)
	dir := t.TempDir()
	for _, d := range []string{"log", "run"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var script strings.Builder
	script.WriteString("supervisor(log_dir = \"log\", state_dir = \"run\")\n")
	for _, n := range []string{`a"b`, `a'b`, `a%b`, `a;b`, `a#b`, `a$b`, `q'"q`, `prög`} {
		fmt.Fprintf(&script, "program(name = %q, command = [\"/bin/sleep\", \"1\"])\n", n)
	}
	script.WriteString(`program(name = "p\"%", command = ["/bin/sleep", "{num}"], numprocs = 2, process_name = "p\"%{num}")` + "\n")
	script.WriteString(`group(name = "g", programs = ["a\"b", "a%b"])` + "\n")
	p := evalAt(t, dir, "deploy.star", script.String())
	res := run(t, "supervisord", p)
	readBySupervisord(t, python, p, res, `q'"q:STARVISOR_PROCESS_NAME`, `q'"q:STARVISOR_GROUP_NAME`)
	var said []string
	for _, pr := range res.Problems {
		said = append(said, pr.String())
	}
	for _, want := range []string{
		`export supervisord: program "q'\"q": env: STARVISOR_PROCESS_NAME: value cannot be quoted for supervisord; left out`,
		`export supervisord: program "q'\"q": env: STARVISOR_GROUP_NAME: value cannot be quoted for supervisord; left out`,
	} {
		if !slices.Contains(said, want) {
			t.Errorf("not said: %s\nsaid: %q", want, said)
		}
	}
	if err := export.Write(dir, res.Files); err != nil {
		t.Fatal(err)
	}
	back := evalAt(t, dir, "back.star", "load(\"@stdlib//supervisord.star\", \"supervisord\")\nsupervisord.load_conf(\"supervisord.conf\")\n")
	if a, b := processes(p), processes(back); a != b {
		t.Errorf("read back differs\n--- plan:\n%s\n--- read back:\n%s", a, b)
	}
}

// supervisordPython is the python that runs supervisord (its #! line), whose parser
// dump.py calls; the test is skipped without one.
func supervisordPython(t *testing.T) string {
	t.Helper()
	sv, err := exec.LookPath("supervisord")
	if err != nil {
		t.Skip("supervisord is not installed (apt-get install supervisor): no parser to round-trip through")
	}
	data, err := os.ReadFile(sv)
	if err != nil {
		t.Skipf("cannot read %s: %v", sv, err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if !strings.HasPrefix(line, "#!") || len(fields) == 0 {
		t.Skipf("%s has no #! line", sv)
	}
	return fields[0]
}

// readBySupervisord writes res, reads it with supervisord's parser and compares every
// process with p's; skipEnv are env names the export reported it left out.
func readBySupervisord(t *testing.T, python string, p *plan.Plan, res export.Result, skipEnv ...string) {
	t.Helper()
	dir := t.TempDir()
	if err := export.Write(dir, res.Files); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "supervisord.conf")
	out, err := exec.Command(python, "../../conformance/supervisord/dump.py", conf).Output()
	if err != nil {
		data, _ := os.ReadFile(conf)
		t.Fatalf("supervisord's parser: %v %s\n%s", err, exitStderr(err), data)
	}
	var read map[string][]map[string]any
	if err := json.Unmarshal(out, &read); err != nil {
		t.Fatal(err)
	}
	got := read[conf]
	if len(got) != len(p.Programs) {
		t.Fatalf("supervisord reads %d processes, the plan has %d", len(got), len(p.Programs))
	}
	// A dependent's priority is above its dependencies' (supervisord has no depends_on).
	prio := map[string]int{}
	for _, pr := range p.Programs {
		v := pr.Priority
		for _, d := range pr.DependsOn {
			v = max(v, prio[d]+1)
		}
		prio[pr.Name] = v
	}
	for _, w := range got {
		name := w["name"].(string)
		pr, ok := p.Lookup(name)
		if !ok {
			t.Errorf("supervisord process %q is not in the plan", name)
			continue
		}
		check := func(field string, plan, sup any) {
			t.Helper()
			pj, _ := json.Marshal(plan)
			sj, _ := json.Marshal(sup)
			if string(pj) != string(sj) {
				t.Errorf("%s: %s: plan %s, supervisord %s", name, field, pj, sj)
			}
		}
		group := pr.Group
		if group == "" {
			group = pr.Name
		}
		check("group", group, w["group"])
		check("command", pr.Command, w["command"])
		dir := p.Root // under supervisord -n too, where [supervisord] directory= does not count
		if pr.Directory != "" {
			dir = pr.Directory
		}
		check("directory", dir, w["directory"])
		env := map[string]string{"STARVISOR_PROCESS_NAME": pr.ProcessName, "STARVISOR_GROUP_NAME": group} // as the engine sets them
		for k, v := range pr.Env {
			env[k] = v
		}
		for _, k := range skipEnv { // NAME, or PROCESS:NAME for one process
			if own, ok := strings.CutPrefix(k, pr.ProcessName+":"); ok {
				delete(env, own)
			} else if !strings.Contains(k, ":") {
				delete(env, k)
			}
		}
		check("env", env, w["env"])
		umask := any(nil)
		if pr.Umask != "" {
			umask = 0o22
		}
		check("umask", umask, w["umask"])
		retries := pr.StartRetries
		if retries == -1 {
			retries = math.MaxInt32
		}
		for _, c := range []struct {
			field     string
			plan, sup any
		}{
			{"autostart", pr.Autostart, w["autostart"]},
			{"autorestart", pr.Autorestart, w["autorestart"]},
			{"exit_codes", pr.ExitCodes, w["exitcodes"]},
			{"start_secs", pr.StartSecs, w["startsecs"]},
			{"start_retries", retries, w["startretries"]},
			{"stop_signal", pr.StopSignal, w["stopsignal"]},
			{"stop_timeout", int(pr.StopTimeout.D().Seconds()), w["stopwaitsecs"]},
			{"stop_as_group", pr.StopAsGroup, w["stopasgroup"]},
			{"kill_as_group", pr.KillAsGroup, w["killasgroup"]},
			{"priority", prio[pr.Name], w["priority"]},
			{"redirect_stderr", pr.RedirectStderr, w["redirect_stderr"]},
		} {
			check(c.field, c.plan, c.sup)
		}
		for _, s := range []string{"stdout", "stderr"} {
			l := pr.Stdout
			if s == "stderr" {
				l = pr.Stderr
			}
			if l == nil {
				check(s, nil, w[s+"_logfile"])
				continue
			}
			check(s, []any{l.Path, l.MaxBytes, l.Backups}, []any{w[s+"_logfile"], w[s+"_logfile_maxbytes"], w[s+"_logfile_backups"]})
		}
	}
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// supervisor(minfds) is supervisord's own [supervisord] minfds=, which import reads
// back: it was dropped without a word.
func TestSupervisordKeepsMinFDs(t *testing.T) {
	p := fixtureCopy(t)
	p.Supervisor.MinFDs = 4096
	res := run(t, "supervisord", p)
	for _, f := range res.Files {
		if f.Name == "supervisord.conf" {
			if !strings.Contains(string(f.Data), "\nminfds=4096\n") {
				t.Fatalf("no minfds=4096 in:\n%s", f.Data)
			}
			return
		}
	}
	t.Fatal("no supervisord.conf")
}

// supervisor(minfds) is each unit's LimitNOFILE= for systemd, and said for Nomad, which
// cannot set it: both dropped it without a word.
func TestOtherFormatsKeepOrSayMinFDs(t *testing.T) {
	p := fixtureCopy(t)
	p.Supervisor.MinFDs = 4096
	units := 0
	for _, f := range run(t, "systemd", p).Files {
		if strings.HasSuffix(f.Name, ".service") {
			units++
			if !strings.Contains(string(f.Data), "\nLimitNOFILE=4096\n") {
				t.Errorf("%s: no LimitNOFILE=4096 in:\n%s", f.Name, f.Data)
			}
		}
	}
	if units == 0 {
		t.Fatal("no unit")
	}
	said := false
	for _, pb := range run(t, "nomad", p).Problems {
		said = said || strings.Contains(pb.Why, "minfds = 4096")
	}
	if !said {
		t.Error("nomad: minfds not said")
	}
}

// A bundle deep enough that its socket path is longer than a unix socket address runs
// under starvisor (its daemon binds through /proc/self/fd), but supervisord cannot bind
// it: said, with the way out. It was exported without a word.
func TestSupervisordSaysLongSocketPath(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		said bool
	}{
		{"/srv/" + strings.Repeat("d", 100-len("/srv/")-len("/supervisor.sock")+7), false}, // 107 bytes
		{"/srv/" + strings.Repeat("d", 100-len("/srv/")-len("/supervisor.sock")+8), true},  // 108
	} {
		p := fixture(t)
		p.Supervisor.StateDir = tc.dir
		res := run(t, "supervisord", p)
		said := false
		for _, pr := range res.Problems {
			if pr.Field == "unix_http_server" && strings.Contains(pr.Why, "cannot bind a unix socket path over 107") && strings.Contains(pr.Why, "serverurl=") {
				said = true
			}
		}
		if said != tc.said {
			t.Errorf("socket path of %d bytes: said %v, want %v (%v)", len(tc.dir)+len("/supervisor.sock"), said, tc.said, res.Problems)
		}
	}
}
