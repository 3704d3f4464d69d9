package builtins_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/starvisor/starvisor/builtins"
)

// The sandbox: evaluating a deploy script cannot read outside the bundle and library
// roots, run a process, reach the network, or run without bound in steps, memory or time
// (DESIGN.md "The script").

// sandboxBundle makes a bundle app/ (the root) next to a secret file and folder it must
// not reach, with symlinks inside the bundle that point at them, and a library root lib/.
func sandboxBundle(t *testing.T) (dir, root string) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root = filepath.Join(dir, "app")
	for name, content := range map[string]string{
		"secret.txt":         "SECRET\n",
		"secret.env":         "TOKEN=SECRET\n",
		"secret.star":        "x = 'SECRET'\n",
		"private/key.txt":    "SECRET\n",
		"app/etc/ok.txt":     "ok\n",
		"app/sub/inner.star": "y = 1\n",
		"lib/util.star":      "z = 1\n",
		"app/inc_up.conf":    "[include]\nfiles = ../secret.txt\n",
		"app/inc_abs.conf":   "[include]\nfiles = " + filepath.Join(dir, "*.txt") + "\n",
		"app/inc_link.conf":  "[include]\nfiles = out*.txt\n",
		"app/inc_dir.conf":   "[include]\nfiles = outdir/*.txt\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"app/out.txt":     "../secret.txt",
		"app/out.env":     "../secret.env",
		"app/out.star":    "../secret.star",
		"app/outdir":      "../private",
		"app/abs.txt":     filepath.Join(dir, "secret.txt"),
		"app/etc/up.txt":  "../../secret.txt",
		"lib/escape.star": "../secret.star",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, root
}

