package export

import (
	"cmp"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/starvisor/starvisor/engine/plan"
)

// Systemd renders p as one template unit per program, <deploy>-<program>@.service (the
// instance is the process number), and <deploy>.target that wants every autostart
// instance; the units are PartOf the target, so stopping it stops them all.
func Systemd(p *plan.Plan, o Options) (Result, error) {
	if err := systemdSafe(p, deployName(p, o)); err != nil {
		return Result{}, fmt.Errorf("export systemd: %w", err)
	}
	e := &emitter{format: "systemd", root: p.Root, minFDs: p.Supervisor.MinFDs}
	look := o.LookPath
	if look == nil {
		look = exec.LookPath
	}
	deploy := unitEscape(deployName(p, o))
	target := deploy + ".target"
	progs := programs(p)
	instances := map[string][]string{} // program -> unit names of its instances
	for _, g := range progs {
		for _, pr := range g.Instances {
			instances[g.Name] = append(instances[g.Name], fmt.Sprintf("%s-%s@%d.service", deploy, unitEscape(g.Name), pr.ProcessNum))
		}
	}
	var files []File
	var wants []string
	for _, g := range progs {
		if g.first().Autostart {
			wants = append(wants, instances[g.Name]...)
		}
		if len(g.Instances) > 1 && !sameAcrossInstances(g, systemdNum) {
			// Instances that differ otherwise than %i can say ("80{num:02}": %i is never
			// zero-padded) get a unit file each, which systemd takes over the template
			// for that instance: one template gave all twelve the first one's port.
			e.report(g.Name, "numprocs", "instances differ in more than their number as %%i spells it: a unit file per instance")
			for i, pr := range g.Instances {
				unit, err := e.systemdUnit(program{Name: g.Name, Instances: []plan.Program{pr}}, target, instances, look)
				if err != nil {
					return Result{}, err
				}
				files = append(files, File{Name: strings.TrimSuffix(instances[g.Name][i], ".service") + ".service", Data: []byte(unit)})
			}
			continue
		}
		unit, err := e.systemdUnit(g, target, instances, look)
		if err != nil {
			return Result{}, err
		}
		files = append(files, File{Name: fmt.Sprintf("%s-%s@.service", deploy, unitEscape(g.Name)), Data: []byte(unit)})
	}
	for _, g := range p.Groups {
		e.problems = append(e.problems, Problem{Format: "systemd", Group: g.Name, Why: "groups have no systemd equivalent; address the units by name"})
	}
	var t strings.Builder
	fmt.Fprintf(&t, "# Exported from %s by `starvisor export --format systemd`.\n", filepath.Join(p.Root, p.Entry))
	fmt.Fprintf(&t, "[Unit]\nDescription=%s (starvisor deployment)\n", sdValue(deployName(p, o)))
	if len(wants) > 0 {
		fmt.Fprintf(&t, "Wants=%s\n", strings.Join(wants, " "))
	}
	t.WriteString("\n[Install]\nWantedBy=multi-user.target\n")
	files = append(files, File{Name: target, Data: []byte(t.String())})
	return Result{Files: files, Problems: e.problems}, nil
}

