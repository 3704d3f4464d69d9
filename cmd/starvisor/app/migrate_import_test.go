package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/matryer/is"

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
	// A copy of the corpus takes the scripts written with -o, next to their configs.
	copied := t.TempDir()
	if err := os.CopyFS(copied, os.DirFS(corpus)); err != nil {
		t.Fatal(err)
	}
	for _, conf := range confs {
		t.Run(strings.TrimSuffix(filepath.Base(conf), ".conf"), func(t *testing.T) {
			code, script, stderr := run(t, env, "import", conf)
			if code != ExitOK {
				t.Fatalf("import: exit %d\n%s", code, stderr)
			}
			bundle := t.TempDir()
			imported := evalScript(t, bundle, "imported.star", script, corpus, env)
			loaded := evalScript(t, bundle, "loaded.star",
				fmt.Sprintf(loadConfScript, conf, conf), corpus, env)
			if a, b := planJSON(t, imported), planJSON(t, loaded); a != b {
				t.Errorf("plans differ\n--- imported script:\n%s\n--- imported plan:\n%s\n--- load_conf plan:\n%s", script, a, b)
			}

			conf := filepath.Join(copied, filepath.Base(conf))
			name := strings.TrimSuffix(filepath.Base(conf), ".conf") + ".star"
			if a, b := planJSON(t, importOut(t, conf, name, env)), planJSON(t, loadConf(t, conf, env)); a != b {
				t.Errorf("with -o, plans differ\n--- imported plan:\n%s\n--- load_conf plan:\n%s", a, b)
			}
		})
	}
}

// TestImportOutFollowsBundle: written with -o next to its config, the script names the
// bundle's paths through here(), so it still describes the bundle after a move.
func TestImportOutFollowsBundle(t *testing.T) {
	conf, err := os.ReadFile(filepath.Join(corpusDir, "34_here_everywhere.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf = append(conf, `
[program:many]
command=/bin/sleep 1
process_name=%(program_name)s_%(process_num)d
numprocs=2
stdout_logfile=%(here)s/log/%(process_num)d.log
environment=PYTHONPATH="%(here)s/a:%(here)s/b/../c"

[program:alpha]
command=/bin/sleep 2
stdout_logfile=%(here)s/logs/%(program_name)s.log

[program:beta]
command=/bin/sleep 2
stdout_logfile=%(here)s/logs/%(program_name)s.log
`...)
	top := t.TempDir()
	old, moved := filepath.Join(top, "old"), filepath.Join(top, "moved%d") // a % in the path is no format
	if err := os.Mkdir(old, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "supervisord.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	script := string(importOutText(t, filepath.Join(old, "supervisord.conf"), "deploy.star", nil))
	for _, want := range []string{
		`command = [here("bin/local"), "--data=" + here("data")],`,
		`stdout = log(here("log/local.log")),`,
		`"PYTHONPATH": here("a") + ":" + here() + "/b/../c"`, // here() would clean "b/../c"
		`stdout = log(here("log/{num}.log")),`,
		`load_conf(here("supervisord.conf"))`,
		`stdout = log(here("logs/%s.log" % name)),`, // formatted inside here(): the path may hold a %
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(script, "directory =") { // the script's own folder: where it runs anyway
		t.Errorf("script names the directory it runs in anyway:\n%s", script)
	}
	// The config itself does not move with a % in its folder: supervisord expands the
	// log paths twice, and reads %(here)s's % there as a format.
	loaded := planJSON(t, loadConf(t, filepath.Join(old, "supervisord.conf"), nil))
	if err := os.Rename(old, moved); err != nil {
		t.Fatal(err)
	}
	p := evalScript(t, moved, "deploy.star", script, moved, nil)
	hash := regexp.MustCompile(`"hash": "[^"]*"`) // of the old paths
	if a, b := hash.ReplaceAllString(planJSON(t, p), ""), hash.ReplaceAllString(strings.ReplaceAll(loaded, old, moved), ""); a != b {
		t.Errorf("after the move, plans differ\n--- imported plan:\n%s\n--- load_conf plan:\n%s", a, b)
	}
}

// A value that is one path (directory, log file, argument) is one here(...), blanks and
// all: here("work") + " dir/données" was the same value, but read as if "work" were the
// folder. Words are split only where they are words.
func TestImportOutWholePaths(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "My Services", "bundle")
	for _, d := range []string{"work dir/données", "log files"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "supervisord.conf")
	if err := os.WriteFile(conf, []byte(`[program:show]
command=/usr/bin/python3 -u "%(here)s/bin dir/show args.py" "--data=%(here)s/data" "%(here)s/a b:%(here)s/c"
directory=%(here)s/work dir/données
stdout_logfile=%(here)s/log files/spacey out.log
stderr_logfile=%(here)s/log files/err:1.log
`), 0o644); err != nil {
		t.Fatal(err)
	}
	p := importOut(t, conf, "deploy.star", nil)
	if a, b := planJSON(t, p), planJSON(t, loadConf(t, conf, nil)); a != b {
		t.Errorf("plans differ\n--- imported plan:\n%s\n--- load_conf plan:\n%s", a, b)
	}
	script, _ := os.ReadFile(filepath.Join(dir, "deploy.star"))
	for _, want := range []string{
		`command = ["/usr/bin/python3", "-u", here("bin dir/show args.py"), "--data=" + here("data"), here("a") + " b:" + here("c")],`,
		`directory = here("work dir/données"),`,
		`stdout = log(here("log files/spacey out.log")),`,
		`stderr = log(here("log files/err:1.log")),`,
	} {
		if !strings.Contains(string(script), want) {
			t.Errorf("script lacks %s:\n%s", want, script)
		}
	}
}

