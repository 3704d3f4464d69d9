package builtins_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/starvisor/starvisor/builtins"
)

// fuzzBundle is the bundle every fuzzed script runs in: a library file to load, files for
// fs.* to read, and a library root.
var fuzzBundle = map[string]string{
	"lib/helpers.star":   "def svc(name, port = 80):\n    return program(name = name, command = [\"/bin/sleep\", str(port)])\n",
	"etc/app.env":        "A=1\nexport B='two'\nC=\"x\\ny\"\n",
	"etc/conf.txt":       "hello\n",
	"code/app_v1/README": "v1\n",
	"code/app_v2/README": "v2\n",
	"mylib/util.star":    "X = 1\n",
}

// fuzzSeeds are scripts that reach every module; most are valid, some fail on purpose.
var fuzzSeeds = []string{
	`program(name = "web", command = ["/bin/sleep", "1h"])`,
	`load("lib/helpers.star", "svc")
[svc("s%d" % i, 8000 + i) for i in range(3)]`,
	`load("@stdlib//python.star", "python")
py = python.venv(here("venv"))
program(name = "api", command = py.module("app.main", "--port", "8080"), env = {"A": "1"}, redirect_stderr = True)`,
	`supervisor(socket = "run/s.sock", log_dir = "log", state_dir = "state")
program(name = "db", command = "/bin/sleep 1h", priority = 1, ready = probe.tcp(5432))
program(name = "web", command = "/bin/sleep 1h", depends_on = ["db"], numprocs = 2, stdout = log("log/{process_name}.log", max_bytes = "1MB", backups = 2))
group(name = "front", programs = ["web"])`,
	`env = fs.read_env("etc/app.env")
txt = fs.read("etc/conf.txt")
ok = fs.exists("etc") and fs.is_dir("etc")
versions = fs.glob("code/app_v*")
best = version.latest(versions)
program(name = "x", command = ["/bin/echo", txt.strip(), best, str(ok)], env = env)`,
	`program(name = "p", command = ["/bin/true"], ready = probe.http("http://127.0.0.1:8080/health", status = 204, interval = "2s"))
program(name = "q", command = ["/bin/true"], ready = probe.exec(["./check.sh"]), autorestart = "unexpected", exit_codes = [0, 2])
program(name = "r", command = ["/bin/true"], ready = probe.log("ready"), backoff = "exponential", backoff_max = "30s")`,
	`s = struct(a = 1, b = json.encode({"k": [1, 2]}))
print(s.a, host.os(), host.arch(), host.cpus(), host.env("HOME", "none"), path.join(root(), "x"), path.list("/a", "/b"))`,
	`load("@mylib//util.star", "X")
program(name = "n%d" % X, command = ["/bin/true"], numprocs = 3, process_name = "{name}_{num:02}", stdout = None)`,
	`def f(n):
    return f(n + 1)
f(0)`,
	`while True:
    pass`,
	`x = "a" * 1000
y = [x] * 1000`,
	`load("../outside.star", "x")`,
	`fs.read("/etc/passwd")`,
	`program(name = "a", command = [])`,
	`program(name = "a", command = ["/bin/true"], depends_on = ["a"])`,
	`program(`,
	`x = 1 +`,
	`fail("boom")`,
	`undefined_name`,
	`load("lib/helpers.star", "nope")`,
	"def f():\n\treturn 1",
	`program(name = "a", command = ["/bin/true"], stop_timeout = "forever")`,
	`program(name = "a", command = ["/bin/true"], umask = "999")`,
	`x = {}
x[[]] = 1`,
	`1 // 0`,
	`"%d" % "x"`,
}

// positionRE is the "file:line:col" an evaluation error must start with.
var positionRE = regexp.MustCompile(`^[^\s:]+:\d+:\d+$`)

// FuzzEval evaluates arbitrary script source in a small bundle with a small step limit and
// timeout. Eval must never panic, must return within its timeout (plus slack for the
// plan's validation), and a script error (*builtins.Error) must carry a position.
//
//	go test -run '^$' -fuzz FuzzEval -fuzztime 5m ./builtins
func FuzzEval(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	dir, err := filepath.EvalSymlinks(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	for name, content := range fuzzBundle {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	entry := filepath.Join(dir, "deploy.star")
	const timeout = 500 * time.Millisecond

	f.Fuzz(func(t *testing.T, src string) {
		if allocationBomb(src) {
			// go.starlark.net repeats a list up to 2^30 elements in one step, which no
			// step limit, timeout or memory watchdog can interrupt (README, Script
			// reference): such inputs only measure this machine's memory.
			t.Skip()
		}
		if err := os.WriteFile(entry, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		p, err := builtins.Eval(context.Background(), builtins.Options{
			File:      entry,
			Libs:      map[string]string{"mylib": filepath.Join(dir, "mylib")},
			MaxSteps:  20_000,
			Timeout:   timeout,
			LookupEnv: func(string) (string, bool) { return "", false },
			Print:     io.Discard,
		})
		if took := time.Since(start); took > 4*timeout {
			t.Fatalf("Eval took %s with a %s timeout\nscript:\n%s", took, timeout, src)
		}
		if err == nil {
			if p == nil {
				t.Fatal("Eval returned neither a plan nor an error")
			}
			return
		}
		var e *builtins.Error
		if errors.As(err, &e) && !positionRE.MatchString(e.Pos) {
			t.Fatalf("script error without a position (Pos %q): %v\nscript:\n%s", e.Pos, err, src)
		}
		if strings.TrimSpace(err.Error()) == "" {
			t.Fatalf("empty error message\nscript:\n%s", src)
		}
	})
}

// allocationBomb reports source that may ask go.starlark.net for a huge allocation in
// one step: a repetition (*) with a long number or a second *, or a long number at all
// (list(range(N)) materializes N elements in one step too).
func allocationBomb(src string) bool {
	return strings.Count(src, "*") > 1 || longNumberRE.MatchString(src)
}

var longNumberRE = regexp.MustCompile(`[0-9]{5}`)
