package export

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/starvisor/starvisor/engine/plan"
)

// maxSunPath is the longest unix socket path Linux binds (sun_path is 108 bytes, with
// its NUL), as engine/api's.
const maxSunPath = 107

// foreverRetries stands for start_retries = -1: supervisord has no "forever".
const foreverRetries = math.MaxInt32

// Supervisord renders p as one supervisord.conf.
func Supervisord(p *plan.Plan, o Options) (Result, error) {
	e := &emitter{format: "supervisord", root: p.Root, priority: startAfterDeps(p)}
	var b strings.Builder
	sv := p.Supervisor
	fmt.Fprintf(&b, "; Exported from %s by `starvisor export --format supervisord`.\n", filepath.Join(p.Root, p.Entry))
	b.WriteString("; supervisord's own files live next to starvisor's (log_dir, state_dir).\n")
	sock := filepath.Join(sv.StateDir, "supervisor.sock")
	e.section(&b, "supervisord", "")
	e.kv(&b, "", "logfile", filepath.Join(sv.LogDir, "supervisord.log"))
	e.kv(&b, "", "pidfile", filepath.Join(sv.StateDir, "supervisord.pid"))
	e.kv(&b, "", "childlogdir", sv.LogDir)
	if sv.MinFDs > 0 {
		fmt.Fprintf(&b, "minfds=%d\n", sv.MinFDs) // supervisord's own key, which import reads back
	}
	if p.Root != "" {
		// Its programs that name no directory inherit this one: the bundle root, as
		// under starvisor.
		e.kv(&b, "", "directory", p.Root)
	}
	if len(sock) > maxSunPath {
		// starvisor's own daemon binds a long path through /proc/self/fd; supervisord
		// cannot start.
		e.problems = append(e.problems, Problem{Format: "supervisord", Field: "unix_http_server", Why: fmt.Sprintf(
			"file=%s is %d bytes, and supervisord cannot bind a unix socket path over %d: set file= and [supervisorctl] serverurl= to a shorter path (or give supervisor(state_dir) a shorter folder)",
			sock, len(sock), maxSunPath)})
	}
	e.section(&b, "unix_http_server", "")
	e.kv(&b, "", "file", sock)
	b.WriteString("chmod=0700\n")
	e.section(&b, "rpcinterface:supervisor", "")
	b.WriteString("supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n")
	e.section(&b, "supervisorctl", "")
	e.kv(&b, "", "serverurl", "unix://"+sock)

	// Sections per program; a program whose instances cannot share one section gets one
	// section per process and a group of its name.
	members := map[string][]string{} // program name -> section names
	var extraGroups []plan.Group
	inGroup := map[string]bool{}
	for _, g := range p.Groups {
		for _, m := range g.Programs {
			inGroup[m] = true
		}
	}
	for _, g := range programs(p) {
		names := e.program(&b, g)
		members[g.Name] = names
		if len(names) > 1 && !inGroup[g.Name] {
			extraGroups = append(extraGroups, plan.Group{Name: g.Name, Programs: []string{g.Name}, Priority: g.first().Priority})
		}
	}
	for _, g := range append(append([]plan.Group{}, p.Groups...), extraGroups...) {
		var secs []string
		prio := g.Priority
		for _, m := range g.Programs {
			secs = append(secs, members[m]...)
			// A member raised above its dependencies raises its group: supervisord starts
			// a group at the group's priority (a dependent in a group still started first).
			if v, ok := e.priority[m]; ok && v > prio {
				prio = v
			}
		}
		if prio != g.Priority {
			e.problems = append(e.problems, Problem{Format: "supervisord", Group: g.Name, Field: "priority", Why: fmt.Sprintf("%d (was %d): above its members' dependencies", prio, g.Priority)})
		}
		var listed []string
		for _, sec := range secs {
			if strings.Contains(sec, ",") { // supervisord splits programs= at commas
				e.problems = append(e.problems, Problem{Format: "supervisord", Group: g.Name, Field: "programs", Why: fmt.Sprintf("%q cannot be listed in programs= (a comma); it runs as a group of its own", sec)})
				continue
			}
			listed = append(listed, strings.ReplaceAll(sec, "%", "%%")) // expanded once
		}
		if len(listed) == 0 {
			continue
		}
		e.section(&b, "group:"+g.Name, "")
		b.WriteString("programs=" + strings.Join(listed, ",") + "\n")
		b.WriteString("priority=" + strconv.Itoa(prio) + "\n")
	}
	if e.err != nil {
		return Result{}, e.err
	}
	return Result{Files: []File{{Name: "supervisord.conf", Data: []byte(b.String())}}, Problems: e.problems, Folders: supervisordFolders(p)}, nil
}