// TestImportHereOnlyInsideTheFolder: only whole path words are written with here().
func TestImportHereOnlyInsideTheFolder(t *testing.T) {
	r := &render{here: "/srv/app"}
	for in, want := range map[string]string{
		"/srv/app":                      `here()`,
		"/srv/app/":                     `here() + "/"`,
		"/srv/app/bin/x":                `here("bin/x")`,
		"/srv/app2/x":                   `"/srv/app2/x"`,
		"/x/srv/app":                    `"/x/srv/app"`,
		"/srv/apps:/srv/app/lib":        `"/srv/apps:" + here("lib")`,
		"--conf=/srv/app/a.ini -v":      `"--conf=" + here("a.ini") + " -v"`,
		"/srv/app/./a":                  `here() + "/./a"`,
		"relative/srv/app":              `"relative/srv/app"`,
		"no path at all":                `"no path at all"`,
		`say "/srv/app/q"`:              `"say \"" + here("q") + "\""`,
		"/srv/app/log/api_{num:02}.log": `here("log/api_{num:02}.log")`, // a template's : is no path separator
		"/srv/app/a:/srv/app/b":         `here("a") + ":" + here("b")`,
	} {
		if got := r.str(in); got != want {
			t.Errorf("str(%q) = %s, want %s", in, got, want)
		}
	}
	if got := (&render{}).str("/srv/app/x"); got != `"/srv/app/x"` {
		t.Errorf("without -o: %s", got)
	}
}

