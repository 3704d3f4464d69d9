package builtins_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/builtins"
	"github.com/starvisor/starvisor/engine/plan"
)

func TestProgramStar(t *testing.T) { runStar(t, "program") }

func TestProgramPlan(t *testing.T) {
	is := is.New(t)
	p, root := evalTxtar(t, `
-- deploy.star --
program(name = "web", command = "bin/web --port '80 80'", directory = "srv",
        stdout = log("log/web.out", max_bytes = "10MB", backups = 3, timestamps = True))
program(name = "worker", command = ["python3", "-m", "w"], numprocs = 2, numprocs_start = 1,
        stdout = log("log/{name}-{num:02}.out"), depends_on = ["web"], autorestart = False,
        stop_signal = "sigquit", stop_timeout = 3, start_retries = -1, start_secs = "2s")
supervisor(log_dir = "logs")  # after program(): default logs still follow it
`)
	is.Equal(len(p.Programs), 3)
	web, ok := p.Lookup("web")
	is.True(ok)
	is.Equal(web.Command, []string{root + "/bin/web", "--port", "80 80"}) // relative argv[0] resolved, quotes kept
	is.Equal(web.Directory, root+"/srv")
	is.Equal(*web.Stdout, plan.Log{Path: root + "/log/web.out", MaxBytes: 10 << 20, Backups: 3, Timestamps: true})
	is.Equal(web.Stderr.Path, root+"/logs/web.err.log") // default log in the final log_dir
	is.Equal(web.Pos, "deploy.star:1:8")
	is.Equal(web.Env, map[string]string{"STARVISOR_PROCESS_NUM": "0"})
	is.True(web.Hash != "") // Finish()ed

	w2, ok := p.Lookup("worker_2")
	is.True(ok)
	is.Equal(w2.Command, []string{"python3", "-m", "w"}) // a bare name stays for PATH lookup
	is.Equal(w2.ProcessNum, 2)
	is.Equal(w2.Group, "worker") // numprocs > 1 forms a group named after the program
	is.Equal(w2.Env["STARVISOR_PROCESS_NUM"], "2")
	is.Equal(w2.Stdout.Path, root+"/log/worker-02.out")
	is.Equal(w2.Autorestart, plan.RestartNever)
	is.Equal(w2.StopSignal, "QUIT")
	is.Equal(w2.StopTimeout.D().Seconds(), 3.0)
	is.Equal(w2.StartRetries, -1)
	is.Equal(w2.StartSecs, 2) // a duration string of whole seconds, as the other durations
	is.Equal(w2.DependsOn, []string{"web"})
	is.Equal(w2.Pos, "deploy.star:3:8")
	is.Equal(p.Programs[0].ProcessName, "web") // start order: web before what depends on it
	is.Equal(p.Supervisor.LogDir, root+"/logs")
	is.Equal(p.Supervisor.Socket, root+"/run/starvisor.sock")
}

func TestProgramDefaults(t *testing.T) {
	is := is.New(t)
	p, root := evalTxtar(t, `
-- deploy.star --
program(name = "a", command = "a")
`)
	want := plan.Defaults()
	want.Name, want.ProcessName, want.Command = "a", "a", []string{"a"}
	want.Env = map[string]string{"STARVISOR_PROCESS_NUM": "0"}
	want.Stdout = plan.DefaultLog(root + "/log/a.log")
	want.Stderr = plan.DefaultLog(root + "/log/a.err.log")
	want.Pos = "deploy.star:1:8"
	got := p.Programs[0]
	want.Hash = got.Hash
	is.Equal(got, want)
}

func TestProgramRedirectStderr(t *testing.T) {
	is := is.New(t)
	p, _ := evalTxtar(t, `
-- deploy.star --
program(name = "a", command = "a", redirect_stderr = True)
program(name = "b", command = "b", stdout = None, stderr = None)
`)
	a, _ := p.Lookup("a")
	is.True(a.RedirectStderr)
	is.Equal(a.Stderr, nil) // goes to stdout's log
	b, _ := p.Lookup("b")
	is.Equal(b.Stdout, nil) // discarded
	is.Equal(b.Stderr, nil)
}

