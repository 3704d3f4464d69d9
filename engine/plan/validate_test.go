package plan

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestValidateAcceptsGoodPlans(t *testing.T) {
	tests := []struct {
		name string
		plan *Plan
	}{
		{"empty", &Plan{Format: Format}},
		{"defaults", planOf(prog("web"))},
		{"bare command looked up in PATH", planOf(prog("web", func(pr *Program) { pr.Command = []string{"python3", "-m", "http.server"} }))},
		{"umask forms", planOf(
			prog("a", func(pr *Program) { pr.Umask = "022" }),
			prog("b", func(pr *Program) { pr.Umask = "0" }),
			prog("c", func(pr *Program) { pr.Umask = "0777" }))},
		{"limits", planOf(prog("web", func(pr *Program) {
			pr.ExitCodes = []int{0, 2, 255}
			pr.StartSecs, pr.StartRetries = 0, -1
			pr.Backoff, pr.BackoffMax = BackoffExponential, 0
			pr.StopSignal = "KILL"
			pr.Stdout, pr.Stderr = nil, nil
			pr.Directory = "/srv"
			pr.Env = map[string]string{"A": "1", "EMPTY": ""}
			pr.Priority = -5
		}))},
		{"every probe kind", planOf(
			prog("a", func(pr *Program) { pr.Ready = &Probe{Kind: ProbeTCP, Host: "127.0.0.1", Port: 80} }),
			prog("b", func(pr *Program) { pr.Ready = &Probe{Kind: ProbeHTTP, URL: "http://127.0.0.1:80/health", Status: 204} }),
			prog("c", func(pr *Program) { pr.Ready = &Probe{Kind: ProbeExec, Command: []string{"/bin/true"}} }),
			prog("d", func(pr *Program) {
				pr.Ready = &Probe{Kind: ProbeLog, Pattern: "listening", Interval: Duration(time.Second), Timeout: Duration(time.Minute)}
			}))},
		{"numprocs", planOf(instances("worker", 3, 1)...)},
		{"dependencies", planOf(prog("db"), prog("cache", dependsOn("db")), prog("web", dependsOn("db", "cache")))},
		{"depends on a numprocs program", planOf(append(instances("worker", 2, 0), prog("web", dependsOn("worker")))...)},
		{"groups", func() *Plan {
			p := planOf(prog("a", inGroup("web")), prog("b", inGroup("web")), prog("c"))
			p.Groups = []Group{{Name: "web", Programs: []string{"a", "b"}, Priority: 5}}
			return p
		}()},
		{"numprocs group named after its program", func() *Plan {
			p := planOf(instances("worker", 2, 0, inGroup("worker"))...)
			p.Groups = []Group{{Name: "worker", Programs: []string{"worker"}}}
			return p
		}()},
		{"implicit own group without an entry", planOf(instances("worker", 2, 0, inGroup("worker"))...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			is.NoErr(tt.plan.Validate()) // a valid plan
		})
	}
}

func inGroup(g string) func(*Program) { return func(pr *Program) { pr.Group = g } }

// Instances may share a stream or a log that does not rotate, as programs may.
func TestInstancesShareLogsThatDoNotRotate(t *testing.T) {
	ps := instances("w", 3, 0, func(pr *Program) {
		pr.Stdout, pr.Stderr = DefaultLog("/dev/stdout"), DefaultLog("/srv/log/w.err")
		pr.Stderr.MaxBytes = 0
	})
	is.New(t).NoErr(planOf(ps...).Finish())
}