// importOutText runs `import -o` into conf's folder and returns the file written.
func importOutText(t *testing.T, conf, name string, env map[string]string) []byte {
	t.Helper()
	out := filepath.Join(filepath.Dir(conf), name)
	code, stdout, stderr := run(t, env, "import", conf, "-o", out)
	if code != ExitOK || stdout != "wrote "+out+"\n" {
		t.Fatalf("import -o: exit %d\n%s%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// importOut is the plan of the script `import -o` writes next to conf.
func importOut(t *testing.T, conf, name string, env map[string]string) *plan.Plan {
	t.Helper()
	src := importOutText(t, conf, name, env)
	return evalScript(t, filepath.Dir(conf), name, string(src), filepath.Dir(conf), env)
}

// loadConf is the plan of supervisord.load_conf(conf) from a script next to conf (the
// same bundle root as the imported script's).
func loadConf(t *testing.T, conf string, env map[string]string) *plan.Plan {
	t.Helper()
	return evalScript(t, filepath.Dir(conf), "loaded.star",
		fmt.Sprintf(loadConfScript, conf, conf), filepath.Dir(conf), env)
}

// stdout_logfile and stderr_logfile naming one file become redirect_stderr: two
// writers of one file would rotate it apart and lose lines (the plan refuses that).
func TestLoadConfOneFileForBothStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.conf")
	conf := "[program:app]\ncommand=/bin/sleep 1\nstdout_logfile=%(here)s/app.log\nstderr_logfile=%(here)s/app.log\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	pr := loadConf(t, path, nil).Programs[0]
	if !pr.RedirectStderr || pr.Stderr != nil || pr.Stdout == nil || pr.Stdout.Path != filepath.Join(filepath.Dir(path), "app.log") {
		t.Errorf("redirect_stderr %v, stdout %+v, stderr %+v", pr.RedirectStderr, pr.Stdout, pr.Stderr)
	}
}

// %%(here)s is a literal %(here)s in a config without [include], as supervisord reads
// it (expand_here, the raw replacement, runs only with one); %(here)s expands.
func TestLoadConfLiteralHere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.conf")
	if err := os.WriteFile(path, []byte("[program:a]\ncommand=/bin/echo %%(here)s %(here)s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := loadConf(t, path, nil).Programs[0].Command
	if want := []string{"/bin/echo", "%(here)s", filepath.Dir(path)}; !slices.Equal(got, want) {
		t.Errorf("command %q, want %q", got, want)
	}
}

// supervisord expands stdout_logfile and stderr_logfile twice (processes_from_section
// expands what its getter expanded): %%%% is one %, and %%(here)s there is here. Read
// once, both were kept with a % too many.
func TestLoadConfExpandsLogPathsTwice(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.conf")
	conf := "[program:a]\ncommand=/bin/echo 100%%\nstdout_logfile=%(here)s/100%%%%/a.log\nstderr_logfile=%(here)s/e%%(here)s.log\n" +
		"[program:p]\ncommand=/bin/sleep 1\nprocess_name=p%(process_num)d\nnumprocs=2\nstdout_logfile=%(here)s/%%%%%(process_num)02d.log\nstderr_logfile=NONE\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := loadConf(t, path, nil)
	got := map[string]string{}
	for _, pr := range p.Programs {
		got[pr.ProcessName+" command"] = strings.Join(pr.Command, " ")
		for s, l := range map[string]*plan.Log{"stdout": pr.Stdout, "stderr": pr.Stderr} {
			if l != nil {
				got[pr.ProcessName+" "+s] = strings.TrimPrefix(l.Path, dir)
			}
		}
	}
	want := map[string]string{
		"a command":  "/bin/echo 100%", // expanded once
		"a stdout":   "/100%/a.log",
		"a stderr":   "/e" + dir + ".log",
		"p0 command": "/bin/sleep 1",
		"p0 stdout":  "/%00.log",
		"p1 command": "/bin/sleep 1",
		"p1 stdout":  "/%01.log",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

// Byte counts are written in supervisord's units when they are whole ones.
func TestImportWritesSizes(t *testing.T) {
	script := importSame(t, "[program:a]\ncommand=/bin/a\nstdout_logfile=/tmp/a.log\nstdout_logfile_maxbytes=20MB\n"+
		"[program:b]\ncommand=/bin/b\nstdout_logfile=/tmp/b.log\nstdout_logfile_maxbytes=12345\n")
	for _, want := range []string{`"20MB"`, `12345`} { // in the loop's rows
		if !strings.Contains(string(script), want) {
			t.Errorf("script lacks %s:\n%s", want, script)
		}
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

// A loop variable named after an environment key is never a keyword, a reserved word
// or a name the loop's body calls (program, log, here, str, ...).
func TestImportLoopVariablesAreFree(t *testing.T) {
	for _, keys := range [][2]string{{"FROM", "LOG"}, {"PROGRAM", "ELIF"}, {"STR", "HERE"}, {"CLASS", "LEN"}} {
		var conf strings.Builder
		for i, name := range []string{"alpha", "beta"} {
			fmt.Fprintf(&conf, "[program:%s]\ncommand=/bin/sleep 1\nstdout_logfile=%%(here)s/logs/%%(program_name)s.log\n"+
				"environment=%s=\"a%d\",%s=\"b%d\"\n\n", name, keys[0], i, keys[1], i)
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "s.conf")
		if err := os.WriteFile(path, []byte(conf.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		p := importOut(t, path, "deploy.star", nil)
		if a, b := planJSON(t, p), planJSON(t, loadConf(t, path, nil)); a != b {
			t.Errorf("plans differ\n--- imported plan:\n%s\n--- load_conf plan:\n%s", a, b)
		}
		if script, _ := os.ReadFile(filepath.Join(dir, "deploy.star")); !strings.Contains(string(script), "for name, ") {
			t.Errorf("no loop:\n%s", script)
		}
	}
}

// Values built from the name: twice in a value, it is formatted twice; a name with a
// % in it is no template (a loop column instead).
func TestImportNameInValues(t *testing.T) {
	for conf, want := range map[string]string{
		"[program:web]\ncommand=/bin/sleep 1\nstdout_logfile=/var/log/web/web.log\n\n" +
			"[program:api]\ncommand=/bin/sleep 1\nstdout_logfile=/var/log/api/api.log\n": `log("/var/log/%s/%s.log" % (name, name))`,
		"[program:w%a]\ncommand=/bin/sleep 1\nstdout_logfile=/var/log/w%%%%a.log\n\n" + // expanded twice by supervisord
			"[program:w%b]\ncommand=/bin/sleep 1\nstdout_logfile=/var/log/w%%%%b.log\n": `("w%b", "/var/log/w%b.log"),`,
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "s.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		p := importOut(t, path, "deploy.star", nil)
		if a, b := planJSON(t, p), planJSON(t, loadConf(t, path, nil)); a != b {
			t.Errorf("plans differ\n--- imported plan:\n%s\n--- load_conf plan:\n%s", a, b)
		}
		script, _ := os.ReadFile(filepath.Join(dir, "deploy.star"))
		if !strings.Contains(string(script), want) {
			t.Errorf("script lacks %s:\n%s", want, script)
		}
	}
}

func TestImportErrorNamesKey(t *testing.T) {
	for conf, want := range map[string]string{
		"[program:x]\ncommand=/bin/x\nautorestrat=true\n": "s.conf: [program:x] autorestrat: not supported by starvisor",
		// supervisord runs g:a and h:a; starvisor's process names are unique.
		"[program:a]\ncommand=/bin/a\n[group:g]\nprograms=a\n[group:h]\nprograms=a\n": "s.conf: [group:h] programs: program a is also in [group:g]",
	} {
		path := filepath.Join(t.TempDir(), "s.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := run(t, nil, "import", path)
		if code != ExitFailure || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr %q, want %q", code, stderr, want)
		}
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

// TestImportRandomConfigs: for generated configs mixing the shapes the renderer treats
// specially (loops, name templates, here() paths, numprocs, quoting), the script import
// writes evaluates to load_conf's plan.
func TestImportRandomConfigs(t *testing.T) {
	names := []string{"web", "api", "worker_1", "a.b", "x-y", "web2", "q"}
	for i := range 60 {
		var conf strings.Builder
		order := rand.New(rand.NewPCG(uint64(i), 7)).Perm(len(names))[:2+i%5]
		for k, idx := range order {
			nm := names[idx]
			// Most programs share their choices, so the renderer makes loops of them.
			seed := uint64(i)
			if k%3 == 2 {
				seed += 1000 * uint64(k)
			}
			rng := rand.New(rand.NewPCG(seed, 1))
			pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
			fmt.Fprintf(&conf, "[program:%s]\n", nm)
			fmt.Fprintf(&conf, "command=%s\n", pick("/bin/sleep 60", "%(here)s/bin/"+nm+" --name="+nm, "/usr/bin/env A='x y' "+nm, "/opt/%(program_name)s/run --conf=%(here)s/etc/%(program_name)s.ini"))
			if rng.IntN(2) == 0 {
				fmt.Fprintf(&conf, "directory=%s\n", pick("%(here)s", "%(here)s/"+nm, "/srv/"+nm, "/tmp"))
			}
			if rng.IntN(2) == 0 {
				fmt.Fprintf(&conf, "environment=%s\n", pick(`A="1"`, `PATH="%(here)s/bin:/usr/bin",NAME="`+nm+`"`, `K="a,b c",E=""`, `HOME="%(here)s"`))
			}
			if rng.IntN(3) == 0 { // numprocs: each process needs a log of its own (as each program does)
				fmt.Fprintf(&conf, "numprocs=%d\nprocess_name=%%(program_name)s_%%(process_num)02d\n", 2+rng.IntN(2))
				fmt.Fprintf(&conf, "stdout_logfile=%s\n", pick("%(here)s/log/%(program_name)s-%(process_num)d.log", "/var/log/"+nm+"/%(process_num)d-"+nm+".log", "NONE"))
				fmt.Fprintf(&conf, "stderr_logfile=%s\n", pick("%(here)s/log/"+nm+"/%(process_num)d.err", "NONE"))
			} else if rng.IntN(2) == 0 {
				fmt.Fprintf(&conf, "stdout_logfile=%s\n", pick("%(here)s/log/%(program_name)s.log", "/var/log/"+nm+"/"+nm+".log", "NONE", "%(here)s/log/"+nm+"-out.log"))
			}
			for _, kv := range [][]string{
				{"autorestart", pick("true", "false", "unexpected")},
				{"startsecs", pick("0", "1", "5")},
				{"priority", pick("1", "999", "50")},
				{"exitcodes", pick("0", "0,2")},
				{"redirect_stderr", pick("true", "false")},
			} {
				if rng.IntN(2) == 0 {
					fmt.Fprintf(&conf, "%s=%s\n", kv[0], kv[1])
				}
			}
			conf.WriteString("\n")
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "supervisord.conf")
		if err := os.WriteFile(path, []byte(conf.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		p := importOut(t, path, "deploy.star", nil)
		if a, b := planJSON(t, p), planJSON(t, loadConf(t, path, nil)); a != b {
			script, _ := os.ReadFile(filepath.Join(dir, "deploy.star"))
			t.Fatalf("config %d: plans differ\n--- config:\n%s\n--- script:\n%s", i, conf.String(), script)
		}
	}
}

// import says which environment values it wrote into the script, and only then.
func TestImportNotesEnvironmentValues(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "s.conf")
	env := map[string]string{"PORT": "8080", "HOME": "/home/tester"}
	for body, want := range map[string]string{
		"[program:web]\ncommand=/bin/app --port %(ENV_PORT)s\ndirectory=~/app\n":  `import: the script holds this environment's values of HOME, PORT`,
		"[program:web]\ncommand=/bin/app --port 8080\n":                           "",
		"[program:web]\ncommand=/bin/app --port 8080 --node %(host_node_name)s\n": "import: the script holds this machine's name",
	} {
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		code, script, stderr := run(t, env, "import", conf)
		if code != ExitOK {
			t.Fatalf("import: exit %d\n%s", code, stderr)
		}
		if !strings.Contains(script, `"--port", "8080"`) {
			t.Errorf("script lacks the port:\n%s", script)
		}
		if want == "" && stderr != "" || !strings.Contains(stderr, want) {
			t.Errorf("stderr %q, want %q", stderr, want)
		}
	}
}

// An [include] may name files outside the config's folder (/etc/supervisor/conf.d beside
// /opt/app/deploy): import reads them (it was refused: "outside the bundle root"); the
// script it writes holds their programs.
func TestImportReadsIncludesElsewhere(t *testing.T) {
	top := t.TempDir()
	main, shared := filepath.Join(top, "main"), filepath.Join(top, "shared")
	for _, d := range []string{main, shared} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(shared, "a.conf"), []byte("[program:a]\ncommand=/bin/sleep 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(main, "supervisord.conf")
	if err := os.WriteFile(conf, []byte("[include]\nfiles = ../shared/*.conf\n[program:b]\ncommand=/bin/sleep 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, nil, "import", conf)
	if code != ExitOK || !strings.Contains(stdout, `("a", "1")`) {
		t.Fatalf("import: exit %d\n%s%s", code, stdout, stderr)
	}
}

// import -o never writes over the configuration it reads, and over another existing file
// only with --force.
func TestImportOutRefusesToOverwrite(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "s.conf")
	is.NoErr(os.WriteFile(conf, []byte("[program:a]\ncommand=/bin/sleep 1\n"), 0o644))
	code, _, stderr := run(t, nil, "import", conf, "-o", conf, "--force")
	is.Equal(code, ExitUsage)
	is.True(strings.Contains(stderr, "is the configuration being read"))

	out := filepath.Join(dir, "deploy.star")
	is.NoErr(os.WriteFile(out, []byte("# by hand\n"), 0o644))
	code, _, stderr = run(t, nil, "import", conf, "-o", out)
	is.Equal(code, ExitUsage)
	is.True(strings.Contains(stderr, "exists; --force overwrites it"))
	b, err := os.ReadFile(out)
	is.NoErr(err)
	is.Equal(string(b), "# by hand\n") // untouched

	code, _, _ = run(t, nil, "import", conf, "-o", out, "--force")
	is.Equal(code, ExitOK)
	b, err = os.ReadFile(out)
	is.NoErr(err)
	is.True(strings.Contains(string(b), `name = "a"`))
}

// loadConfScript loads a config (%q twice) as a user would after load_conf's note: with
// the [supervisord] settings (minfds) given to supervisor(), as import writes them.
const loadConfScript = `load("@stdlib//supervisord.star", "supervisord")
supervisord.load_conf(%q)
[supervisor(**s) for s in [supervisord.read(%q)["supervisor"]] if s]
`

// A configuration starvisor cannot take is refused with its file, section and key, and
// without the stack of the stdlib code that read it: the user wrote an ini file.
func TestImportErrorNamesTheKeyAlone(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "supervisord.conf")
	if err := os.WriteFile(conf, []byte("[program:cap]\ncommand=/bin/true\nstdout_capture_maxbytes=1MB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, nil, "import", conf)
	want := "import: " + conf + ": [program:cap] stdout_capture_maxbytes: not supported by starvisor (only its default value is accepted)\n"
	if code != ExitFailure || out != "" || errs != want {
		t.Fatalf("code %d\nstdout %q\nstderr %q\nwant   %q", code, out, errs, want)
	}
}

// The environment every program has ([supervisord] environment=) is written once, and
// each program adds its own with |: the same plan, without the same long line (a PATH)
// in every program.
func TestImportWritesSharedEnvOnce(t *testing.T) {
	script := importSame(t, "[supervisord]\nenvironment=TZ=\"UTC\",APP_HOME=\"/srv/app\"\n"+
		"[program:a]\ncommand=/bin/a\n"+
		"[program:b]\ncommand=/bin/b\nenvironment=ROLE=\"worker\"\n"+
		"[program:c]\ncommand=/bin/c\nenvironment=TZ=\"Europe/Paris\"\n")
	for _, want := range []string{
		"COMMON_ENV = {\"APP_HOME\": \"/srv/app\", \"TZ\": \"UTC\"}\n", // c sets TZ otherwise
		"env = COMMON_ENV | {\"TZ\": tz},",                             // a and c: one loop
		"env = COMMON_ENV | {\"ROLE\": \"worker\"},",
	} {
		if !strings.Contains(string(script), want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	if n := strings.Count(string(script), "/srv/app"); n != 1 {
		t.Errorf("/srv/app written %d times, want once:\n%s", n, script)
	}
}

// importSame imports conf (written to a temp folder) with -o, checks that the script's
// plan is load_conf's, and returns the script.
func importSame(t *testing.T, conf string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := importOut(t, path, "deploy.star", nil)
	if a, b := planJSON(t, p), planJSON(t, loadConf(t, path, nil)); a != b {
		t.Errorf("plans differ\n%s\n%s", a, b)
	}
	script, err := os.ReadFile(filepath.Join(filepath.Dir(path), "deploy.star"))
	if err != nil {
		t.Fatal(err)
	}
	return script
}

// import -o into a folder not made yet makes it, as export -o does (it failed naming a
// temporary file), and writes the script 0600: it holds the programs' environment.
func TestImportOutMakesItsFolder(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "supervisord.conf")
	is.NoErr(os.WriteFile(conf, []byte("[program:web]\ncommand=/bin/sleep 100\nenvironment=TOKEN=\"s3cr3t\"\n"), 0o644))
	out := filepath.Join(dir, "new", "app", "deploy.star")
	code, _, errOut := run(t, nil, "import", conf, "-o", out)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	st, err := os.Stat(out)
	is.NoErr(err)
	is.Equal(st.Mode().Perm(), os.FileMode(0o600))
}

// The config's comments reach the script, where they stand: the files' own at its top,
// a section's above its call, a key's above its keyword (above the call when no keyword
// is written for it), an inline one after its keyword's value.
func TestImportCarriesComments(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"supervisord.conf": `; Workers of the shop.
;

; why minfds
[supervisord]
minfds=4096 ; sockets

[include]
files=conf.d/*.conf

; the storefront
[program:web]
; gunicorn, not uwsgi
command=/bin/sleep 100
startsecs=5 ; slow boot
stdout_logfile=%(here)s/web.log ; rotated
stdout_logfile_maxbytes=1MB ; small
stderr_logfile=AUTO ; the default: no keyword
;autostart=false

[group:shop]
; just web
programs=web
`,
		"conf.d/a.conf": `# included

# the queue
[program:queue]
command=/bin/sleep 200
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "supervisord.conf")
	script := string(importOutText(t, conf, "deploy.star", nil))
	p := evalScript(t, dir, "deploy.star", script, dir, nil)
	if a, b := planJSON(t, p), planJSON(t, loadConf(t, conf, nil)); a != b {
		t.Errorf("plans differ\n%s\n%s", a, b)
	}
	for _, want := range []string{
		"supervisord.load_conf(here(\"supervisord.conf\")).\n\n# Workers of the shop.\n#\n\n# From conf.d/a.conf:\n# included\n",
		"# why minfds\n# [supervisord] minfds=: the programs' open-files limit.\nsupervisor(minfds = 4096)  # sockets\n",
		"# just web\ngroup(name = \"shop\"",
		"# the storefront\n# autostart=false\n# stderr_logfile: the default: no keyword\nprogram(\n    name = \"web\",\n",
		"    # gunicorn, not uwsgi\n    command = [\"/bin/sleep\", \"100\"],\n",
		"    start_secs = 5,  # slow boot\n",
		"    # stdout_logfile: rotated\n    # stdout_logfile_maxbytes: small\n    stdout = log(", // two on one keyword
		"# the queue\nprogram(\n    name = \"queue\",",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
}

// Programs alike but for their own comments still make a loop, those comments above
// their rows, those of a keyword not written above the loop; comments of a keyword that
// differ keep them apart, each above its keyword.
func TestImportCommentsInLoops(t *testing.T) {
	script := string(importSame(t, "; the a worker\n[program:a]\n; sleeps\ncommand=/bin/sleep 1\n; auto log\nstdout_logfile=AUTO\n\n"+
		"[program:b]\n; sleeps\ncommand=/bin/sleep 2\n; auto log\nstdout_logfile=AUTO\n\n"+
		"[program:c]\n; sleeps longer\ncommand=/bin/sleep 3\n"))
	for _, want := range []string{
		"# auto log\nfor name, arg in [\n    # the a worker\n    (\"a\", \"1\"),\n    (\"b\", \"2\"),\n]:\n    program(\n        name = name,\n        # sleeps\n        command = [\"/bin/sleep\", arg],\n",
		"program(\n    name = \"c\",\n    # sleeps longer\n    command = [\"/bin/sleep\", \"3\"],\n",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
}