func (e *emitter) systemdUnit(g program, target string, instances map[string][]string, look func(string) (string, error)) (string, error) {
	pr := g.first()
	var u, s strings.Builder
	fmt.Fprintf(&u, "[Unit]\nDescription=%s %%i\nPartOf=%s\n", sdValue(pr.Name), target)
	var deps []string
	for _, d := range pr.DependsOn {
		deps = append(deps, instances[d]...)
	}
	if len(deps) > 0 {
		fmt.Fprintf(&u, "After=%s\nRequires=%s\n", strings.Join(deps, " "), strings.Join(deps, " "))
	}
	argv := slices.Clone(pr.Command)
	if len(argv) > 0 && !filepath.IsAbs(argv[0]) {
		abs, err := look(argv[0])
		if err != nil {
			e.report(pr.Name, "command", "%q is not in PATH here; systemd needs an absolute path, left as is", argv[0])
		} else {
			abs, _ = filepath.Abs(abs)
			e.report(pr.Name, "command", "%q resolved through PATH at export time to %s", argv[0], abs)
			argv[0] = abs
		}
	}
	if pr.IsJob() {
		// Done once it exited: After= waits for that, and a dependent's restart does not
		// run it again (Type=simple counted it up at its spawn, and ran it again).
		s.WriteString("[Service]\nType=oneshot\nRemainAfterExit=yes\n")
	} else {
		s.WriteString("[Service]\nType=simple\n")
	}
	// Each value is the first instance's, or with %i where the instances' follow their
	// number (a pool's "--port=80{num}").
	numbered := func(f func(plan.Program) string, quote func(string) string) string {
		vals, nums := column(g, f)
		if t, ok := sdNumbered(vals, nums, quote); ok {
			return t
		}
		return quote(vals[0])
	}
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = numbered(func(p plan.Program) string {
			if a != pr.Command[i] {
				return a // resolved through PATH
			}
			return p.Command[i]
		}, sdWord)
	}
	fmt.Fprintf(&s, "ExecStart=%s\n", strings.Join(quoted, " "))
	if dir := e.directory(pr); dir != "" {
		fmt.Fprintf(&s, "WorkingDirectory=%s\n", numbered(e.directory, sdValue))
	}
	keys := envKeys(pr)
	var secrets []string
	for _, k := range keys {
		fmt.Fprintf(&s, "Environment=%s\n", numbered(func(p plan.Program) string { return p.Env[k] }, func(v string) string { return sdEnv(k + "=" + v) }))
		if plan.SecretValue(k, pr.Env[k]) {
			secrets = append(secrets, k)
		}
	}
	if len(secrets) > 0 {
		// systemd.exec(5): Environment= is given to any user over D-Bus (systemctl show).
		e.problems = append(e.problems, Problem{Format: "systemd", Program: pr.Name, Field: "env",
			Why: strings.Join(secrets, ", ") + " in Environment=, which systemctl show gives any user: move secrets to an EnvironmentFile= of mode 0600 (or LoadCredential=)"})
	}
	if _, ok := pr.Env[processNumEnv]; ok {
		fmt.Fprintf(&s, "Environment=%s=%%i\n", processNumEnv)
	}
	// The names the engine gives every process at its spawn: a program that names its
	// files after its process wrote them all to one.
	fmt.Fprintf(&s, "Environment=%s\n", numbered(func(p plan.Program) string { return p.ProcessName }, func(v string) string { return sdEnv(processNameEnv + "=" + v) }))
	fmt.Fprintf(&s, "Environment=%s\n", sdEnv(groupNameEnv+"="+cmp.Or(pr.Group, pr.Name)))
	if pr.InheritEnv {
		e.report(pr.Name, "inherit_env", "systemd starts units with its own clean environment, not the caller's")
	}
	if pr.User != "" {
		fmt.Fprintf(&s, "User=%s\n", sdValue(pr.User))
	}
	if pr.Umask != "" {
		fmt.Fprintf(&s, "UMask=%s\n", pr.Umask)
	}
	switch pr.Autorestart {
	case plan.RestartAlways:
		s.WriteString("Restart=always\n")
	case plan.RestartNever:
		s.WriteString("Restart=no\n")
	default:
		s.WriteString("Restart=on-failure\n")
		if !slices.Contains(pr.ExitCodes, 0) {
			e.report(pr.Name, "exit_codes", "exit status 0 is always a success to systemd, so it is not restarted")
		}
	}
	var success []string
	for _, c := range pr.ExitCodes {
		if c != 0 {
			success = append(success, strconv.Itoa(c))
		}
	}
	if len(success) > 0 {
		fmt.Fprintf(&s, "SuccessExitStatus=%s\n", strings.Join(success, " "))
	}
	s.WriteString("RestartSec=1s\n")
	if pr.Backoff == plan.BackoffExponential {
		e.report(pr.Name, "backoff", "exponential back-off is not mapped; systemd retries every RestartSec=1s")
	} else if pr.StartRetries != 0 {
		e.report(pr.Name, "backoff", "systemd waits RestartSec=1s before every retry, not 1s, 2s, 3s, ...")
	}
	if pr.StartRetries == -1 {
		u.WriteString("StartLimitIntervalSec=0\n")
	} else {
		// supervisord gives up after start_retries failed starts in a row; the nearest is
		// that many restarts within the time they would take.
		burst := pr.StartRetries + 1
		interval := burst * (pr.StartSecs + 1)
		fmt.Fprintf(&u, "StartLimitBurst=%d\nStartLimitIntervalSec=%d\n", burst, max(interval, 1))
	}
	if pr.StartSecs > 0 {
		e.report(pr.Name, "start_secs", "systemd counts a start as good at once; %ds only sizes StartLimitIntervalSec", pr.StartSecs)
	}
	if e.minFDs > 0 {
		// supervisor(minfds): the open files the programs may have, as the daemon raises
		// its own limit (and so its children's) to it; each unit has its own.
		fmt.Fprintf(&s, "LimitNOFILE=%d\n", e.minFDs)
	}
	fmt.Fprintf(&s, "KillSignal=SIG%s\n", pr.StopSignal)
	fmt.Fprintf(&s, "TimeoutStopSec=%s\n", sdDuration(pr.StopTimeout))
	// systemd always stops the whole cgroup in the end; the mode says who gets the first
	// signal: the group (control-group), or the main process then the rest (mixed).
	switch {
	case pr.StopAsGroup:
		s.WriteString("KillMode=control-group\n")
	case pr.KillAsGroup:
		s.WriteString("KillMode=mixed\n")
	default:
		s.WriteString("KillMode=mixed\n")
		e.report(pr.Name, "kill_as_group", "false: systemd kills the rest of the unit's processes after the stop timeout")
	}
	if pr.Stdout != nil {
		fmt.Fprintf(&s, "StandardOutput=append:%s\n", e.logPath(g, "stdout", func(p plan.Program) *plan.Log { return p.Stdout }))
	} else {
		s.WriteString("StandardOutput=null\n")
	}
	switch {
	case pr.RedirectStderr:
		s.WriteString("StandardError=inherit\n")
	case pr.Stderr != nil:
		fmt.Fprintf(&s, "StandardError=append:%s\n", e.logPath(g, "stderr", func(p plan.Program) *plan.Log { return p.Stderr }))
	default:
		s.WriteString("StandardError=null\n")
	}
	if pr.Priority != 999 {
		e.report(pr.Name, "priority", "no start order besides depends_on (After=)")
	}
	if pr.Ready != nil {
		if !pr.IsJob() { // a job is a oneshot: its dependents wait for its end
			e.report(pr.Name, "ready", "readiness probes have no systemd equivalent")
		}
	}
	if pr.MemoryMax > 0 {
		// The kernel's limit on the unit's cgroup: reclaim, then the OOM killer, which
		// Restart= follows, where starvisor stops and restarts at the limit.
		fmt.Fprintf(&s, "MemoryMax=%d\n", pr.MemoryMax)
	}
	fmt.Fprintf(&s, "\n[Install]\nWantedBy=%s\n", target)
	return u.String() + "\n" + s.String(), nil
}

