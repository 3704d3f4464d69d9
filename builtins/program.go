package builtins

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/starvisor/starvisor/engine/plan"
)

// programModule provides program(name, command, ...): one plan.Program per process.
type programModule struct{}

func (programModule) Name() string { return "program" }

func (programModule) Members() starlark.StringDict {
	return starlark.StringDict{"program": starlark.NewBuiltin("program", programFn)}
}

var backoffs = []string{plan.BackoffLinear, plan.BackoffExponential}

// programParams are program()'s keywords, as DESIGN.md names them; name and command may
// also be given by position.
var programParams = newParamSpec(2,
	"name", "command", "directory", "env", "inherit_env", "user", "umask", "autostart", "autorestart",
	"exit_codes", "start_secs", "start_retries", "stop_signal", "stop_timeout", "stop_as_group", "kill_as_group",
	"priority", "numprocs", "numprocs_start", "process_name", "stdout", "stderr", "redirect_stderr",
	"depends_on", "ready", "group", "backoff", "backoff_max", "memory_max",
)

// processNumEnv is the variable through which each instance sees its process_num.
const processNumEnv = "STARVISOR_PROCESS_NUM"

// reservedEnv are the variables starvisor sets in every process (see engine/env.go):
// a value given in env would be replaced at spawn, and STARVISOR_DAEMON is how the next
// daemon finds a dead one's children.
var reservedEnv = []string{processNumEnv, "STARVISOR_PROCESS_NAME", "STARVISOR_GROUP_NAME", "STARVISOR_DAEMON"}

// declared is one program() call: its processes, and what is settled only after the
// whole script ran (the group, and default logs, which follow supervisor(log_dir)).
type declared struct {
	name, group, pos string
	site             string // the program() call itself, when not pos (a library's line)
	numprocs         int
	priority         int
	defaultStdout    bool
	defaultStderr    bool
	instances        []plan.Program
}

// programArgs holds program()'s arguments in one allocation (each separate variable
// would escape to the heap through unpack).
type programArgs struct {
	name, directory, user, processName, group string
	command                                   commandArg
	env                                       envArg
	umask                                     umaskArg
	stdout, stderr                            logArg
	dependsOn                                 namesArg
	ready                                     probeArg
	redirectStderr                            bool
	inheritEnv, autostart                     bool
	autorestart                               restartArg
	exitCodes                                 exitCodesArg
	startSecs                                 secondsArg
	startRetries                              intMin
	stopSignal                                signalArg
	stopTimeout, backoffMax                   durationArg
	stopAsGroup, killAsGroup                  bool
	priority                                  int
	numprocs, numprocsStart                   intMin
	backoff                                   oneOf
	memoryMax                                 sizeArg
}

// programDefaults is plan.Defaults, computed once: program() copies what it keeps.
var programDefaults = plan.Defaults()

// Templates most programs use, parsed once.
var (
	defaultName         = mustTemplate("{name}")
	defaultNumprocsName = mustTemplate("{name}_{num}")
)

func mustTemplate(src string) *template {
	t, err := parseTemplate(src, "name", "num")
	if err != nil {
		panic(err)
	}
	return t
}

// newProgramArgs returns supervisord's defaults, from plan.Defaults.
func newProgramArgs() *programArgs {
	d := &programDefaults
	return &programArgs{
		inheritEnv:    d.InheritEnv,
		autostart:     d.Autostart,
		autorestart:   restartArg(d.Autorestart),
		exitCodes:     exitCodesArg(d.ExitCodes),
		startSecs:     secondsArg{intMin{v: d.StartSecs, min: 0, max: plan.MaxStartSecs}},
		startRetries:  intMin{v: d.StartRetries, min: -1},
		stopSignal:    signalArg(d.StopSignal),
		stopTimeout:   durationArg(d.StopTimeout),
		stopAsGroup:   d.StopAsGroup,
		killAsGroup:   d.KillAsGroup,
		priority:      d.Priority,
		numprocs:      intMin{v: d.Numprocs, min: 1, max: plan.MaxNumprocs},
		numprocsStart: intMin{v: d.NumprocsStart, min: 0},
		backoff:       oneOf{v: d.Backoff, want: backoffs},
		backoffMax:    durationArg(d.BackoffMax),
	}
}