func TestValidateRejects(t *testing.T) {
	one := func(mods ...func(*Program)) func() *Plan {
		return func() *Plan { return planOf(prog("web", mods...)) }
	}
	withGroups := func(progs []Program, groups ...Group) func() *Plan {
		return func() *Plan { p := planOf(progs...); p.Groups = groups; return p }
	}
	tests := []struct {
		name string
		plan func() *Plan
		want []string
	}{
		{"empty name", one(func(pr *Program) { pr.Name = "" }),
			[]string{`program "": name: is empty`}},
		{"colon in name", one(func(pr *Program) { pr.Name = "a:b" }),
			[]string{`program "a:b": name: may not contain spaces, ":" or "/", got "a:b"`}},
		{"invisible character in name", one(func(pr *Program) { pr.Name = "api\u200b" }),
			[]string{`program "api\u200b": name: may not contain invisible characters, got "api\u200b"`}},
		{"bidi override in process name", one(func(pr *Program) { pr.ProcessName = "ap\u202ei" }),
			[]string{`program "web": process_name: may not contain invisible characters, got "ap\u202ei"`}},
		{"reserved name", one(func(pr *Program) { pr.Name = "all" }),
			[]string{`program "all": name: "all" is reserved: it selects every process`}},
		{"space in process name", one(func(pr *Program) { pr.ProcessName = "web 1" }),
			[]string{`program "web": process_name: may not contain spaces, ":" or "/", got "web 1"`}},
		{"slash in process name", one(func(pr *Program) { pr.ProcessName = "../x" }),
			[]string{`program "web": process_name: may not contain spaces, ":" or "/", got "../x"`}},
		{"dash in front", one(func(pr *Program) { pr.ProcessName = "-rf" }),
			[]string{`program "web": process_name: may not start with "-" (the CLI would read it as a flag), got "-rf"`}},
		{"name too long", one(func(pr *Program) { pr.ProcessName = strings.Repeat("x", 300) }),
			[]string{`program "web": process_name: is 300 bytes long, at most 240: it names log files (name.err.log, name.log.10), and a file name holds 255`}},
		{"no command", one(func(pr *Program) { pr.Command = nil }),
			[]string{`program "web": command: is empty`}},
		{"empty argv0", one(func(pr *Program) { pr.Command = []string{""} }),
			[]string{`program "web": command: the program to run is empty`}},
		{"relative command path", one(func(pr *Program) { pr.Command = []string{"bin/web"} }),
			[]string{`program "web": command: "bin/web" must be an absolute path or a bare name looked up in PATH`}},
		{"NUL in argument", one(func(pr *Program) { pr.Command = []string{"/bin/web", "a\x00b"} }),
			[]string{`program "web": command: argument 1 contains a NUL byte`}},
		{"NUL in paths", one(func(pr *Program) {
			pr.Directory, pr.User = "/srv\x00", "app\x00"
			pr.Stdout = DefaultLog("/srv/log/web\x00.log")
			pr.Ready = &Probe{Kind: ProbeExec, Command: []string{"check", "a\x00"}}
		}),
			[]string{
				`program "web": directory: path "/srv\x00" contains a NUL byte`,
				`program "web": user: "app\x00" contains a NUL byte`,
				`program "web": stdout: path "/srv/log/web\x00.log" contains a NUL byte`,
				`program "web": ready: exec command argument 1 contains a NUL byte`,
			}},
		{"relative directory", one(func(pr *Program) { pr.Directory = "srv" }),
			[]string{`program "web": directory: must be an absolute path, got "srv"`}},
		{"bad env names", one(func(pr *Program) { pr.Env = map[string]string{"": "x", "A=B": "y", "C": "\x00"} }),
			[]string{
				`program "web": env: empty variable name`,
				`program "web": env: variable name "A=B" may not contain "=" or NUL`,
				`program "web": env: value of C contains a NUL byte`,
			}},
		{"env names with blanks or control characters", one(func(pr *Program) {
			pr.Env = map[string]string{"A\nB": "x", "C D": "y", "E\tF": "z", "G\u0085": "w", "H\r": "\x00", "ok.name-ü": "v"}
		}),
			[]string{
				`program "web": env: variable name "A\nB" may not contain blanks or control characters (newline, tab, ...)`,
				`program "web": env: variable name "C D" may not contain blanks or control characters (newline, tab, ...)`,
				`program "web": env: variable name "E\tF" may not contain blanks or control characters (newline, tab, ...)`,
				`program "web": env: variable name "G\u0085" may not contain blanks or control characters (newline, tab, ...)`,
				`program "web": env: variable name "H\r" may not contain blanks or control characters (newline, tab, ...)`,
				`program "web": env: value of "H\r" contains a NUL byte`,
			}},
		{"umask not octal", one(func(pr *Program) { pr.Umask = "089" }),
			[]string{`program "web": umask: want "" or an octal mode such as "022", got "089"`}},
		{"umask too large", one(func(pr *Program) { pr.Umask = "1777" }),
			[]string{`program "web": umask: want "" or an octal mode such as "022", got "1777"`}},
		{"umask signed", one(func(pr *Program) { pr.Umask = "-22" }),
			[]string{`program "web": umask: want "" or an octal mode such as "022", got "-22"`}},
		{"autorestart", one(func(pr *Program) { pr.Autorestart = "yes" }),
			[]string{`program "web": autorestart: want "true", "false" or "unexpected", got "yes"`}},
		{"exit codes", one(func(pr *Program) { pr.ExitCodes = []int{0, 256, -1} }),
			[]string{
				`program "web": exit_codes: 256 is not an exit status (0..255)`,
				`program "web": exit_codes: -1 is not an exit status (0..255)`,
			}},
		{"start secs", one(func(pr *Program) { pr.StartSecs = -1 }),
			[]string{`program "web": start_secs: must be 0..31536000 (a year), got -1`}},
		{"start retries", one(func(pr *Program) { pr.StartRetries = -2 }),
			[]string{`program "web": start_retries: must be >= -1 (-1 retries forever), got -2`}},
		{"backoff", one(func(pr *Program) { pr.Backoff = "" }),
			[]string{`program "web": backoff: want "linear" or "exponential", got ""`}},
		{"backoff max", one(func(pr *Program) { pr.BackoffMax = Duration(-time.Second) }),
			[]string{`program "web": backoff_max: must not be negative, got -1s`}},
		{"stop signal with SIG prefix", one(func(pr *Program) { pr.StopSignal = "SIGTERM" }),
			[]string{`program "web": stop_signal: no signal is named "SIGTERM": want a name such as TERM, INT, QUIT, HUP, USR1, ABRT`}},
		{"stop signal unknown", one(func(pr *Program) { pr.StopSignal = "STOP" }),
			[]string{`program "web": stop_signal: STOP pauses or resumes a process, never ends it: each stop would wait stop_timeout and end in SIGKILL (stop_signal = "KILL" says so at once)`}},
		{"stop timeout", one(func(pr *Program) { pr.StopTimeout = Duration(-1) }),
			[]string{`program "web": stop_timeout: must not be negative, got -1ns`}},
		{"numprocs zero", one(func(pr *Program) { pr.Numprocs = 0 }),
			[]string{`program "web": numprocs: must be 1..10000, got 0`}},
		{"numprocs start", one(func(pr *Program) { pr.NumprocsStart = -1 }),
			[]string{
				`program "web": numprocs_start: must be >= 0, got -1`,
				`program "web": process_num: 0 of "web" is outside numprocs_start..numprocs_start+numprocs-1 (-1..-1)`,
			}},
		{"log", one(func(pr *Program) {
			pr.Stdout = &Log{Path: "log/web.log", MaxBytes: -1, Backups: -1}
			pr.Stderr = &Log{Path: ""}
		}), []string{
			`program "web": stdout: path must be absolute, got "log/web.log"`,
			`program "web": stdout: max_bytes must be >= 0 (0 never rotates), got -1`,
			`program "web": stdout: backups must be >= 0, got -1`,
			`program "web": stderr: path must be absolute, got ""`,
		}},
		{"probe kind", one(func(pr *Program) { pr.Ready = &Probe{Kind: "grpc"} }),
			[]string{`program "web": ready: want kind tcp, http, exec, log or exited, got "grpc"`}},
		{"tcp probe", one(func(pr *Program) { pr.Ready = &Probe{Kind: ProbeTCP, Port: 70000} }),
			[]string{
				`program "web": ready: tcp port must be 1..65535, got 70000`,
				`program "web": ready: tcp host is empty`,
			}},
		{"http probe", one(func(pr *Program) { pr.Ready = &Probe{Kind: ProbeHTTP, URL: "/health", Status: 42} }),
			[]string{
				`program "web": ready: http url must be an absolute http:// or https:// URL, got "/health"`,
				`program "web": ready: http status must be 100..599, got 42`,
			}},
		{"exec probe", one(func(pr *Program) { pr.Ready = &Probe{Kind: ProbeExec} }),
			[]string{`program "web": ready: exec command is empty`}},
		{"log probe", one(func(pr *Program) {
			pr.Ready = &Probe{Kind: ProbeLog, Interval: Duration(-time.Second), Timeout: Duration(-time.Second)}
		}), []string{
			`program "web": ready: log pattern is empty`,
			`program "web": ready: interval must not be negative, got -1s`,
			`program "web": ready: timeout must not be negative, got -1s`,
		}},
		{"log probe without a log", one(func(pr *Program) {
			pr.Ready, pr.Stdout = &Probe{Kind: ProbeLog, Pattern: "up"}, nil
		}), []string{`program "web": ready: probe.log reads the stdout log, and stdout is None`}},
		{"plan paths", func() *Plan {
			p := planOf(prog("web"))
			p.Root, p.Supervisor = "etc", Supervisor{Socket: "run/s.sock", Pidfile: "s.pid", LogDir: "log", StateDir: "state"}
			return p
		}, []string{
			`plan: root: must be an absolute path, got "etc"`,
			`supervisor: socket: must be an absolute path, got "run/s.sock"`,
			`supervisor: pidfile: must be an absolute path, got "s.pid"`,
			`supervisor: log_dir: must be an absolute path, got "log"`,
			`supervisor: state_dir: must be an absolute path, got "state"`,
		}},
		{"NUL in a plan path", func() *Plan {
			p := planOf(prog("web"))
			p.Supervisor.Socket = "/srv/run/s\x00.sock"
			return p
		}, []string{`supervisor: socket: path "/srv/run/s\x00.sock" contains a NUL byte`}},
		{"supervisor problem at the supervisor() call", func() *Plan {
			p := planOf(prog("web"))
			p.Supervisor.Pos, p.Supervisor.StateDir, p.Supervisor.Socket = "deploy.star:2:11", "state", "/srv/etc/deploy.star"
			return p
		}, []string{
			`deploy.star:2:11: supervisor: state_dir: must be an absolute path, got "state"`,
			`deploy.star:2:11: supervisor: socket: "/srv/etc/deploy.star" is a script of the bundle: the daemon would replace it`,
		}},
		{"duplicate process name", func() *Plan {
			return planOf(prog("a"), prog("b", func(pr *Program) { pr.ProcessName = "a" }))
		}, []string{`program "b": process_name: "a" is already the process name of program "a"`}},
		{"program declared twice", func() *Plan {
			return planOf(prog("a", at("deploy.star:1:1")), prog("a", at("deploy.star:9:1"), func(pr *Program) { pr.ProcessName = "a2" }))
		}, []string{`deploy.star:9:1: program "a": name: program declared twice (first at deploy.star:1:1)`}},
		{"numprocs count", func() *Plan { return planOf(instances("w", 3, 0)[:2]...) },
			[]string{`program "w": numprocs: is 3 but the plan has 2 processes of this program`}},
		{"instances disagree", func() *Plan {
			ps := instances("w", 2, 0)
			ps[1].NumprocsStart = 1
			return planOf(ps...)
		}, []string{`program "w": numprocs: instances disagree: "w_00" has numprocs 2 from 0, "w_01" has 2 from 1`}},
		{"process num", func() *Plan {
			ps := instances("w", 3, 1)
			ps[0].ProcessNum = 0
			ps[2].ProcessNum = 2
			return planOf(ps...)
		}, []string{
			`program "w": process_num: 0 of "w_01" is outside numprocs_start..numprocs_start+numprocs-1 (1..3)`,
			`program "w": process_num: 2 is used by both "w_02" and "w_03"`,
		}},
		{"numprocs_start overflows", func() *Plan {
			// What evaluation would expand: numbers past MaxInt wrap around.
			return planOf(instances("w", 3, math.MaxInt-1)...)
		}, []string{`program "w": numprocs_start: 9223372036854775806 + numprocs 3 overflows; want at most 9223372036854775805`}},
		{"instances share a log", func() *Plan {
			ps := instances("w", 3, 0, func(pr *Program) { pr.Stderr = DefaultLog("/srv/log/w.err") })
			for i := range ps {
				ps[i].Stdout = DefaultLog("/srv/log/w.log")
			}
			return planOf(ps...)
		}, []string{
			`program "w": stdout: path "/srv/log/w.log" is shared by processes "w_00" and "w_01"; use {num} or {process_name} in it`,
			`program "w": stderr: path "/srv/log/w.err" is shared by processes "w_00" and "w_01"; use {num} or {process_name} in it`,
			`program "w": stdout: path "/srv/log/w.log" is shared by processes "w_00" and "w_02"; use {num} or {process_name} in it`,
			`program "w": stderr: path "/srv/log/w.err" is shared by processes "w_00" and "w_02"; use {num} or {process_name} in it`,
		}},
		{"programs and streams share a log", func() *Plan {
			p := planOf(prog("a"), prog("b", func(pr *Program) { pr.Stdout = DefaultLog("/srv/log/a.log") }),
				prog("c", func(pr *Program) { pr.Stderr = DefaultLog("/srv/log/c.log") }),
				prog("d", func(pr *Program) { pr.Stderr, pr.RedirectStderr = DefaultLog("/srv/log/d.log"), true }),
				prog("e", func(pr *Program) { pr.Stdout, pr.Stderr = DefaultLog("/dev/stdout"), DefaultLog("/dev/stdout") }),
				prog("f", func(pr *Program) { pr.Stdout = DefaultLog("/dev/stdout") }),
				// Neither rotates: they may share (supervisord's logfile_maxbytes=0); i rotates.
				prog("g", func(pr *Program) { pr.Stdout = &Log{Path: "/srv/log/g.log"} }),
				prog("h", func(pr *Program) { pr.Stdout = &Log{Path: "/srv/log/g.log"} }),
				prog("i", func(pr *Program) { pr.Stdout = DefaultLog("/srv/log/g.log") }),
				prog("starvisor"))
			p.Supervisor.LogDir = "/srv/log"
			return p
		}, []string{
			`program "b": stdout: path "/srv/log/a.log" is also the stdout of "a": two writers would rotate it apart and lose lines`,
			`program "c": stderr: path "/srv/log/c.log" is also its stdout: two writers would rotate it apart and lose lines; use redirect_stderr = True`,
			`program "i": stdout: path "/srv/log/g.log" is also the stdout of "g": two writers would rotate it apart and lose lines`,
			`program "starvisor": stdout: path "/srv/log/starvisor.log" is the daemon's own log (up --detach writes it)`,
		}},
		{"logs onto the daemon's own files", func() *Plan {
			p := planOf(prog("a", func(pr *Program) { pr.Stdout = DefaultLog("/srv/run/starvisor.pid") }),
				prog("b", func(pr *Program) { pr.Stdout = DefaultLog("/srv/run/state.json") }),
				prog("c", func(pr *Program) { pr.Stderr = DefaultLog("/srv/run/plan.json") }))
			p.Supervisor.StateDir, p.Supervisor.Pidfile = "/srv/run", "/srv/run/starvisor.pid"
			return p
		}, []string{
			`program "a": stdout: path "/srv/run/starvisor.pid" is a file of the daemon's own (its pidfile, socket, or state_dir's state.json, plan.json or daemon.lock): the output would be appended to it`,
			`program "b": stdout: path "/srv/run/state.json" is a file of the daemon's own (its pidfile, socket, or state_dir's state.json, plan.json or daemon.lock): the output would be appended to it`,
			`program "c": stderr: path "/srv/run/plan.json" is a file of the daemon's own (its pidfile, socket, or state_dir's state.json, plan.json or daemon.lock): the output would be appended to it`,
		}},
		{"paths onto the bundle's scripts", func() *Plan {
			p := planOf(prog("a", func(pr *Program) { pr.Stdout = DefaultLog("/srv/deploy.star") }),
				prog("b", func(pr *Program) { pr.Stderr = DefaultLog("/srv/lib/x.star") }))
			p.Root, p.Entry = "/srv", "deploy.star"
			p.Inputs.Files = map[string]string{"deploy.star": "", "lib/x.star": "", "@stdlib//python.star": ""}
			p.Supervisor.Socket, p.Supervisor.Pidfile = "/srv/deploy.star", "/srv/lib/x.star"
			return p
		}, []string{
			`supervisor: socket: "/srv/deploy.star" is a script of the bundle: the daemon would replace it`,
			`supervisor: pidfile: "/srv/lib/x.star" is a script of the bundle: the daemon would replace it`,
			`program "a": stdout: path "/srv/deploy.star" is a script of the bundle: the output would be appended to it`,
			`program "b": stderr: path "/srv/lib/x.star" is a script of the bundle: the output would be appended to it`,
		}},
		{"unknown dependency", func() *Plan { return planOf(prog("web", dependsOn("db", ""))) },
			[]string{
				`program "web": depends_on: empty program name`,
				`program "web": depends_on: no such program "db"`,
			}},
		{"self dependency", func() *Plan { return planOf(prog("web", dependsOn("web"))) },
			[]string{`program "web": depends_on: cycle web -> web`}},
		{"cycle", func() *Plan {
			return planOf(prog("z"), prog("a", dependsOn("b")), prog("b", dependsOn("c")), prog("c", dependsOn("a", "z")))
		}, []string{`program "a": depends_on: cycle a -> b -> c -> a`}},
		{"long cycle", func() *Plan {
			// A generated fleet with one depends_on off by one: the middle is elided.
			var ps []Program
			for i := range 1000 {
				ps = append(ps, prog(fmt.Sprintf("s%d", i), dependsOn(fmt.Sprintf("s%d", (i+1)%1000))))
			}
			return planOf(ps...)
		}, []string{`program "s0": depends_on: cycle s0 -> s1 -> s2 -> … (996 more) -> s999 -> s0`}},
		{"cycle of eight", func() *Plan {
			var ps []Program
			for i := range 8 {
				ps = append(ps, prog(fmt.Sprintf("s%d", i), dependsOn(fmt.Sprintf("s%d", (i+1)%8))))
			}
			return planOf(ps...)
		}, []string{`program "s0": depends_on: cycle s0 -> s1 -> s2 -> s3 -> s4 -> s5 -> s6 -> s7 -> s0`}},
		{"long names are shortened", func() *Plan {
			long := strings.Repeat("x", 5000)
			return planOf(prog(long), prog("b", dependsOn(strings.Repeat("y", 300))))
		}, []string{
			`program "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…(5000 bytes)": name: is 5000 bytes long, at most 240: it names log files (name.err.log, name.log.10), and a file name holds 255`,
			`program "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…(5000 bytes)": process_name: is 5000 bytes long, at most 240: it names log files (name.err.log, name.log.10), and a file name holds 255`,
			`program "b": depends_on: no such program "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy…(300 bytes)"`,
		}},
		{"two cycles", func() *Plan {
			return planOf(prog("a", dependsOn("b")), prog("b", dependsOn("a")), prog("c", dependsOn("d")), prog("d", dependsOn("c")))
		}, []string{
			`program "a": depends_on: cycle a -> b -> a`,
			`program "c": depends_on: cycle c -> d -> c`,
		}},
		{"group declared twice", withGroups([]Program{prog("a", inGroup("g"))},
			Group{Name: "g", Programs: []string{"a"}}, Group{Name: "g", Programs: []string{}, Pos: "deploy.star:4:1"}),
			[]string{
				`deploy.star:4:1: group "g": name: group declared twice`,
				`deploy.star:4:1: group "g": programs: is empty`,
			}},
		{"bad group name", withGroups([]Program{prog("a", inGroup("a b"))}, Group{Name: "a b", Programs: []string{"a"}}),
			[]string{`group "a b": name: may not contain spaces, ":" or "/", got "a b"`}},
		{"group member missing", withGroups([]Program{prog("a", inGroup("g"))}, Group{Name: "g", Programs: []string{"a", "nope"}}),
			[]string{`group "g": programs: no such program "nope"`}},
		{"member listed twice", withGroups([]Program{prog("a", inGroup("g"))}, Group{Name: "g", Programs: []string{"a", "a"}}),
			[]string{`group "g": programs: "a" is listed twice`}},
		{"program in two groups", withGroups([]Program{prog("a", inGroup("g"))},
			Group{Name: "g", Programs: []string{"a"}}, Group{Name: "h", Programs: []string{"a"}}),
			[]string{`group "h": programs: "a" is already in group "g"; a program belongs to at most one group`}},
		{"group field disagrees with the listing", withGroups([]Program{prog("a", inGroup("h")), prog("b", inGroup("h"))},
			Group{Name: "g", Programs: []string{"a"}}, Group{Name: "h", Programs: []string{"b"}}),
			[]string{`program "a": group: is "h" but group "g" lists this program`}},
		{"listed program without group field", withGroups([]Program{prog("a")}, Group{Name: "g", Programs: []string{"a"}}),
			[]string{`program "a": group: is "" but group "g" lists this program`}},
		{"no such group", withGroups([]Program{prog("a", inGroup("web"))}),
			[]string{`program "a": group: no such group "web"`}},
		{"group does not list the program", withGroups([]Program{prog("a", inGroup("g")), prog("b", inGroup("g"))},
			Group{Name: "g", Programs: []string{"a"}}),
			[]string{`program "b": group: group "g" does not list this program`}},
		{"group named after another program", withGroups([]Program{prog("a", inGroup("b")), prog("b")},
			Group{Name: "b", Programs: []string{"a"}}),
			[]string{`group "b": name: is also the name of a program; a group may share a name only with its one member`}},
		{"own-name group with other members", withGroups(append(instances("w", 2, 0, inGroup("w")), prog("a", inGroup("w"))),
			Group{Name: "w", Programs: []string{"w", "a"}}),
			[]string{`group "w": name: is also the name of a program; a group may share a name only with its one member`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			err := tt.plan().Validate()
			is.True(err != nil) // the plan is invalid
			is.Equal(err.Error(), strings.Join(tt.want, "\n"))
		})
	}
}

