package plan

import (
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unicode"

	"golang.org/x/sys/unix"
)

// Validate reports every problem in p at once, joined with errors.Join, one
// "POS: program \"x\": field: message" line each, in a stable order: plan-wide
// settings, then each program entry as listed, then cross-entry checks
// (instances, dependencies, groups). It does not look at Hash or at the order
// of Programs: Finish computes those after validating.
func (p *Plan) Validate() error {
	var ps problems
	checkPlanPaths(&ps, p)
	for i := range p.Programs {
		checkProgram(&ps, &p.Programs[i])
	}
	checkProcessNames(&ps, p.Programs)
	checkInstances(&ps, p.Programs)
	checkLogPaths(&ps, p)
	checkDependencies(&ps, p.Programs)
	checkGroups(&ps, p)
	return ps.err()
}

// DaemonLog is the file in log_dir where a detached daemon writes its own output.
const DaemonLog = "starvisor.log"

// checkLogPaths reports a log file written by two streams: two programs, or one's
// stdout and stderr. Each writer rotates the file on its own count, and lines are lost.
// Paths under /dev/ are streams (/dev/stdout), not rotated files. Instances of one
// program are checkInstances's, with its own advice.
func checkLogPaths(ps *problems, p *Plan) {
	type writer struct {
		name, process, field string
		rotates              bool
	}
	seen := map[string]writer{}
	if p.Supervisor.LogDir != "" {
		seen[filepath.Join(p.Supervisor.LogDir, DaemonLog)] = writer{}
	}
	scripts := p.scriptPaths()
	// The daemon's own files: a log there was appended to them ("4242" lines in its
	// pidfile, its state file read as corrupt by the next daemon).
	own := map[string]bool{}
	for _, f := range []string{p.Supervisor.Pidfile, p.Supervisor.Socket} {
		if f != "" {
			own[f] = true
		}
	}
	if d := p.Supervisor.StateDir; d != "" {
		for _, f := range []string{"state.json", "plan.json", "daemon.lock"} {
			own[filepath.Join(d, f)] = true
		}
	}
	for i := range p.Programs {
		pr := &p.Programs[i]
		for _, st := range [...]struct {
			field string
			l     *Log
		}{{"stdout", pr.Stdout}, {"stderr", pr.Stderr}} {
			field, l := st.field, st.l
			if l == nil || strings.HasPrefix(l.Path, "/dev/") || field == "stderr" && pr.RedirectStderr {
				continue
			}
			w, ok := seen[l.Path]
			switch {
			case scripts[l.Path]:
				ps.program(pr, field, "path %q is a script of the bundle: the output would be appended to it", l.Path)
			case own[l.Path]:
				ps.program(pr, field, "path %q is a file of the daemon's own (its pidfile, socket, or state_dir's state.json, plan.json or daemon.lock): the output would be appended to it", l.Path)
			case !ok:
				seen[l.Path] = writer{pr.Name, pr.ProcessName, field, l.MaxBytes > 0}
			case !w.rotates && l.MaxBytes <= 0 && w.name != "":
				// Neither rotates: appends (O_APPEND) of whole writes interleave, nothing is
				// lost, as under supervisord with logfile_maxbytes=0.
			case w.name == "":
				ps.program(pr, field, "path %q is the daemon's own log (up --detach writes it)", l.Path)
			case w.process == pr.ProcessName && w.name == pr.Name:
				ps.program(pr, "stderr", "path %q is also its stdout: two writers would rotate it apart and lose lines; use redirect_stderr = True", l.Path)
			case w.name != pr.Name:
				ps.program(pr, field, "path %q is also the %s of %q: two writers would rotate it apart and lose lines", l.Path, w.field, w.process)
			}
		}
	}
}