func programFn(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, err := stateFrom(th)
	if err != nil {
		return nil, err
	}
	if err := maxPositional(fn.Name(), args, 2); err != nil {
		return nil, err
	}
	a := newProgramArgs()
	if err := programParams.unpack(fn.Name(), args, kwargs,
		&a.name, &a.command, &a.directory, &a.env, &a.inheritEnv, &a.user, &a.umask, &a.autostart,
		&a.autorestart, &a.exitCodes, &a.startSecs, &a.startRetries, &a.stopSignal, &a.stopTimeout,
		&a.stopAsGroup, &a.killAsGroup, &a.priority, &a.numprocs, &a.numprocsStart, &a.processName,
		&a.stdout, &a.stderr, &a.redirectStderr, &a.dependsOn, &a.ready, &a.group, &a.backoff, &a.backoffMax,
		&a.memoryMax,
	); err != nil {
		return nil, err
	}
	if a.stopAsGroup {
		// The stop's kill goes to the group too (as supervisord's stopasgroup implies
		// killasgroup): the plan says so, and a False given with it is refused, as there.
		for _, kw := range kwargs {
			if string(kw[0].(starlark.String)) == "kill_as_group" && !a.killAsGroup {
				return nil, fmt.Errorf("%s: kill_as_group: False with stop_as_group = True: a group that is stopped together is killed together", fn.Name())
			}
		}
		a.killAsGroup = true
	}
	nameTmpl, err := a.check(fn.Name(), s)
	if err != nil {
		return nil, err
	}
	for _, kw := range []struct{ name, path string }{{"command", a.command[0]}, {"directory", a.directory}} {
		if err := noShell(fn.Name(), kw.name, kw.path); err != nil {
			return nil, err
		}
	}
	// Relative paths resolve against the calling file's folder; a bare command name stays
	// for a PATH lookup at launch.
	if argv0 := a.command[0]; strings.Contains(argv0, "/") && !filepath.IsAbs(argv0) {
		a.command = append(commandArg{s.abs(th, argv0)}, a.command[1:]...)
	}
	if a.directory != "" {
		a.directory = s.abs(th, a.directory)
	}
	d, err := a.declare(nameTmpl, posString(declaredAt(th)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn.Name(), err)
	}
	if site := posString(caller(th)); site != d.pos {
		d.site = site
	}
	if th.CallStackDepth() > 2 { // called from a function, not the file's top level
		if s.calls == nil {
			s.calls = map[string]string{}
		}
		s.calls[d.name] = th.CallStack()[:th.CallStackDepth()-1].String()
	}
	s.programs = append(s.programs, d)
	s.nprocs += d.numprocs
	s.byName[d.name] = d
	return d.value(), nil
}

// check rejects what no plan could hold, at the call site, and returns the parsed
// process_name template.
func (a *programArgs) check(fn string, s *evalState) (*template, error) {
	fail := func(param, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %s", fn, param, fmt.Sprintf(format, args...))
	}
	if err := checkName(a.name); err != nil {
		return nil, fail("name", "%v", err)
	}
	if a.group != "" {
		if err := checkName(a.group); err != nil {
			return nil, fail("group", "%v", err)
		}
	}
	if prev, ok := s.programIndex(a.name); ok {
		at := prev.pos
		if prev.site != "" {
			at = prev.site + " (from " + prev.pos + ")" // the library's line, and the call that led there
		}
		return nil, fail("name", "%q already declared at %s", plan.Short(a.name), at)
	}
	for _, k := range reservedEnv {
		if _, ok := a.env[k]; ok {
			return nil, fail("env", "%s is set by starvisor for each process", k)
		}
	}
	if a.redirectStderr && a.stderr.set {
		return nil, fail("stderr", "given together with redirect_stderr = True")
	}
	n := a.numprocs.v
	if total := s.nprocs + n; total > plan.MaxProcesses {
		// A loop of pools would expand into gigabytes after the evaluation's own limits.
		return nil, fail("numprocs", "%d makes %d processes in the plan, at most %d", n, total, plan.MaxProcesses)
	}
	if most := plan.MaxNumprocsStart(n); a.numprocsStart.v > most {
		// The last number, numprocs_start+numprocs-1, would wrap around.
		return nil, fail("numprocs_start", "%d + numprocs %d overflows; want at most %d", a.numprocsStart.v, n, most)
	}
	t := defaultName
	switch {
	case a.processName != "":
		var err error
		if t, err = parseTemplate(a.processName, "name", "num"); err != nil {
			return nil, fail("process_name", "%v", err)
		}
	case n > 1:
		t = defaultNumprocsName
	}
	if n > 1 && !t.uses("num") {
		return nil, fail("process_name", "%q has no {num}; with numprocs = %d the processes would share one name", t.src, n)
	}
	if a.processName != "" {
		// Once, for the template: validation said it once per process it made.
		for i := range n {
			if name := t.expand(a.name, a.numprocsStart.v+i, ""); plan.NameProblem(name) != "" {
				msg, _, _ := strings.Cut(plan.NameProblem(name), ", got ")
				return nil, fail("process_name", "%q makes %q, which %s", t.src, plan.Short(name), msg)
			}
		}
	}
	for i, l := range []*logValue{a.stdout.log, a.stderr.log} {
		param := [...]string{"stdout", "stderr"}[i]
		if l != nil && n > 1 && !l.tmpl.uses("num") && !l.tmpl.uses("process_name") && l.rotates() {
			return nil, fail(param, "log path %q has no {num} or {process_name}; with numprocs = %d the processes would share one file", l.path, n)
		}
	}
	return t, nil
}