// logPath writes the log path with %i for the process number, reporting what systemd
// does not do with it.
func (e *emitter) logPath(g program, stream string, get func(plan.Program) *plan.Log) string {
	pr := g.first()
	l := get(pr)
	if l.MaxBytes > 0 {
		e.report(pr.Name, stream, "systemd does not rotate files (max_bytes %d, backups %d): use logrotate", l.MaxBytes, l.Backups)
	}
	if l.Timestamps {
		e.report(pr.Name, stream, "systemd does not timestamp lines written to a file")
	}
	vals, nums := column(g, func(p plan.Program) string { return get(p).Path })
	t, ok := numTemplate(vals, nums, sdEscapePercent, systemdNum)
	if !ok || strings.Contains(t, "%%i") {
		e.report(pr.Name, stream, "paths do not follow the process number as %%i; all instances write the first one's")
		return sdEscapePercent(vals[0])
	}
	return t
}

// systemdNum spells the process number in a unit: %i, the instance, never zero-padded.
func systemdNum(width int) string {
	if width > 0 {
		return ""
	}
	return "%i"
}

// sdNumbered writes values (one per instance, numbered by nums) through quote as one,
// with %i where they differ by the process number; ok is false when they differ
// otherwise.
func sdNumbered(vals []string, nums []int, quote func(string) string) (string, bool) {
	const mark = "\uffff" // a noncharacter, passed through quote as is
	if slices.ContainsFunc(vals, func(v string) bool { return strings.Contains(v, mark) }) {
		return "", false
	}
	t, ok := numTemplate(vals, nums, func(s string) string { return s }, func(w int) string {
		if systemdNum(w) == "" {
			return ""
		}
		return mark
	})
	if !ok {
		return "", false
	}
	return strings.ReplaceAll(quote(t), mark, "%i"), true
}