// StopSignalError says why name (as the plan spells it: "TERM", no "SIG") cannot be a
// stop_signal, or nil. Any signal the system names will do, as for supervisord
// (stopsignal=ABRT), but those that never end a process.
func StopSignalError(name string) error {
	switch {
	case name == "STOP" || name == "CONT" || name == "TSTP" || name == "TTIN" || name == "TTOU":
		return fmt.Errorf("%s pauses or resumes a process, never ends it: each stop would wait stop_timeout and end in SIGKILL (stop_signal = \"KILL\" says so at once)", name)
	case SignalNum(name) == 0:
		return fmt.Errorf("no signal is named %q: want a name such as TERM, INT, QUIT, HUP, USR1, ABRT", name)
	}
	return nil
}

// SignalNum is the signal the system calls SIG+name (name "SEGV"), or 0.
func SignalNum(name string) syscall.Signal { return unix.SignalNum("SIG" + name) }

// scriptPaths are the bundle's Starlark files the plan was evaluated from (absolute).
func (p *Plan) scriptPaths() map[string]bool {
	out := map[string]bool{}
	if p.Root == "" {
		return out
	}
	if p.Entry != "" {
		out[filepath.Join(p.Root, p.Entry)] = true
	}
	for f := range p.Inputs.Files {
		if !strings.HasPrefix(f, "@") {
			out[filepath.Join(p.Root, f)] = true
		}
	}
	return out
}

func checkPlanPaths(ps *problems, p *Plan) {
	abs := func(pos, subject, field, path string) {
		switch {
		case strings.IndexByte(path, 0) >= 0:
			ps.add(pos, subject, field, "path %q contains a NUL byte", path)
		case path != "" && !filepath.IsAbs(path):
			ps.add(pos, subject, field, "must be an absolute path, got %q", path)
		}
	}
	sv := &p.Supervisor
	abs("", "plan", "root", p.Root)
	abs(sv.Pos, "supervisor", "socket", sv.Socket)
	abs(sv.Pos, "supervisor", "pidfile", sv.Pidfile)
	abs(sv.Pos, "supervisor", "log_dir", sv.LogDir)
	abs(sv.Pos, "supervisor", "state_dir", sv.StateDir)
	if sv.MinFDs < 0 {
		ps.add(sv.Pos, "supervisor", "minfds", "got %d, want >= 0", sv.MinFDs)
	}
	scripts := p.scriptPaths()
	for _, f := range [...]struct{ field, path string }{{"socket", sv.Socket}, {"pidfile", sv.Pidfile}} {
		if scripts[f.path] {
			ps.add(sv.Pos, "supervisor", f.field, "%q is a script of the bundle: the daemon would replace it", f.path)
		}
	}
}