// declare expands the program into one plan.Program per process.
func (a *programArgs) declare(nameTmpl *template, pos string) (*declared, error) {
	n := a.numprocs.v
	d := &declared{
		name: a.name, group: a.group, pos: pos, numprocs: n, priority: a.priority,
		defaultStdout: !a.stdout.set, defaultStderr: !a.stderr.set && !a.redirectStderr,
		instances: make([]plan.Program, 0, n),
	}
	deps := []string(a.dependsOn)
	if deps == nil {
		deps = []string{}
	}
	for i := range n {
		num := a.numprocsStart.v + i
		pname := nameTmpl.expand(a.name, num, "")
		env := make(map[string]string, len(a.env)+1)
		for k, v := range a.env {
			env[k] = expandInstance(v, num, pname)
		}
		env[processNumEnv] = strconv.Itoa(num)
		ready, err := a.ready.instance(num, pname)
		if err != nil {
			return nil, fmt.Errorf("ready: %w", err)
		}
		command := make([]string, len(a.command))
		for i, arg := range a.command {
			command[i] = expandInstance(arg, num, pname)
		}
		d.instances = append(d.instances, plan.Program{
			Name:           a.name,
			ProcessName:    pname,
			ProcessNum:     num,
			Group:          a.group,
			Command:        command,
			Directory:      expandInstance(a.directory, num, pname),
			Env:            env,
			InheritEnv:     a.inheritEnv,
			User:           a.user,
			Umask:          string(a.umask),
			Autostart:      a.autostart,
			Autorestart:    string(a.autorestart),
			ExitCodes:      append([]int{}, a.exitCodes...),
			StartSecs:      a.startSecs.v,
			StartRetries:   a.startRetries.v,
			Backoff:        a.backoff.v,
			BackoffMax:     plan.Duration(a.backoffMax),
			StopSignal:     string(a.stopSignal),
			StopTimeout:    plan.Duration(a.stopTimeout),
			StopAsGroup:    a.stopAsGroup,
			KillAsGroup:    a.killAsGroup,
			MemoryMax:      int64(a.memoryMax),
			Priority:       a.priority,
			Numprocs:       n,
			NumprocsStart:  a.numprocsStart.v,
			Stdout:         instanceLog(a.stdout.log, a.name, num, pname),
			Stderr:         instanceLog(a.stderr.log, a.name, num, pname),
			RedirectStderr: a.redirectStderr,
			DependsOn:      append([]string{}, deps...),
			Ready:          ready,
			Pos:            pos,
		})
	}
	return d, nil
}

// value is what program() returns: a frozen struct, usable in depends_on.
func (d *declared) value() starlark.Value {
	names := make(starlark.Tuple, len(d.instances))
	for i := range d.instances {
		names[i] = starlark.String(d.instances[i].ProcessName)
	}
	group := d.group
	if group == "" && d.numprocs > 1 {
		group = d.name // settled for good in build, unless a group() lists the program
	}
	v := starlarkstruct.FromStringDict(programTag, starlark.StringDict{
		"name":          starlark.String(d.name),
		"process_names": names,
		"numprocs":      starlark.MakeInt(d.numprocs),
		"group":         starlark.String(group),
		"priority":      starlark.MakeInt(d.priority),
	})
	v.Freeze()
	return v
}

// instanceLog fills in a log spec for one process; nil stays nil.
func instanceLog(l *logValue, name string, num int, processName string) *plan.Log {
	if l == nil {
		return nil
	}
	return &plan.Log{
		Path:       l.tmpl.expand(name, num, processName),
		MaxBytes:   l.maxBytes,
		Backups:    l.backups,
		Timestamps: l.timestamps,
	}
}

// checkName accepts program and group names that CLI selectors can address ("group:name").
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("empty")
	}
	if strings.ContainsAny(name, ":/*\\ \t\n{}") {
		return fmt.Errorf("got %q, want a name without ':', '/', '*', '\\', braces or blanks", plan.Short(name))
	}
	if msg := plan.NameProblem(name); msg != "" {
		return errors.New(msg) // at the argument, where validation puts it at the call
	}
	return nil
}

// programIndex finds an earlier program() call by name.
func (s *evalState) programIndex(name string) (*declared, bool) {
	d, ok := s.byName[name]
	return d, ok
}

// Interface guards.
var _ Module = programModule{}

// noShell refuses a path a shell would have expanded: none runs, and "~/bin/tool" or
// "$HOME/x" was taken as a folder of the bundle's.
func noShell(fn, kw, p string) error {
	if strings.HasPrefix(p, "~") || strings.HasPrefix(p, "$") {
		return fmt.Errorf("%s: %s: got %q: no shell expands %s here; write path.join(host.env(\"HOME\"), ...)", fn, kw, p, p[:1])
	}
	return nil
}