// supervisordFolders are those supervisord checks as it reads its configuration: its log
// and pid files' (childlogdir too) and every log file's.
func supervisordFolders(p *plan.Plan) []string {
	dirs := []string{p.Supervisor.LogDir, p.Supervisor.StateDir}
	for _, pr := range p.Programs {
		for _, l := range []*plan.Log{pr.Stdout, pr.Stderr} {
			if l != nil && !strings.HasPrefix(l.Path, "/dev/") {
				dirs = append(dirs, filepath.Dir(l.Path))
			}
		}
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// startAfterDeps gives the programs whose priority is not above their dependencies' one
// that is: supervisord starts lower priorities first, and has no depends_on, so a
// dependent at the same 999 started first. Programs come in start order, dependencies
// first. Only the raised ones are in the map.
func startAfterDeps(p *plan.Plan) map[string]int {
	prio, raised := map[string]int{}, map[string]int{}
	for _, pr := range p.Programs {
		if _, done := prio[pr.Name]; done {
			continue // another instance of the program
		}
		v := pr.Priority
		for _, d := range pr.DependsOn {
			if dp, ok := prio[d]; ok {
				v = max(v, dp+1)
			}
		}
		prio[pr.Name] = v
		if v != pr.Priority {
			raised[pr.Name] = v
		}
	}
	return raised
}

func (e *emitter) priorityOf(pr plan.Program) int {
	if v, ok := e.priority[pr.Name]; ok {
		return v
	}
	return pr.Priority
}

// emitter collects problems while writing.
type emitter struct {
	format   string
	root     string         // the bundle root: where a program that names no directory runs
	priority map[string]int // the priorities raised above the programs' dependencies'
	problems []Problem
	err      error
	minFDs   int // supervisor(minfds), for the formats that set it per program
}

// directory is where pr runs: its own directory, else the bundle root.
func (e *emitter) directory(pr plan.Program) string {
	if pr.Directory != "" {
		return pr.Directory
	}
	return e.root
}

func (e *emitter) report(program, field, format string, args ...any) {
	pb := Problem{Format: e.format, Program: program, Field: field, Why: fmt.Sprintf(format, args...)}
	if !slices.Contains(e.problems, pb) { // once: a unit per instance said each twelve times
		e.problems = append(e.problems, pb)
	}
}

func (e *emitter) section(b *strings.Builder, name, _ string) {
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	b.WriteString("[" + name + "]\n")
}

// kv writes key=value with the value %-escaped; a value the ini reader would change is
// an error (it cannot be left out without changing what runs).
func (e *emitter) kv(b *strings.Builder, program, key, value string) {
	v, ok := iniLiteral(value)
	if !ok {
		e.fail(program, key, value)
		return
	}
	b.WriteString(key + "=" + v + "\n")
}

func (e *emitter) fail(program, key, value string) {
	if e.err == nil {
		e.err = fmt.Errorf("export supervisord: program %q: %s: %q cannot be written in an ini value (newline, surrounding blanks, or a blank before ; or #)", program, key, value)
	}
}

// commentStart is what supervisord's ini reader takes for an inline comment.
var commentStart = regexp.MustCompile(`\s[;#]`)

// iniLiteral escapes % (supervisord expands %(name)s in every value) and refuses what
// the ini reader would cut or trim.
func iniLiteral(s string) (string, bool) {
	if strings.ContainsAny(s, "\n\r") || strings.TrimSpace(s) != s || commentStart.MatchString(s) {
		return "", false
	}
	return strings.ReplaceAll(s, "%", "%%"), true
}

// logLiteral is iniLiteral for stdout_logfile and stderr_logfile, which supervisord
// expands twice (its getter, then processes_from_section again): a literal % is %%%%.
func logLiteral(s string) (string, bool) {
	v, ok := iniLiteral(s)
	return strings.ReplaceAll(v, "%", "%%"), ok
}

func supervisordNum(width int) string {
	if width == 0 {
		return "%(process_num)d"
	}
	return fmt.Sprintf("%%(process_num)0%dd", width)
}

// program writes g's section(s) and returns their names.
func (e *emitter) program(b *strings.Builder, g program) []string {
	pr := g.first()
	e.unsupported(pr)
	if len(g.Instances) == 1 || !sameAcrossInstances(g, supervisordNum) {
		if len(g.Instances) > 1 {
			e.report(pr.Name, "numprocs", "instances differ in more than their number; exported as one section per process in group %q", pr.Name)
		}
		var names []string
		for _, inst := range g.Instances {
			e.write(b, program{Name: inst.ProcessName, Instances: []plan.Program{inst}}, inst.ProcessName, false)
			names = append(names, inst.ProcessName)
		}
		return names
	}
	if !e.write(b, g, g.Name, true) {
		return nil
	}
	return []string{g.Name}
}

// unsupported reports what supervisord does not do.
func (e *emitter) unsupported(pr plan.Program) {
	if !pr.InheritEnv {
		e.report(pr.Name, "inherit_env", "supervisord always passes its own environment on")
	}
	if pr.Backoff == plan.BackoffExponential {
		e.report(pr.Name, "backoff", "supervisord's delay between retries grows linearly (1s, 2s, 3s, ...)")
	}
	if len(pr.DependsOn) > 0 {
		if prio, ok := e.priority[pr.Name]; ok {
			e.report(pr.Name, "depends_on", "supervisord has no dependencies: priority=%d (was %d) starts it after them, without waiting for them to be ready", prio, pr.Priority)
		} else {
			e.report(pr.Name, "depends_on", "supervisord has no dependencies; its priority starts it after them, without waiting for them to be ready")
		}
	}
	if pr.Ready != nil {
		e.report(pr.Name, "ready", "readiness probes have no supervisord equivalent")
	}
	if pr.MemoryMax > 0 {
		e.report(pr.Name, "memory_max", "supervisord has no memory limit (superlance's memmon event listener restarts by RSS)")
	}
	if pr.StartRetries == -1 {
		e.report(pr.Name, "start_retries", "-1 (forever) is written as startretries=%d", foreverRetries)
	}
	if d := pr.StopTimeout.D(); d%1e9 != 0 {
		e.report(pr.Name, "stop_timeout", "%s rounded up to whole seconds", d)
	}
	if pr.StopAsGroup && !pr.KillAsGroup {
		e.report(pr.Name, "kill_as_group", "supervisord refuses stopasgroup without killasgroup; killasgroup=true written")
	}
	for _, l := range []struct {
		name string
		log  *plan.Log
	}{{"stdout", pr.Stdout}, {"stderr", pr.Stderr}} {
		if l.log != nil && l.log.Timestamps {
			e.report(pr.Name, l.name, "supervisord does not timestamp log lines")
		}
	}
}

// write writes one [program:NAME] section for g's instances; templated says the
// instances collapse into numprocs.
func (e *emitter) write(b *strings.Builder, g program, section string, templated bool) bool {
	pr := g.first()
	field := func(key string, f func(plan.Program) string) {
		lit := iniLiteral
		if strings.HasSuffix(key, "_logfile") {
			lit = logLiteral
		}
		vals, nums := column(g, f)
		for _, v := range vals {
			if _, ok := lit(v); !ok {
				e.fail(pr.Name, key, v)
				return
			}
		}
		// Only escaped: the pieces around the number are not values (" %.log" after it
		// starts with a blank, which lit refuses, and was written as "").
		escape := func(s string) string { return strings.ReplaceAll(s, "%", "%%") }
		if strings.HasSuffix(key, "_logfile") {
			escape = func(s string) string { return strings.ReplaceAll(s, "%", "%%%%") }
		}
		t, ok := numTemplate(vals, nums, escape, supervisordNum)
		if !ok {
			if e.err == nil {
				e.err = fmt.Errorf("export supervisord: program %q: %s: values %q do not follow the process number", pr.Name, key, vals)
			}
			return
		}
		b.WriteString(key + "=" + t + "\n")
	}
	e.section(b, "program:"+section, "")
	e.command(b, g)
	if templated {
		field("process_name", func(p plan.Program) string { return p.ProcessName })
		b.WriteString(fmt.Sprintf("numprocs=%d\nnumprocs_start=%d\n", pr.Numprocs, pr.NumprocsStart))
	}
	if pr.Directory != "" {
		field("directory", func(p plan.Program) string { return p.Directory })
	} else if e.root != "" {
		// [supervisord] directory= counts only when it daemonizes: under -n (Debian's
		// unit, a container) the program ran in the folder supervisord was started from.
		e.kv(b, pr.Name, "directory", e.root)
	}
	if env := e.environment(g); env != "" {
		b.WriteString("environment=" + env + "\n")
	}
	if pr.User != "" {
		e.kv(b, pr.Name, "user", pr.User)
	}
	if pr.Umask != "" {
		b.WriteString("umask=" + pr.Umask + "\n")
	}
	retries := pr.StartRetries
	if retries == -1 {
		retries = foreverRetries
	}
	codes := make([]string, len(pr.ExitCodes))
	for i, c := range pr.ExitCodes {
		codes[i] = strconv.Itoa(c)
	}
	stopSecs := int64(math.Ceil(pr.StopTimeout.D().Seconds()))
	fmt.Fprintf(b, "autostart=%t\nautorestart=%s\nexitcodes=%s\nstartsecs=%d\nstartretries=%d\n",
		pr.Autostart, pr.Autorestart, strings.Join(codes, ","), pr.StartSecs, retries)
	fmt.Fprintf(b, "stopsignal=%s\nstopwaitsecs=%d\nstopasgroup=%t\nkillasgroup=%t\npriority=%d\nredirect_stderr=%t\n",
		pr.StopSignal, stopSecs, pr.StopAsGroup, pr.KillAsGroup || pr.StopAsGroup, e.priorityOf(pr), pr.RedirectStderr)
	for _, s := range []struct {
		key string
		get func(plan.Program) *plan.Log
	}{
		{"stdout", func(p plan.Program) *plan.Log { return p.Stdout }},
		{"stderr", func(p plan.Program) *plan.Log { return p.Stderr }},
	} {
		l := s.get(pr)
		if l == nil {
			if s.key == "stdout" || !pr.RedirectStderr {
				b.WriteString(s.key + "_logfile=NONE\n")
			}
			continue
		}
		field(s.key+"_logfile", func(p plan.Program) string { return s.get(p).Path })
		fmt.Fprintf(b, "%s_logfile_maxbytes=%d\n%s_logfile_backups=%d\n", s.key, l.MaxBytes, s.key, l.Backups)
	}
	return e.err == nil
}

// environment renders KEY="value",... for supervisord's key=value lexer (shlex, not
// POSIX: no escapes inside quotes, and surrounding quote characters are stripped).
func (e *emitter) environment(g program) string {
	pr := g.first()
	keys := envKeys(pr)
	if _, ok := pr.Env[processNumEnv]; ok {
		keys = append(keys, processNumEnv)
	}
	var parts []string
	for _, k := range keys {
		if !envKey.MatchString(k) {
			e.report(pr.Name, "env", "%s: supervisord cannot read this variable name; left out", k)
			continue
		}
		vals, nums := column(g, func(p plan.Program) string { return p.Env[k] })
		v, why := envValue(vals, nums)
		if why != "" {
			e.report(pr.Name, "env", "%s: %s; left out", k, why)
			continue
		}
		parts = append(parts, k+"="+v)
	}
	// The names the engine gives every process at its spawn, quoted as the values above:
	// a program naming its files after its process wrote them all to one. The group's
	// name is written as it is, not as %(group_name)s: that expands before the line is
	// split, so a name with a quote in it broke the whole environment=.
	group := pr.Group
	if group == "" {
		group = pr.Name
	}
	for _, n := range []struct {
		key  string
		vals []string
		nums []int
	}{
		{processNameEnv, nil, nil},
		{groupNameEnv, []string{group}, []int{pr.ProcessNum}},
	} {
		if n.vals == nil {
			n.vals, n.nums = column(g, func(p plan.Program) string { return p.ProcessName })
		}
		v, why := envValue(n.vals, n.nums)
		if why != "" {
			e.report(pr.Name, "env", "%s: %s; left out", n.key, why)
			continue
		}
		parts = append(parts, n.key+"="+v)
	}
	return strings.Join(parts, ",")
}

// envValue quotes one variable's values (a template when they follow the process
// number) for environment=, or says why supervisord cannot read them back.
func envValue(vals []string, nums []int) (string, string) {
	for _, v := range vals {
		if strings.ContainsAny(v, "\n\r") || commentStart.MatchString(v) ||
			strings.Trim(v, `'"`) != v || strings.Contains(v, `"`) && strings.Contains(v, `'`) {
			return "", "value cannot be quoted for supervisord"
		}
	}
	q := `"`
	if strings.Contains(vals[0], `"`) {
		q = `'`
	}
	t, ok := numTemplate(vals, nums, func(s string) string { return strings.ReplaceAll(s, "%", "%%") }, supervisordNum)
	if !ok {
		return "", "values do not follow the process number"
	}
	return q + t + q, ""
}

var envKey = regexp.MustCompile(`^[A-Za-z0-9_/.+\-():]+$`)

// shlexSafe are the characters Python's shlex.quote leaves bare.
var shlexSafe = regexp.MustCompile(`^[A-Za-z0-9@%+=:,./_\-]+$`)

// command writes command= for g's instances, each argument its own template: a pool's
// "--port=80{num:02}" and "{num}" are two widths of the process number in one line.
func (e *emitter) command(b *strings.Builder, g program) {
	pr := g.first()
	args := make([]string, len(pr.Command))
	for i := range pr.Command {
		vals, nums := column(g, func(p plan.Program) string { return p.Command[i] })
		t, ok := numTemplate(vals, nums, func(s string) string { return strings.ReplaceAll(s, "%", "%%") }, supervisordNum)
		if !ok {
			if e.err == nil {
				e.err = fmt.Errorf("export supervisord: program %q: command: argument %d %q does not follow the process number", pr.Name, i, vals)
			}
			return
		}
		args[i] = t
	}
	line := shlexJoin(args)
	if _, ok := iniLiteral(line); !ok { // its checks see no difference between % and %%
		e.fail(pr.Name, "command", shlexJoin(pr.Command))
		return
	}
	b.WriteString("command=" + line + "\n")
}

// shlexJoin quotes argv for shlex.split (POSIX), which supervisord uses on command=.
// Inside single quotes a blank before ; or # is split by ” so the ini reader does not
// take it for a comment.
func shlexJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if shlexSafe.MatchString(a) {
			out[i] = a
			continue
		}
		q := "'" + strings.ReplaceAll(a, "'", `'"'"'`) + "'"
		out[i] = commentStart.ReplaceAllStringFunc(q, func(m string) string { return m[:1] + "''" + m[1:] })
	}
	return strings.Join(out, " ")
}
