package app

import (
	"bytes"
	"testing"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/engine/plan"
)

func TestShortPath(t *testing.T) {
	for _, c := range []struct{ root, path, want string }{
		{"/b/etc", "/b/etc/deploy.star", "deploy.star"},
		{"/b/etc", "/b/etc", "."},
		{"/b/etc", "/b/envs/base/bin/python", "../envs/base/bin/python"}, // bundle sibling
		{"/b/etc", "/usr/bin/python3", "/usr/bin/python3"},               // elsewhere: absolute
		{"/b/etc", "python3", "python3"},                                 // bare names stay
		{"/b/etc", "/b/etc/..foo/x", "..foo/x"},                          // a folder named ..foo is under root
	} {
		if got := shortPath(c.root, c.path); got != c.want {
			t.Errorf("shortPath(%q, %q) = %q, want %q", c.root, c.path, got, c.want)
		}
	}
}

func TestWriteTable(t *testing.T) {
	is := is.New(t)
	web := plan.Defaults()
	web.Name, web.ProcessName = "web", "web"
	web.Command = []string{"/b/etc/bin/server", "--title", "my site"}
	web.Directory = "/b/etc/www"
	web.Priority = 10
	web.Autorestart = plan.RestartAlways
	web.Stdout = plan.DefaultLog("/b/log/web.log")
	web.RedirectStderr = true
	w0 := plan.Defaults()
	w0.Name, w0.ProcessName = "worker", "worker_0"
	w0.Command = []string{"python3", "-m", "app.worker"}
	w0.Env = map[string]string{"PYTHONPATH": "/b/v2:/opt/lib"}
	w0.Stdout = nil
	w0.Group = "worker" // numprocs makes a group of the program's name
	w1 := w0
	w1.ProcessName = "worker_1"
	p := &plan.Plan{Root: "/b/etc", Programs: []plan.Program{web, w0, w1}, Groups: []plan.Group{{Name: "front"}}}

	var out bytes.Buffer
	is.NoErr(writeTable(&out, p))
	is.Equal(out.String(), `root: /b/etc
NAME      COMMAND                       CODE            PRIORITY  AUTORESTART  LOG
web       bin/server --title 'my site'  www             10        true         ../log/web.log (+stderr)
worker_0  python3 -m app.worker         ../v2:/opt/lib  999       unexpected   -
worker_1  python3 -m app.worker         ../v2:/opt/lib  999       unexpected   -
2 programs, 3 processes, 2 groups
`)
}

// The start graph shows in a dry run once a process has one: what each waits for
// (AFTER) and how it is found ready (READY); only plan --json had it.
func TestWriteTableStartGraph(t *testing.T) {
	is := is.New(t)
	prog := func(name string, deps []string, ready *plan.Probe) plan.Program {
		pr := plan.Defaults()
		pr.Name, pr.ProcessName, pr.Command, pr.DependsOn, pr.Ready = name, name, []string{"/b/bin/" + name}, deps, ready
		pr.Stdout = nil
		return pr
	}
	p := &plan.Plan{Root: "/b", Programs: []plan.Program{
		prog("db", nil, &plan.Probe{Kind: plan.ProbeTCP, Port: 5432}),
		prog("migrate", []string{"db"}, &plan.Probe{Kind: plan.ProbeExited}),
		prog("api", []string{"db", "migrate"}, &plan.Probe{Kind: plan.ProbeHTTP, URL: "http://127.0.0.1:8080/health"}),
		prog("web", []string{"api"}, &plan.Probe{Kind: plan.ProbeLog, Pattern: "ready on"}),
		prog("check", nil, &plan.Probe{Kind: plan.ProbeExec, Command: []string{"/usr/bin/pg_isready", "-q"}}),
	}}
	var out bytes.Buffer
	is.NoErr(writeTable(&out, p))
	is.Equal(out.String(), `root: /b
NAME     COMMAND      CODE  AFTER       READY              PRIORITY  AUTORESTART  LOG
db       bin/db       -     -           tcp :5432          999       unexpected   -
migrate  bin/migrate  -     db          job                999       unexpected   -
api      bin/api      -     db,migrate  http :8080/health  999       unexpected   -
web      bin/web      -     api         log /ready on/     999       unexpected   -
check    bin/check    -     -           exec pg_isready    999       unexpected   -
5 programs, 5 processes, 0 groups
`)
}

