package app

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/plan"
)

func TestMachineProblems(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	is.NoErr(os.MkdirAll(bin, 0o755))
	is.NoErr(os.WriteFile(filepath.Join(bin, "tool"), []byte("#!/bin/sh\n"), 0o755))
	is.NoErr(os.WriteFile(filepath.Join(bin, "data"), []byte("x"), 0o644))
	is.NoErr(os.WriteFile(filepath.Join(dir, "afile"), []byte("x"), 0o644))

	prog := func(name string, cmd ...string) plan.Program {
		pr := plan.Defaults()
		pr.Name, pr.ProcessName, pr.Command, pr.Pos = name, name, cmd, "deploy.star:1:1"
		pr.Stdout = plan.DefaultLog(filepath.Join(dir, "log", "new", name+".log")) // creatable
		return pr
	}
	ok1 := prog("ok1", "tool") // bare name found in the daemon's PATH
	ok2 := prog("ok2", "tool") // bare name found in the program's own PATH
	ok2.Env["PATH"] = bin
	ok2.InheritEnv = false
	missing := prog("missing", "tool") // own PATH without it
	missing.Env["PATH"] = dir
	noFile := prog("nofile", filepath.Join(bin, "gone"))
	notExec := prog("notexec", filepath.Join(bin, "data"))
	isDir := prog("isdir", bin)
	badDir := prog("baddir", "tool")
	badDir.Directory = filepath.Join(dir, "nowhere")
	badLog := prog("badlog", "tool")
	badLog.Stderr = plan.DefaultLog(filepath.Join(dir, "afile", "x", "e.log"))
	badUser := prog("baduser", "tool")
	badUser.User = "no-such-user-starvisor"
	inst0, inst1 := prog("inst", "nope"), prog("inst", "nope") // one message for both instances
	inst1.ProcessName = "inst_1"
	probeOK := prog("probeok", "tool") // a probe command found in the daemon's PATH
	probeOK.Ready = &plan.Probe{Kind: plan.ProbeExec, Command: []string{"tool", "--check"}}
	probeGone := prog("probegone", "tool")
	probeGone.Ready = &plan.Probe{Kind: plan.ProbeExec, Command: []string{"pg_isready_nope"}}

	p := &plan.Plan{Programs: []plan.Program{ok1, ok2, missing, noFile, notExec, isDir, badDir, badLog, badUser, inst0, inst1, probeOK, probeGone}}
	env := func(k string) (string, bool) {
		if k == "PATH" {
			return "relative:" + bin, true
		}
		return "", false
	}
	got := machineProblems(p, env)
	want := []string{
		`deploy.star:1:1: program "missing": command: "tool" not found in PATH`,
		`deploy.star:1:1: program "nofile": command: ` + bin + `/gone: no such file`,
		`deploy.star:1:1: program "notexec": command: ` + bin + `/data: not executable`,
		`deploy.star:1:1: program "isdir": command: ` + bin + `: is a directory`,
		`deploy.star:1:1: program "baddir": directory: ` + dir + `/nowhere: no such directory`,
		`deploy.star:1:1: program "badlog": stderr log: folder ` + dir + `/afile/x: ` + dir + `/afile is not a directory`,
		`deploy.star:1:1: program "baduser": user: unknown user "no-such-user-starvisor"`,
		`deploy.star:1:1: program "inst": command: "nope" not found in PATH`,
		`deploy.star:1:1: program "probegone": ready: probe.exec: "pg_isready_nope" not found in PATH`,
	}
	is.Equal(strings.Join(got, "\n"), strings.Join(want, "\n"))
}

func TestLogFolderNotWritable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write anywhere")
	}
	is := is.New(t)
	ro := filepath.Join(t.TempDir(), "ro")
	is.NoErr(os.Mkdir(ro, 0o555))
	err := checkLogFolder(filepath.Join(ro, "log"))
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "cannot be created: "+ro+" is not writable"))
}