// Past MaxProblems, the problems are counted, not listed: 1500 two-program cycles from
// one generator's mistake were 1500 lines.
func TestValidateCapsProblems(t *testing.T) {
	is := is.New(t)
	var ps []Program
	for i := range 3000 {
		ps = append(ps, prog(fmt.Sprintf("a%d", i), dependsOn(fmt.Sprintf("a%d", i^1))))
	}
	err := planOf(ps...).Validate()
	is.True(err != nil)
	lines := strings.Split(err.Error(), "\n")
	is.Equal(len(lines), MaxProblems+1)
	is.Equal(lines[0], `program "a0": depends_on: cycle a0 -> a1 -> a0`)
	is.Equal(lines[MaxProblems-1], `program "a38": depends_on: cycle a38 -> a39 -> a38`)
	is.Equal(lines[MaxProblems], "... and 1480 more problems")

	// Exactly MaxProblems are all listed.
	is.Equal(len(strings.Split(planOf(ps[:2*MaxProblems]...).Validate().Error(), "\n")), MaxProblems)
}

func TestShort(t *testing.T) {
	is := is.New(t)
	is.Equal(Short("web"), "web")
	is.Equal(Short(strings.Repeat("x", 64)), strings.Repeat("x", 64))
	is.Equal(Short(strings.Repeat("x", 65)), strings.Repeat("x", 40)+"…(65 bytes)")
	is.Equal(Short(strings.Repeat("é", 50)), strings.Repeat("é", 20)+"…(100 bytes)") // cut between runes
	is.Equal(Short("a"+strings.Repeat("é", 50)), "a"+strings.Repeat("é", 19)+"…(101 bytes)")
}