// checkProgram checks the fields of one entry on their own, in JSON order.
func checkProgram(ps *problems, pr *Program) {
	if msg := NameProblem(pr.Name); msg != "" {
		ps.program(pr, "name", "%s", msg)
	}
	if msg := NameProblem(pr.ProcessName); msg != "" {
		ps.program(pr, "process_name", "%s", msg)
	}
	checkCommand(ps, pr)
	switch {
	case strings.IndexByte(pr.Directory, 0) >= 0:
		ps.program(pr, "directory", "path %q contains a NUL byte", pr.Directory)
	case pr.Directory != "" && !filepath.IsAbs(pr.Directory):
		ps.program(pr, "directory", "must be an absolute path, got %q", pr.Directory)
	}
	if strings.IndexByte(pr.User, 0) >= 0 {
		ps.program(pr, "user", "%q contains a NUL byte", pr.User)
	}
	checkEnv(ps, pr)
	if !umaskOK(pr.Umask) {
		ps.program(pr, "umask", "want \"\" or an octal mode such as \"022\", got %q", pr.Umask)
	}
	switch pr.Autorestart {
	case RestartAlways, RestartNever, RestartUnexpected:
	default:
		ps.program(pr, "autorestart", "want \"true\", \"false\" or \"unexpected\", got %q", pr.Autorestart)
	}
	for _, c := range pr.ExitCodes {
		if c < 0 || c > 255 {
			ps.program(pr, "exit_codes", "%d is not an exit status (0..255)", c)
		}
	}
	if pr.StartSecs < 0 || pr.StartSecs > MaxStartSecs {
		ps.program(pr, "start_secs", "must be 0..%d (a year), got %d", MaxStartSecs, pr.StartSecs)
	}
	if pr.StartRetries < -1 {
		ps.program(pr, "start_retries", "must be >= -1 (-1 retries forever), got %d", pr.StartRetries)
	}
	if pr.Backoff != BackoffLinear && pr.Backoff != BackoffExponential {
		ps.program(pr, "backoff", "want \"linear\" or \"exponential\", got %q", pr.Backoff)
	}
	if pr.MemoryMax < 0 {
		ps.program(pr, "memory_max", "must not be negative, got %d", pr.MemoryMax)
	}
	if pr.BackoffMax < 0 {
		ps.program(pr, "backoff_max", "must not be negative, got %s", pr.BackoffMax)
	}
	if err := StopSignalError(pr.StopSignal); err != nil {
		ps.program(pr, "stop_signal", "%v", err)
	}
	if pr.StopTimeout < 0 {
		ps.program(pr, "stop_timeout", "must not be negative, got %s", pr.StopTimeout)
	}
	if pr.Numprocs < 1 || pr.Numprocs > MaxNumprocs {
		ps.program(pr, "numprocs", "must be 1..%d, got %d", MaxNumprocs, pr.Numprocs)
	}
	switch {
	case pr.NumprocsStart < 0:
		ps.program(pr, "numprocs_start", "must be >= 0, got %d", pr.NumprocsStart)
	case pr.Numprocs >= 1 && pr.NumprocsStart > MaxNumprocsStart(pr.Numprocs):
		ps.program(pr, "numprocs_start", "%d + numprocs %d overflows; want at most %d", pr.NumprocsStart, pr.Numprocs, MaxNumprocsStart(pr.Numprocs))
	}
	checkLog(ps, pr, "stdout", pr.Stdout)
	checkLog(ps, pr, "stderr", pr.Stderr)
	for _, d := range pr.DependsOn {
		if d == "" {
			ps.program(pr, "depends_on", "empty program name")
		}
	}
	checkProbe(ps, pr)
}

// Bounds that keep a typo from taking the daemon down: a start_secs past 292 years
// overflowed the clock (RUNNING at once, a crash loop never FATAL), and a numprocs of
// 10^9 ran evaluation out of memory, and so did 51 pools of 10,000 (MaxProcesses: a
// plan's processes, all programs together).
const (
	MaxStartSecs = 365 * 24 * 3600
	MaxNumprocs  = 10000
	MaxProcesses = 50000
)

// maxName leaves room in a 255-byte file name for the longest default log name.
const maxName = 240

// NameProblem says what is wrong with a program, process or group name, or "".
// Names become log file names and "group:name" specs, hence supervisord's rule:
// no spaces, ":" or "/".
func NameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case name == "all":
		return "\"all\" is reserved: it selects every process"
	case name == "." || name == "..":
		return "may not be \".\" or \"..\""
	case strings.ContainsFunc(name, func(r rune) bool {
		return r == ':' || r == '/' || unicode.IsSpace(r) || unicode.IsControl(r)
	}):
		return "may not contain spaces, \":\" or \"/\", got " + strconv.Quote(Short(name))
	case strings.ContainsFunc(name, func(r rune) bool { return unicode.Is(unicode.Cf, r) }):
		// Zero-width spaces, byte-order marks, bidi overrides: two names that read the
		// same, and `restart api` reaches one of them.
		return "may not contain invisible characters, got " + strconv.QuoteToASCII(Short(name))
	case strings.HasPrefix(name, "-"):
		return "may not start with \"-\" (the CLI would read it as a flag), got " + strconv.Quote(Short(name))
	case len(name) > maxName:
		return fmt.Sprintf("is %d bytes long, at most %d: it names log files (name.err.log, name.log.10), and a file name holds 255", len(name), maxName)
	}
	return ""
}