// As root, a program run as another user is checked as that user: a folder on the way
// it may not search, a command it may not run (the spawn failed with EACCES, naming the
// command even when the folder was refused).
func TestUserAccessProblems(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the daemon switches user only as root")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody")
	}
	is := is.New(t)
	dir := t.TempDir()
	is.NoErr(os.Chmod(filepath.Dir(dir), 0o755)) // the test's own folder is 0700
	is.NoErr(os.Chmod(dir, 0o755))
	private := filepath.Join(dir, "private")
	is.NoErr(os.Mkdir(private, 0o700))
	open := filepath.Join(dir, "open")
	is.NoErr(os.Mkdir(open, 0o755))
	is.NoErr(os.WriteFile(filepath.Join(open, "mine"), []byte("#!/bin/sh\n"), 0o700))
	is.NoErr(os.WriteFile(filepath.Join(open, "ours"), []byte("#!/bin/sh\n"), 0o755))
	pr := func(cmd, directory string) plan.Program {
		p := plan.Defaults()
		p.Command, p.Directory, p.User = []string{cmd}, directory, "nobody"
		return p
	}
	is.Equal(userAccess(pr(filepath.Join(open, "ours"), open)), []string(nil))
	is.Equal(userAccess(pr(filepath.Join(open, "ours"), private)), []string{"directory: " + private + ": user nobody may not enter it"})
	is.Equal(userAccess(pr(filepath.Join(open, "mine"), "")), []string{"command: " + filepath.Join(open, "mine") + ": user nobody may not run it"})
	is.Equal(userAccess(pr(filepath.Join(private, "x"), "")), []string{"command: " + private + ": user nobody may not enter it"})
}