func TestValidateReportsEveryProblemWithItsPosition(t *testing.T) {
	is := is.New(t)
	p := planOf(
		prog("a", at("deploy.star:3:1"), func(pr *Program) { pr.Autorestart = "always"; pr.StartSecs = -1 }),
		prog("b", at("deploy.star:9:1"), dependsOn("ghost")),
	)
	p.Programs = append(p.Programs, instances("w", 3, 0, at("lib/w.star:2:5"), func(pr *Program) { pr.StopSignal = "9" })...)
	err := p.Validate()
	is.True(err != nil)
	is.Equal(err.Error(), strings.Join([]string{
		`deploy.star:3:1: program "a": autorestart: want "true", "false" or "unexpected", got "always"`,
		`deploy.star:3:1: program "a": start_secs: must be 0..31536000 (a year), got -1`,
		// Three instances, one mistake: reported once.
		`lib/w.star:2:5: program "w": stop_signal: no signal is named "9": want a name such as TERM, INT, QUIT, HUP, USR1, ABRT`,
		`deploy.star:9:1: program "b": depends_on: no such program "ghost"`,
	}, "\n"))
	// Stable: the same plan gives the same text every time.
	for range 20 {
		is.Equal(p.Validate().Error(), err.Error())
	}
}

// An env name's letters are shown as typed: "MY ODD-名" read as "MY ODD-\u540d".
func TestEnvNameShownAsTyped(t *testing.T) {
	is := is.New(t)
	is.Equal(EnvNameProblem("MY ODD-名"), `variable name "MY ODD-名" may not contain blanks or control characters (newline, tab, ...)`)
	is.Equal(ShowEnvName("A,名"), `"A,名"`)
	is.Equal(ShowEnvName("A\u200bB"), `"A\u200bB"`) // an invisible one stays escaped
}