// An env name with a newline or a blank is refused on the env argument, and names with
// '.', '-' or non-ASCII letters, which some programs use, are kept.
func TestProgramEnvNames(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- deploy.star --
program(name = "a", command = "x", env = {"C\nD": "v"})
`)
	_, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star")})
	is.True(err != nil)
	is.Equal(firstLine(err), `deploy.star:1:36: program: env: variable name "C\nD" may not contain blanks or control characters (newline, tab, ...)`)

	p, _ := evalTxtar(t, `
-- deploy.star --
program(name = "a", command = "x", env = {"log.level": "1", "my-var": "2", "ünï": "3"})
`)
	is.Equal(p.Programs[0].Env["ünï"], "3")
	is.Equal(p.Programs[0].Env["log.level"], "1")
}

// numprocs_start so large that the last process number would wrap around is one error on
// that argument (it was one per process, naming negative numbers).
func TestProgramNumprocsStartOverflow(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- deploy.star --
program(name = "a", command = "sleep 1", numprocs = 2000, numprocs_start = (1 << 63) - 1000)
`)
	_, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star")})
	is.True(err != nil)
	is.Equal(firstLine(err), "deploy.star:1:59: program: numprocs_start: 9223372036854774808 + numprocs 2000 overflows; want at most 9223372036854773808")
	is.Equal(strings.Count(err.Error(), "\n"), 2) // the message and a one-frame traceback

	p, _ := evalTxtar(t, `
-- deploy.star --
program(name = "a", command = "sleep 1", numprocs = 2, numprocs_start = (1 << 63) - 2)
`)
	is.Equal(p.Programs[1].ProcessNum, 1<<63-1)
}

// A long name is shortened in messages, and a program declared by a helper keeps the
// helper's stack under its shortened name.
func TestProgramLongNameInMessages(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- deploy.star --
def svc(n):
    program(name = n, command = "sleep 1", depends_on = ["nope"])
svc("y" * 100)
`)
	_, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star")})
	is.True(err != nil)
	is.Equal(err.Error(), `deploy.star:3:4: program "`+strings.Repeat("y", 40)+`…(100 bytes)": depends_on: no such program "nope"
Traceback (most recent call last):
  deploy.star:3:4: in <toplevel>
  deploy.star:2:12: in svc`)
}

// Any signal the system names is a stop_signal, and a number stands for its name, as
// supervisord reads stopsignal=ABRT and stopsignal=9.
func TestProgramStopSignalNames(t *testing.T) {
	is := is.New(t)
	p, _ := evalTxtar(t, `
-- deploy.star --
program(name = "a", command = "x", stop_signal = "SIGABRT")
program(name = "b", command = "x", stop_signal = "pwr")
program(name = "c", command = "x", stop_signal = "9")
program(name = "d", command = "x", stop_signal = 15)
`)
	for name, want := range map[string]string{"a": "ABRT", "b": "PWR", "c": "KILL", "d": "TERM"} {
		pr, ok := p.Lookup(name)
		is.True(ok)
		is.Equal(pr.StopSignal, want)
	}
}

// None for an optional keyword that takes no None is that keyword not given, so a
// library's helper passes its own optional arguments on (group = group, default None);
// where None means something (stdout: discard; ready: no probe) it still does, and a
// required one is still refused.
func TestProgramNoneIsTheDefault(t *testing.T) {
	is := is.New(t)
	p, _ := evalTxtar(t, `
-- deploy.star --
def svc(name, group = None, directory = None, user = None, depends_on = None, memory_max = None, umask = None):
    program(name = name, command = ["sleep", "1"], group = group, directory = directory, user = user,
            depends_on = depends_on, memory_max = memory_max, umask = umask, stdout = None, ready = None,
            stderr = log("log/" + name + ".err", max_bytes = None, backups = None))
svc("a")
svc("b", group = "g", depends_on = ["a"])
`)
	a, _ := p.Lookup("a")
	is.Equal(a.Group, "")
	is.Equal(a.Directory, "") // as when not given
	is.Equal(a.Stdout, nil)   // None: discarded, as ever
	is.Equal(a.Ready, nil)
	is.Equal(a.Stderr.MaxBytes, int64(50<<20)) // the defaults
	b, _ := p.Lookup("b")
	is.Equal(b.Group, "g")
	dir := writeTxtar(t, "-- deploy.star --\nprogram(name = None, command = [\"sleep\", \"1\"])\n")
	_, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star")})
	is.True(err != nil && strings.Contains(err.Error(), "program: name: got NoneType, want string"))
}