func checkCommand(ps *problems, pr *Program) {
	if len(pr.Command) == 0 {
		ps.program(pr, "command", "is empty")
		return
	}
	// A bare name is looked up in PATH at launch; anything with a slash must
	// not depend on the daemon's working directory.
	switch argv0 := pr.Command[0]; {
	case argv0 == "":
		ps.program(pr, "command", "the program to run is empty")
	case strings.Contains(argv0, "/") && !filepath.IsAbs(argv0):
		ps.program(pr, "command", "%q must be an absolute path or a bare name looked up in PATH", argv0)
	}
	for i, a := range pr.Command {
		if strings.ContainsRune(a, 0) {
			ps.program(pr, "command", "argument %d contains a NUL byte", i)
		}
	}
}

func checkEnv(ps *problems, pr *Program) {
	// Most programs are fine: look first, and sort the keys (for a stable report
	// order) only when there is something to report.
	bad := false
	for k, v := range pr.Env {
		if EnvNameProblem(k) != "" || strings.IndexByte(v, 0) >= 0 {
			bad = true
			break
		}
	}
	if !bad {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(pr.Env)) {
		if msg := EnvNameProblem(k); msg != "" {
			ps.program(pr, "env", "%s", msg)
		}
		if strings.ContainsRune(pr.Env[k], 0) {
			ps.program(pr, "env", "value of %s contains a NUL byte", ShowEnvName(k))
		}
	}
}

// EnvNameProblem says what is wrong with an environment variable name, or "" when
// nothing is. "=" ends the name in the environment block and NUL ends the entry; a
// control character or a blank makes a name no shell, env file or supervisord
// environment= line can carry, and a newline splits line-oriented output. Other
// characters stay allowed: '.', '-' and non-ASCII letters are used by some programs.
func EnvNameProblem(k string) string {
	switch {
	case k == "":
		return "empty variable name"
	case strings.ContainsAny(k, "=\x00"):
		return fmt.Sprintf("variable name %s may not contain \"=\" or NUL", strconv.Quote(k))
	case strings.ContainsFunc(k, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }):
		return fmt.Sprintf("variable name %s may not contain blanks or control characters (newline, tab, ...)", strconv.Quote(k))
	}
	return ""
}

// ShowEnvName is k as messages and listings print it: bare when it reads plainly,
// quoted (Go syntax; what does not print escaped) when it is not a valid name or holds a character that
// would blur a list such as "env (A, B)": a blank, a comma, a parenthesis or a quote.
func ShowEnvName(k string) string {
	if EnvNameProblem(k) != "" || strings.ContainsAny(k, ",()\"'\\") ||
		strings.ContainsFunc(k, func(r rune) bool { return !unicode.IsPrint(r) || unicode.Is(unicode.Cf, r) }) {
		return strconv.Quote(k)
	}
	return k
}

// MaxNumprocsStart is the largest numprocs_start with which numprocs processes are
// numbered without overflowing an int (the last is numprocs_start+numprocs-1).
func MaxNumprocsStart(numprocs int) int { return math.MaxInt - (numprocs - 1) }

// umaskOK accepts "" (keep the daemon's umask) or an octal mode up to 0777.
func umaskOK(s string) bool {
	if s == "" {
		return true
	}
	v, err := strconv.ParseUint(s, 8, 32)
	return err == nil && v <= 0o777
}

func checkLog(ps *problems, pr *Program, field string, l *Log) {
	if l == nil {
		return // discarded
	}
	switch {
	case strings.IndexByte(l.Path, 0) >= 0:
		// No file can have it: every line would be dropped at run time.
		ps.program(pr, field, "path %q contains a NUL byte", l.Path)
	case !filepath.IsAbs(l.Path):
		ps.program(pr, field, "path must be absolute, got %q", l.Path)
	}
	if l.MaxBytes < 0 {
		ps.program(pr, field, "max_bytes must be >= 0 (0 never rotates), got %d", l.MaxBytes)
	}
	if l.Backups < 0 {
		ps.program(pr, field, "backups must be >= 0, got %d", l.Backups)
	}
}