// A program started by hand (autostart = False) is marked manual, as supervisorctl's
// avail marks it: a notebook looked like one up would start.
func TestWriteTableManualStart(t *testing.T) {
	is := is.New(t)
	prog := func(name string, autostart bool) plan.Program {
		pr := plan.Defaults()
		pr.Name, pr.ProcessName, pr.Command, pr.Autostart, pr.Stdout = name, name, []string{"/b/bin/" + name}, autostart, nil
		return pr
	}
	p := &plan.Plan{Root: "/b", Programs: []plan.Program{prog("web", true), prog("notebook", false)}}
	var out bytes.Buffer
	is.NoErr(writeTable(&out, p))
	is.Equal(out.String(), `root: /b
NAME      COMMAND       CODE  START   PRIORITY  AUTORESTART  LOG
web       bin/web       -     auto    999       unexpected   -
notebook  bin/notebook  -     manual  999       unexpected   -
2 programs, 2 processes, 0 groups
`)
}

// A program whose stdout is discarded but whose stderr is logged shows that log: "-"
// read as no log at all, while its .err.log was written.
func TestLogCellStderrOnly(t *testing.T) {
	is := is.New(t)
	pr := plan.Defaults()
	pr.Stdout, pr.Stderr = nil, &plan.Log{Path: "/b/log/a.err.log"}
	is.Equal(logCell("/b", pr), "stderr: log/a.err.log")
	pr.Stderr = nil
	is.Equal(logCell("/b", pr), "-")
}

func TestTruncateKeepsWidth(t *testing.T) {
	is := is.New(t)
	is.Equal(truncate("abcdef", 6), "abcdef")
	is.Equal(truncate("abcdefg", 6), "abcde…")
	is.Equal(len([]rune(truncate("ééééééééé", 4))), 4)
}

func TestQuoteArg(t *testing.T) {
	for in, want := range map[string]string{
		"--port=80":      "--port=80",
		"":               "''",
		"a b":            "'a b'",
		`echo "$X"; x`:   `'echo "$X"; x'`,
		"it's $HOME":     `'it'\''s $HOME'`,
		"a\nb\tc'\\\x01": `$'a\nb\tc\'\\\x01'`,
	} {
		if got := quoteArg(in); got != want {
			t.Errorf("quoteArg(%q) = %s, want %s", in, got, want)
		}
	}
}

// A program's line quoted to the terminal keeps no escape sequence: its ESC codes rewrote
// what starvisor printed before it (root's terminal), or set the window's title.
func TestPrintable(t *testing.T) {
	is := is.New(t)
	is.Equal(printable("plain line"), "plain line")
	is.Equal(printable("\x1b[2K\rstarvisor: all fine\x07"), `\x1b[2K\x0dstarvisor: all fine\x07`)
	is.Equal(printable("a\tb"), "a b")
}

// plan --diff names the env variables that changed; a name that does not read plainly
// is quoted, so a newline in it (a plan from before env names were checked) stays on
// its line.
func TestChangeLinesEnvNames(t *testing.T) {
	is := is.New(t)
	got := changeLines("  ~ ", "", []plan.Change{{Name: "a", Fields: []string{"env"}, Env: []string{"C\nD", "PATH", "x,y"}}})
	is.Equal(got, []string{`  ~ a: env ("C\nD", PATH, "x,y")`})
}

// Once there are groups, a GROUP column names each program's, with the group's priority,
// which orders starts before the program's own.
func TestWriteTableGroups(t *testing.T) {
	is := is.New(t)
	prog := func(name, group string) plan.Program {
		pr := plan.Defaults()
		pr.Name, pr.ProcessName, pr.Command, pr.Group, pr.Stdout = name, name, []string{"/b/bin/" + name}, group, nil
		return pr
	}
	p := &plan.Plan{Root: "/b", Programs: []plan.Program{prog("web", "front"), prog("cron", "")},
		Groups: []plan.Group{{Name: "front", Programs: []string{"web"}, Priority: 50}}}
	var out bytes.Buffer
	is.NoErr(writeTable(&out, p))
	is.Equal(out.String(), `root: /b
NAME  COMMAND   CODE  GROUP                PRIORITY  AUTORESTART  LOG
web   bin/web   -     front (priority 50)  999       unexpected   -
cron  bin/cron  -     -                    999       unexpected   -
2 programs, 2 processes, 1 group
`)
}