// Not root, starvisor can run a program as no one but itself, nor raise its hard limit of
// open files: check says so of another user and of a minfds above that limit (it said
// ok, and up and apply then failed). The CLI runs as nobody.
func TestCheckUserWhenNotRoot(t *testing.T) {
	cred, uid := nobody(t)
	bin := starvisorBin(t)
	dir := t.TempDir()
	openUp(t, 0o755, filepath.Dir(bin), filepath.Dir(dir), dir)
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil { // its log folder is nobody's to make
		t.Fatal(err)
	}
	script := filepath.Join(dir, "deploy.star")
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	over := strconv.FormatUint(lim.Max+1, 10) // above the hard limit nobody inherits
	os.WriteFile(script, []byte(`supervisor(minfds = `+over+`)
program(name = "other", command = ["/bin/true"], user = "root")
program(name = "self", command = ["/bin/true"], user = "nobody")
`), 0o644)
	code, out := runAs(t, cred, bin, "check", "-f", script)
	want := `program "other": user: root: starvisor runs as uid ` + uid + `, not root, and cannot switch to another user`
	wantFDs := "supervisor(): minfds: " + over + " open files wanted, but the hard limit is " + strconv.FormatUint(lim.Max, 10) + ", which only root raises"
	if code != ExitFailure || !strings.Contains(out, want) || !strings.Contains(out, wantFDs) || strings.Contains(out, `"self"`) {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

// check lists at most plan.MaxProblems of what it finds on this machine, then counts
// the rest, as evaluation does.
func TestCheckCapsProblems(t *testing.T) {
	is := is.New(t)
	script := filepath.Join(t.TempDir(), "deploy.star")
	is.NoErr(os.WriteFile(script, []byte(`[program(name = "p%d" % i, command = ["no-such-tool-x"], stdout = None, stderr = None) for i in range(30)]`+"\n"), 0o644))
	code, _, errOut := run(t, map[string]string{"PATH": "/usr/bin:/bin"}, "check", "-f", script)
	is.Equal(code, ExitFailure)
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	is.Equal(len(lines), plan.MaxProblems+2)
	is.True(strings.HasSuffix(lines[0], `program "p0": command: "no-such-tool-x" not found in PATH`))
	is.Equal(lines[plan.MaxProblems], "... and 10 more problems")
	is.Equal(lines[plan.MaxProblems+1], "check: 30 problems")
}

// check's problems with supervisor() settings carry the call's position, as those of
// programs do; a state_dir under /proc or /sys, where up cannot make its lock, is one.
func TestSupervisorProblemsPosition(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	t.Chdir(dir) // positions are the working folder's (see fromHere)
	script := filepath.Join(dir, "deploy.star")
	is.NoErr(os.WriteFile(script, []byte("x = 1\nsupervisor(socket = \"/\", state_dir = \"/proc/sys\")\nprogram(name = \"a\", command = [\"/bin/sh\"], stdout = None, stderr = None)\n"), 0o644))
	code, _, errOut := run(t, map[string]string{"PATH": "/usr/bin:/bin"}, "check", "-f", script)
	is.Equal(code, ExitFailure)
	is.Equal(errOut, `deploy.star:2:11: supervisor(): socket: / exists and is not a socket
deploy.star:2:11: supervisor(): state_dir: /proc/sys is under /proc, which cannot hold the daemon's files
check: 2 problems
`)

	// Without supervisor(), the defaults have no position.
	sv := plan.Supervisor{StateDir: "/sys/kernel/x"}
	is.Equal(supervisorProblems(sv), []string{"supervisor(): state_dir: /sys/kernel/x is under /sys, which cannot hold the daemon's files"})
	is.Equal(supervisorProblems(plan.Supervisor{StateDir: "/system/x"}), []string(nil)) // not /sys
}

// check says what up refuses: a state folder, or a socket's folder, others may write.
func TestCheckFoldersOthersMayWrite(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	for _, d := range []string{"st", "sock"} {
		is.NoErr(os.Mkdir(filepath.Join(dir, d), 0o755))
		is.NoErr(os.Chmod(filepath.Join(dir, d), 0o777))
	}
	sv := plan.Supervisor{StateDir: filepath.Join(dir, "st"), Socket: filepath.Join(dir, "sock", "s.sock")}
	got := supervisorProblems(sv)
	is.Equal(len(got), 2)
	is.True(strings.HasPrefix(got[0], "supervisor(): state_dir: state folder "+sv.StateDir+" may be written by others (mode 0777)"))
	is.True(strings.HasPrefix(got[1], "supervisor(): socket: socket folder "+filepath.Dir(sv.Socket)+" may be written by others (mode 0777, no sticky bit)"))
}

// check of a script that declares no program fails, in its own words: it applies
// nothing, so apply's "nothing applied; to stop everything, starvisor shutdown" is not.
func TestCheckDeclaresNoProgram(t *testing.T) {
	is := is.New(t)
	script := filepath.Join(t.TempDir(), "deploy.star")
	is.NoErr(os.WriteFile(script, []byte("x = 1\n"), 0o644))
	code, _, errOut := run(t, map[string]string{"PATH": "/usr/bin:/bin"}, "check", "-f", script)
	is.Equal(code, ExitFailure)
	is.Equal(errOut, script+":1:1: declares no program (apply and a reload refuse such a script)\ncheck: 1 problem\n") // from elsewhere: where it is
}

func TestPythonScript(t *testing.T) {
	for _, c := range []struct {
		argv []string
		want string
	}{
		{[]string{"/srv/venv/bin/python", "-u", "/srv/v1/serve.py", "--port", "80"}, "/srv/v1/serve.py"},
		{[]string{"python3.12", "-X", "utf8", "-Wignore::DeprecationWarning", "app.py"}, "app.py"},
		{[]string{"python3", "-W", "error", "-OO", "app.py"}, "app.py"},
		{[]string{"python3", "-u", "-m", "http.server"}, ""},
		{[]string{"python", "-um", "http.server"}, ""},
		{[]string{"python", "-c", "print(1)"}, ""},
		{[]string{"pypy3", "app.py"}, "app.py"},
		{[]string{"/usr/bin/pythonista", "app.py"}, ""},
		{[]string{"node", "app.js"}, ""},
		{[]string{"python3"}, ""},
	} {
		if got := pythonScript(c.argv); got != c.want {
			t.Errorf("pythonScript(%q) = %q, want %q", c.argv, got, c.want)
		}
	}
}

// Two log paths that name one file through a symlinked folder are two writers of one
// rotating log, as the same path written twice is.
func TestMachineProblemsLogThroughSymlink(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	is.NoErr(os.MkdirAll(filepath.Join(dir, "log"), 0o755))
	is.NoErr(os.Symlink("log", filepath.Join(dir, "logalias")))
	prog := func(name, logPath string) plan.Program {
		pr := plan.Defaults()
		pr.Name, pr.ProcessName, pr.Command, pr.Pos = name, name, []string{"/bin/true"}, "deploy.star:1:1"
		pr.Stdout = plan.DefaultLog(filepath.Join(dir, logPath))
		pr.Stderr = nil
		return pr
	}
	p := &plan.Plan{Root: dir, Programs: []plan.Program{prog("a", "log/shared.log"), prog("b", "logalias/shared.log"), prog("c", "log/c.log")}}
	got := strings.Join(machineProblems(p, func(string) (string, bool) { return "", false }), "\n")
	is.True(strings.Contains(got, `program "b": stdout log: `+filepath.Join(dir, "logalias/shared.log")+` is the same file as the stdout of "a" (`+filepath.Join(dir, "log/shared.log")+`), through a symlink`))
	is.True(!strings.Contains(got, `"c"`))
	is.True(!strings.Contains(got, `program "a"`))
}

// Positions in errors name the files from the working folder: lib/helpers.star:2:49, from
// outside the bundle, named no file an editor could open.
func TestPositionsFromTheWorkingFolder(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	t.Chdir(dir)
	is.NoErr(os.MkdirAll("app/etc/lib", 0o755))
	is.NoErr(os.WriteFile("app/etc/lib/helpers.star", []byte("def mk(n):\n    program(name = n, command = [\"sleep\", \"1\"], bogus = 1)\n"), 0o644))
	is.NoErr(os.WriteFile("app/etc/deploy.star", []byte("load(\"lib/helpers.star\", \"mk\")\nmk(\"a\")\n"), 0o644))
	code, _, errOut := run(t, nil, "plan", "-f", "app/etc")
	is.Equal(code, ExitFailure)
	is.Equal(errOut, `app/etc/lib/helpers.star:2:49: program: unexpected keyword argument "bogus"
Traceback (most recent call last):
  app/etc/deploy.star:2:3: in <toplevel>
  app/etc/lib/helpers.star:2:12: in mk
`)
	t.Chdir("app/etc/lib")
	_, _, errOut = run(t, nil, "plan", "-f", "..")
	is.True(strings.HasPrefix(errOut, dir+"/app/etc/lib/helpers.star:2:49: ")) // above: where it is
	// And print()'s, as the errors' of the same run.
	t.Chdir(dir)
	is.NoErr(os.WriteFile("app/etc/deploy.star", []byte("print(\"hello\")\nprogram(name = \"a\", command = [\"/bin/sleep\", \"1\"])\n"), 0o644))
	_, _, errOut = run(t, nil, "plan", "-f", "app/etc")
	is.Equal(errOut, "app/etc/deploy.star:1: hello\n")
}

// Columns line up as a terminal shows them: サービス takes eight columns, 🙂 two.
func TestPlanColumnsByDisplayWidth(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "deploy.star")
	is.NoErr(os.WriteFile(script, []byte(`program(name = "サービス", command = ["/bin/sleep", "1"])
program(name = "web", command = ["/bin/sleep", "1"])
program(name = "🙂", command = ["/bin/sleep", "1"])
`), 0o644))
	code, out, _ := run(t, nil, "plan", "-f", script)
	is.Equal(code, ExitOK)
	for _, line := range strings.Split(out, "\n")[1:4] { // the header and the three rows
		i := strings.Index(line, "COMMAND")
		if i < 0 {
			i = strings.Index(line, "/bin/sleep")
		}
		is.Equal(logs.Width(line[:i]), logs.Width("サービス")+2) // line
	}
}

// A log folder others may write is warned of, by check: they can read every program's
// output and replace its logs.
func TestCheckWarnsOfLogFolderOthersMayWrite(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	is.NoErr(os.Mkdir(filepath.Join(dir, "log"), 0o755))
	is.NoErr(os.Chmod(filepath.Join(dir, "log"), 0o777))
	script := filepath.Join(dir, "deploy.star")
	is.NoErr(os.WriteFile(script, []byte(`program(name = "a", command = ["/bin/sleep", "1"])`+"\n"), 0o644))
	code, _, errOut := run(t, nil, "check", "-f", script)
	is.Equal(code, ExitOK)
	is.True(strings.Contains(errOut, "warning: log folder "+filepath.Join(dir, "log")+" may be written by others (mode 0777, no sticky bit)"))
	is.NoErr(os.Chmod(filepath.Join(dir, "log"), 0o777|os.ModeSticky))
	_, _, errOut = run(t, nil, "check", "-f", script)
	is.True(!strings.Contains(errOut, "log folder"))
}

// A memory_max of a few bytes is a unit left out: warned of.
func TestCheckWarnsOfATinyMemoryMax(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	t.Chdir(dir)
	is.NoErr(os.WriteFile("deploy.star", []byte(`program(name = "a", command = ["/bin/sleep", "1"], memory_max = "12")`+"\n"), 0o644))
	code, _, errOut := run(t, nil, "check")
	is.Equal(code, ExitOK)
	is.True(strings.Contains(errOut, `deploy.star:1:8: program "a": memory_max: warning: 12 bytes, less than any process takes: a unit left out ("12MB")?`)) // errOut
}