func sdEscapePercent(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// sdValue escapes specifiers in a plain (unquoted) setting.
func sdValue(s string) string { return sdEscapePercent(s) }

// unitSafe refuses a value written as it is into a unit line (Description=, User=,
// WorkingDirectory=, a log path) that holds a control character: a newline there starts
// a directive of its own (user = "root\nExecStartPre=/bin/id" ran that as root).
func unitSafe(what, value string) error {
	if strings.ContainsFunc(value, unicode.IsControl) {
		return fmt.Errorf("%s %q holds a control character, which a unit cannot hold (a newline would start a directive of its own): nothing written", what, value)
	}
	if strings.HasSuffix(value, `\`) {
		return fmt.Errorf("%s %q ends with a backslash, which joins the unit's next line to it: nothing written", what, value)
	}
	return nil
}

// systemdSafe checks every value of p the units write as it is (unitSafe).
func systemdSafe(p *plan.Plan, deploy string) error {
	errs := []error{unitSafe("the deployment's name", deploy), unitSafe("the bundle's folder", p.Root)}
	for _, pr := range p.Programs {
		errs = append(errs, unitSafe("program "+strconv.Quote(pr.Name)+": name", pr.Name),
			unitSafe("program "+strconv.Quote(pr.Name)+": directory", pr.Directory),
			unitSafe("program "+strconv.Quote(pr.Name)+": user", pr.User))
		for _, l := range []*plan.Log{pr.Stdout, pr.Stderr} {
			if l != nil {
				errs = append(errs, unitSafe("program "+strconv.Quote(pr.Name)+": log", l.Path))
			}
		}
	}
	return errors.Join(errs...)
}

// sdWord quotes one word of a command line for systemd's parser: C escapes inside
// double quotes, %% for specifiers, $$ for variable expansion.
func sdWord(s string) string { return sdQuote(s, true) }

// SystemdWord is s as a word of a unit's command line (ExecStart=), as units are written.
func SystemdWord(s string) string { return sdWord(s) }

// sdEnv quotes one NAME=value of Environment=, where systemd expands specifiers but
// not variables: a $ stays as is.
func sdEnv(s string) string { return sdQuote(s, false) }

func sdQuote(s string, dollar bool) string {
	var b strings.Builder
	needQuote := s == "" || s == ";"
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
			needQuote = true
		case '"':
			b.WriteString(`\"`)
			needQuote = true
		case '\n':
			b.WriteString(`\n`)
			needQuote = true
		case '\t':
			b.WriteString(`\t`)
			needQuote = true
		case '%':
			b.WriteString("%%")
		case '$':
			if dollar {
				b.WriteByte('$')
			}
			b.WriteByte('$')
		case ' ', '\'':
			b.WriteRune(r)
			needQuote = true
		default:
			b.WriteRune(r)
		}
	}
	if needQuote {
		return `"` + b.String() + `"`
	}
	return b.String()
}

// sdDuration writes d in systemd's time span syntax.
func sdDuration(d plan.Duration) string {
	ms := d.D().Milliseconds()
	if ms%1000 == 0 {
		return strconv.FormatInt(ms/1000, 10) + "s"
	}
	return strconv.FormatInt(ms, 10) + "ms"
}

// unitEscape keeps unit-name characters and writes others as \xNN (systemd-escape).
func unitEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == ':', c == '-' && i > 0, c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}