// evalIn evaluates src as root/deploy.star with the library @lib.
func evalIn(t *testing.T, dir, root, src string, o builtins.Options) error {
	t.Helper()
	entry := filepath.Join(root, "deploy.star")
	if err := os.WriteFile(entry, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	o.File = entry
	o.Libs = map[string]string{"lib": filepath.Join(dir, "lib")}
	if o.Print == nil {
		o.Print = io.Discard
	}
	_, err := builtins.Eval(context.Background(), o)
	return err
}

func TestSandboxNoFileOutsideTheRoots(t *testing.T) {
	dir, root := sandboxBundle(t)
	for _, src := range []string{
		`fs.read("../secret.txt")`,
		`fs.read("etc/../../secret.txt")`,
		fmt.Sprintf(`fs.read(%q)`, filepath.Join(dir, "secret.txt")),
		`fs.read("/etc/passwd")`,
		`fs.read("/proc/self/environ")`,
		`fs.read("out.txt")`,    // relative symlink out
		`fs.read("abs.txt")`,    // absolute symlink out
		`fs.read("etc/up.txt")`, // symlink from a subfolder
		`fs.read("outdir/key.txt")`,
		`fs.read_env("out.env")`,
		`fs.read_env("../secret.env")`,
		`fs.exists("../secret.txt")`,
		`fs.exists("/etc/passwd")`,
		`fs.exists("outdir/key.txt")`,
		`fs.exists("outdir/nothing-here")`, // even existence is not revealed
		`fs.is_dir("/")`,
		`fs.is_dir("..")`,
		`fs.glob("../*")`,
		`fs.glob("/etc/*")`,
		`fs.glob("outdir/*")`,
		`load("../secret.star", "x")`,
		`load("sub/../../secret.star", "x")`,
		`load("//../secret.star", "x")`,
		fmt.Sprintf(`load(%q, "x")`, filepath.Join(dir, "secret.star")),
		`load("out.star", "x")`,
		`load("@lib//../secret.star", "x")`,
		`load("@lib//escape.star", "x")`,
		`load("@stdlib//../../secret.star", "x")`,
		`load("@nolib//x.star", "x")`,
		`supervisord_conf.read("../secret.txt")`,
		`supervisord_conf.read("out.txt")`,
		`supervisord_conf.read("inc_up.conf")`,
		`supervisord_conf.read("inc_abs.conf")`,
		`supervisord_conf.read("inc_link.conf")`,
		`supervisord_conf.read("inc_dir.conf")`,
	} {
		t.Run(src, func(t *testing.T) {
			err := evalIn(t, dir, root, src+"\n", builtins.Options{})
			if err == nil {
				t.Fatalf("%s: evaluated, want a sandbox error", src)
			}
			var e *builtins.Error
			if !errors.As(err, &e) || !strings.HasPrefix(e.Pos, "deploy.star:1:") {
				t.Errorf("%s: want a script error at deploy.star:1, got %v", src, err)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("%s: the error leaks the secret: %v", src, err)
			}
		})
	}
}

// fs.exists and fs.is_dir answer for a symlink inside the bundle that leads out of it
// (a virtualenv's bin/python links to the system's interpreter): whether it leads
// somewhere. Only the last component may lead out.
func TestSandboxExistsOfALinkOut(t *testing.T) {
	dir, root := sandboxBundle(t)
	var out strings.Builder
	err := evalIn(t, dir, root, `print(fs.exists("out.txt"), fs.is_dir("outdir"), fs.is_dir("out.txt"))`+"\n", builtins.Options{Print: &out})
	if err != nil || out.String() != "deploy.star:1: True True False\n" {
		t.Errorf("got %q, %v", out.String(), err)
	}
}

func TestSandboxGlobLeavesOutWhatLeadsOut(t *testing.T) {
	dir, root := sandboxBundle(t)
	var out strings.Builder
	err := evalIn(t, dir, root, `print(fs.glob("*"), fs.glob("*/*"), fs.glob("*/key.txt"))`+"\n", builtins.Options{Print: &out})
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, leak := range []string{"out.txt", "abs.txt", "outdir", "up.txt", "key.txt", "secret"} {
		if strings.Contains(got, leak) {
			t.Errorf("fs.glob lists %q, which resolves outside the root: %s", leak, got)
		}
	}
	if !strings.Contains(got, filepath.Join(root, "etc", "ok.txt")) {
		t.Errorf("fs.glob misses etc/ok.txt: %s", got)
	}
}

func TestSandboxReadsInsideTheRootsStillWork(t *testing.T) {
	dir, root := sandboxBundle(t)
	err := evalIn(t, dir, root, `load("sub/inner.star", "y")
load("@lib//util.star", "z")
if fs.read("etc/ok.txt") != "ok\n" or not fs.exists("etc/ok.txt") or not fs.is_dir("etc"):
    fail("inside reads broken")
`, builtins.Options{})
	if err != nil {
		t.Fatal(err)
	}
}

// allowedNames is every predeclared name a deploy script sees, with each module's members.
// None runs a process, opens a socket or writes a file: probe.exec, probe.tcp and
// probe.http only describe checks the engine runs later (TestSandboxNoProcessNoNetwork).
// A new builtin must be added here on purpose, after that review.
var allowedNames = []string{
	// Starlark's universe (go.starlark.net/starlark.Universe).
	"None", "True", "False", "abs", "any", "all", "bool", "bytes", "chr", "dict", "dir",
	"enumerate", "fail", "float", "getattr", "hasattr", "hash", "int", "len", "list", "max",
	"min", "ord", "print", "range", "repr", "reversed", "set", "sorted", "str", "tuple",
	"type", "zip",
	// starvisor's modules.
	"program", "group", "supervisor", "log", "here", "root",
	"path", "path.join", "path.abs", "path.base", "path.dir", "path.rel", "path.list",
	"host", "host.name", "host.os", "host.arch", "host.cpus", "host.env",
	"fs", "fs.exists", "fs.is_dir", "fs.glob", "fs.read", "fs.read_env", "fs.realpath",
	"probe", "probe.tcp", "probe.http", "probe.exec", "probe.exited", "probe.log",
	"version", "version.parse", "version.latest",
	"struct", "json", "json.encode", "json.decode", "json.indent", "json.encode_indent",
	"supervisord_conf", "supervisord_conf.read", "supervisord_conf.expand", "supervisord_conf.minfds", "supervisord_conf.template",
	"supervisord_conf.split_command", "supervisord_conf.parse_environment",
}

func TestSandboxPredeclaredNames(t *testing.T) {
	env, err := builtins.Predeclared(builtins.Default()...)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	add := func(prefix string, d starlark.StringDict) {
		for _, k := range d.Keys() {
			got = append(got, prefix+k)
			if m, ok := d[k].(*starlarkstruct.Module); ok {
				for _, mk := range m.Members.Keys() {
					got = append(got, prefix+k+"."+mk)
				}
			}
		}
	}
	add("", starlark.Universe)
	add("", env)
	slices.Sort(got)
	want := slices.Sorted(slices.Values(allowedNames))
	if !slices.Equal(got, want) {
		t.Errorf("predeclared names changed; review the new ones for processes, sockets and writes, then update allowedNames.\n got: %v\nwant: %v", got, want)
	}
	for _, n := range got {
		for _, bad := range []string{"exec", "run", "shell", "spawn", "system", "popen", "socket", "connect", "dial", "write", "remove", "open"} {
			if strings.Contains(strings.ToLower(n), bad) && n != "probe.exec" {
				t.Errorf("predeclared name %q looks like it acts on the machine", n)
			}
		}
	}
}

// TestSandboxNoProcessNoNetwork evaluates a script that describes commands and probes
// aimed at a marker file and a loopback listener: evaluating it must touch neither.
func TestSandboxNoProcessNoNetwork(t *testing.T) {
	dir, root := sandboxBundle(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	marker := filepath.Join(dir, "ran")
	// Create the entry first: the snapshot must not see the test's own write of it.
	if err := os.WriteFile(filepath.Join(root, "deploy.star"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before := tree(t, dir)
	src := fmt.Sprintf(`
touch = ["/usr/bin/touch", %[1]q]
program(name = "a", command = touch, ready = probe.exec(touch))
program(name = "b", command = "/bin/sh -c 'touch %[1]s'", ready = probe.tcp(%[2]d))
program(name = "c", command = touch, ready = probe.http("http://127.0.0.1:%[2]d/"))
program(name = "d", command = touch, ready = probe.log("x"))
print(host.name(), host.env("PATH"), json.encode(version.latest(["1.0", "2.0"])))
`, marker, port)
	if err := evalIn(t, dir, root, src, builtins.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("evaluation ran a command: %s exists (%v)", marker, err)
	}
	// Any connection made during Eval is already queued: accept must find none.
	if err := l.(*net.TCPListener).SetDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if c, err := l.Accept(); err == nil {
		c.Close()
		t.Error("evaluation connected to the probe's port")
	}
	delete(before, "app/deploy.star") // written by the test itself
	after := tree(t, dir)
	delete(after, "app/deploy.star")
	if !mapsEqual(before, after) {
		t.Errorf("evaluation changed files:\nbefore %v\nafter  %v", before, after)
	}
}

// tree maps every path under dir to its size and modification time.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSandboxStepsAreBounded(t *testing.T) {
	dir, root := sandboxBundle(t)
	for _, src := range []string{
		"while True:\n    pass\n",
		"def f(n):\n    return f(n + 1)\nf(0)\n",
		"x = [i for i in range(1000000000)]\n",
		"def g():\n    for i in range(1000000000):\n        pass\ng()\n",
	} {
		start := time.Now()
		err := evalIn(t, dir, root, src, builtins.Options{MaxSteps: 100_000, Timeout: time.Minute})
		if err == nil || !strings.Contains(err.Error(), "too many steps (limit 100000)") {
			t.Errorf("%q: got %v, want the step limit", src, err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("%q: took %s to hit a 100000-step limit", src, took)
		}
	}
}

// TestSandboxSingleAllocationsAreCapped: Starlark refuses a repeat of 1 GiB or more in one
// step, so one statement cannot ask for unbounded memory.
func TestSandboxSingleAllocationsAreCapped(t *testing.T) {
	dir, root := sandboxBundle(t)
	for _, src := range []string{
		`x = "a" * (1 << 30)`,
		`x = [0] * (1 << 30)`,
		`x = ("a",) * (1 << 40)`,
		`x = b"a" * (1 << 62)`,
	} {
		err := evalIn(t, dir, root, src+"\n", builtins.Options{})
		if err == nil || !strings.Contains(err.Error(), "repeat") {
			t.Errorf("%s: got %v, want a repeat refused", src, err)
		}
	}
}

// TestSandboxTimeoutStopsSlowCheapScript: each squaring of a huge int is one step but
// ever slower (19 of them take seconds); the wall-clock timeout stops it between steps,
// long before the step limit would.
func TestSandboxTimeoutStopsSlowCheapScript(t *testing.T) {
	dir, root := sandboxBundle(t)
	src := "x = 1 << 500\nfor i in range(19):\n    x = x * x\n"
	start := time.Now()
	err := evalIn(t, dir, root, src, builtins.Options{MaxSteps: 1000, Timeout: 100 * time.Millisecond})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "evaluation timed out after 100ms") {
		t.Fatalf("got %v after %s, want the timeout", err, took)
	}
	if took > 3*time.Second {
		t.Errorf("the timeout fired %s after the start; want soon after 100ms", took)
	}
}

// TestSandboxTimeoutCoversBlockingReads: fs.read of a FIFO inside the bundle blocks in
// open(2), where the step counter and the timeout cannot reach. Eval should still return
// by its timeout (refusing non-regular files would do).
func TestSandboxTimeoutCoversBlockingReads(t *testing.T) {
	for _, src := range []string{`fs.read("pipe")`, `fs.read_env("pipe")`, `load("pipe", "x")`} {
		t.Run(src, func(t *testing.T) {
			dir, root := sandboxBundle(t)
			fifo := filepath.Join(root, "pipe")
			if err := syscall.Mkfifo(fifo, 0o644); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- evalIn(t, dir, root, src+"\n", builtins.Options{Timeout: 100 * time.Millisecond}) }()
			select {
			case err := <-done:
				if err == nil {
					t.Error("reading a FIFO succeeded")
				}
			case <-time.After(5 * time.Second):
				// Unblock the reader so the goroutine ends, then report.
				if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
					w.Close()
				}
				<-done
				t.Errorf("%s: Eval still blocked 5s after its 100ms timeout", src)
			}
		})
	}
}

// TestSandboxMemoryIsBounded runs, in a child process limited to 8 GiB of address space (the Go runtime reserves address space well beyond what it uses, so a tighter limit fails early),
// a script of about 100 steps that doubles a string 40 times (a terabyte). Starlark counts
// steps, not bytes, so the step limit does not stop it; the child must end with an
// evaluation error, not the runtime's fatal "out of memory".
func TestSandboxMemoryIsBounded(t *testing.T) {
	if os.Getenv("STARVISOR_SANDBOX_CHILD") == "memory" {
		memoryChild()
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestSandboxMemoryIsBounded$")
	cmd.Env = append(os.Environ(), "STARVISOR_SANDBOX_CHILD=memory")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "EVAL ERROR") || !strings.Contains(string(out), "memory limit exceeded") {
		t.Fatalf("child: %v\n%.2000s", err, out)
	}
}

// memoryChild limits its own address space, then evaluates the doubling script.
func memoryChild() {
	lim := syscall.Rlimit{Cur: 8 << 30, Max: 8 << 30}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &lim); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(3)
	}
	dir, err := os.MkdirTemp("", "svmem")
	if err != nil {
		os.Exit(3)
	}
	defer os.RemoveAll(dir)
	entry := filepath.Join(dir, "deploy.star")
	src := "s = \"x\"\nfor i in range(40):\n    s = s + s\n"
	if err := os.WriteFile(entry, []byte(src), 0o644); err != nil {
		os.Exit(3)
	}
	_, err = builtins.Eval(context.Background(), builtins.Options{File: entry, MaxSteps: 100_000, Timeout: 30 * time.Second})
	fmt.Println("EVAL ERROR:", err)
}
