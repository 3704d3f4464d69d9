package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/starvisor/starvisor/engine/launcher"
	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/plan"
	"github.com/starvisor/starvisor/engine/probe"
)

// CheckCmd evaluates and validates the script, then checks the plan against this machine.
type CheckCmd struct {
	scriptFlags `embed:""`
}

// Run prints every problem, or "ok: N programs".
func (c *CheckCmd) Run(d *Deps) error {
	p, err := c.eval(context.Background(), d)
	if err != nil {
		return err
	}
	problems := machineProblems(p, d.LookupEnv)
	problems = append(problems, portsTaken(p)...)
	problems = append(problems, plantedLogs(p)...)
	if len(p.Programs) == 0 {
		// As apply and a reload would refuse it (declaresPrograms), without their advice:
		// check applies nothing, and a library file checked by mistake is the likely case.
		// At a position, as every other problem: a CI's line matcher dropped it.
		problems = append(problems, p.Entry+":1:1: declares no program (apply and a reload refuse such a script)")
	}
	for i, pb := range problems {
		if i == plan.MaxProblems {
			fmt.Fprintf(d.Stderr, "... and %d more problems\n", len(problems)-i) // as evaluation caps them
			break
		}
		d.Stderr.Write(fromHere([]byte(pb+"\n"), p.Root))
	}
	for _, w := range checkWarnings(p, d.LookupEnv) {
		d.Stderr.Write(fromHere([]byte(w+"\n"), p.Root))
	}
	if len(problems) > 0 {
		fmt.Fprintf(d.Stderr, "check: %s\n", plural(len(problems), "problem"))
		return reported(ExitFailure)
	}
	fmt.Fprintf(d.Stdout, "ok: %s\n", strings.SplitN(counts(p), ",", 2)[0])
	return nil
}

// checkWarnings are what check says without failing: what runs, but not as meant. A
// Python program with block-buffered output logs nothing for a while, its probe.log
// waits, and a stop loses its last lines; it worked from a shell exporting
// PYTHONUNBUFFERED, and logged nothing under the systemd unit.
func checkWarnings(p *plan.Plan, lookupEnv func(string) (string, bool)) []string {
	out := openLogFolders(p)
	// A memory_max of a few bytes or KiB is a unit left out ("12": 12 bytes): every
	// process would be restarted once a second for good.
	said := map[string]bool{}
	for _, pr := range p.Programs {
		if pr.MemoryMax > 0 && pr.MemoryMax < 1<<20 && !said[pr.Name] {
			said[pr.Name] = true
			out = append(out, fmt.Sprintf("%s: program %q: memory_max: warning: %d bytes, less than any process takes: a unit left out (\"%dMB\")?", pr.Pos, pr.Name, pr.MemoryMax, pr.MemoryMax))
		}
	}
	// A pool whose processes share one port (SO_REUSEPORT, pm2's cluster mode) and a tcp
	// or http probe on it: a new member passes as soon as a sibling answers, so a rolling
	// restart went on while nothing of the new one listened (requests failed for a second).
	probes := map[string][]plan.Probe{}
	for _, pr := range p.Programs {
		if r := pr.Ready; r != nil && pr.Numprocs > 1 && (r.Kind == plan.ProbeTCP || r.Kind == plan.ProbeHTTP) {
			probes[pr.Name] = append(probes[pr.Name], *r)
		}
	}
	for _, pr := range p.Programs {
		ps := probes[pr.Name]
		if len(ps) < 2 || slices.ContainsFunc(ps[1:], func(o plan.Probe) bool { return o.Host != ps[0].Host || o.Port != ps[0].Port || o.URL != ps[0].URL }) {
			continue
		}
		delete(probes, pr.Name)
		w := fmt.Sprintf("program %q: warning: its %d processes share the ready probe's address: unless they bind it together (SO_REUSEPORT) all but one fail with \"address already in use\", and if they do, a new one passes as soon as any answers (a rolling restart goes on before it listens); give each its own port (\"80{num:02}\"), or a probe.log or probe.exec of its own", pr.Name, pr.Numprocs)
		if pr.Pos != "" {
			w = pr.Pos + ": " + w
		}
		out = append(out, w)
	}
	out = append(out, sharedProbeAddrs(p)...)
	// One line per call site: a loop of 300 Python programs said the same 330 characters
	// 300 times.
	seen := map[string]bool{}
	var sites []string
	names := map[string][]string{}
	for _, pr := range p.Programs {
		tool := !pr.BufferedPython(nil) && bufferedPythonScript(pr)
		if seen[pr.Name] || !pr.BufferedPython(nil) && !tool {
			continue
		}
		seen[pr.Name] = true
		w := "warning: Python runs without -u or PYTHONUNBUFFERED: its output reaches the log 8 KiB at a time (a probe.log waits for lines, a stop loses the last ones); run it with python.module() or .script(), add -u, or set PYTHONUNBUFFERED in its env"
		if tool {
			w = fmt.Sprintf("warning: %s is a Python script (its #! line runs Python without -u) and PYTHONUNBUFFERED is not set: its output reaches the log 8 KiB at a time (a probe.log waits for lines, a stop loses the last ones); set PYTHONUNBUFFERED = \"1\" in its env", filepath.Base(pr.Command[0]))
		}
		if v, ok := lookupEnv("PYTHONUNBUFFERED"); ok && v != "" && pr.InheritEnv {
			w += " (this shell's PYTHONUNBUFFERED covers it only for a daemon started from here, not from systemd or cron)"
		}
		key := pr.Pos + "\x00" + w
		if names[key] == nil {
			sites = append(sites, key)
		}
		names[key] = append(names[key], pr.Name)
	}
	for _, key := range sites {
		pos, w, _ := strings.Cut(key, "\x00")
		line := programsNamed(names[key]) + ": " + w
		if pos != "" {
			line = pos + ": " + line
		}
		out = append(out, line)
	}
	return out
}

// bufferedPythonScript says whether pr's command is a Python script (a venv's console
// script, venv/bin/gunicorn: python.bin()) whose #! line runs Python block-buffered, as
// BufferedPython judges the interpreter run with the script: check warned of python -m
// but said ok of the tool whose output never reached its log.
func bufferedPythonScript(pr plan.Program) bool {
	if len(pr.Command) == 0 || !filepath.IsAbs(pr.Command[0]) {
		return false
	}
	interp := launcher.Shebang(pr.Command[0])
	if len(interp) > 1 && filepath.Base(interp[0]) == "env" { // #!/usr/bin/env python3
		interp = interp[1:]
	}
	if len(interp) == 0 {
		return false
	}
	as := pr
	as.Command = append(append(slices.Clone(interp), pr.Command[0]), pr.Command[1:]...)
	return as.BufferedPython(nil)
}

// sharedProbeAddrs warns of two programs whose tcp or http ready probes check one
// address: a port typed twice (two releases on 52052) was refused only by the apply
// that started the second, "address already in use"; and were both to answer, each
// probe would pass on the other's. A pool's own processes are warned of apart.
func sharedProbeAddrs(p *plan.Plan) []string {
	var addrs []string
	users := map[string][]string{}
	pos := map[string]string{}
	for _, pr := range p.Programs {
		a := probeAddr(pr.Ready)
		if a == "" || slices.Contains(users[a], pr.Name) {
			continue
		}
		if users[a] == nil {
			addrs = append(addrs, a)
		}
		users[a] = append(users[a], pr.Name)
		if len(users[a]) == 2 {
			pos[a] = pr.Pos // the second's: the likely typo
		}
	}
	var out []string
	for _, a := range addrs {
		if len(users[a]) < 2 {
			continue
		}
		w := fmt.Sprintf("%s: warning: their ready probes check one address, %s: all but one will fail with \"address already in use\", or each probe passes when another answers; a port typed twice?", programsNamed(users[a]), a)
		if pos[a] != "" {
			w = pos[a] + ": " + w
		}
		out = append(out, w)
	}
	return out
}

// probeAddr is the host:port a tcp or http probe checks, this machine's names as one
// (localhost, 0.0.0.0: 127.0.0.1); "" for others.
func probeAddr(r *plan.Probe) string {
	local := func(h string) string {
		switch strings.TrimSuffix(strings.ToLower(h), ".") {
		case "", "localhost", "0.0.0.0", "127.0.0.1":
			return "127.0.0.1"
		case "::1", "::", "[::]", "ip6-localhost":
			return "::1"
		}
		return h
	}
	switch {
	case r == nil:
	case r.Kind == plan.ProbeTCP:
		return net.JoinHostPort(local(r.Host), strconv.Itoa(r.Port))
	case r.Kind == plan.ProbeHTTP:
		if u, err := url.Parse(r.URL); err == nil {
			port := u.Port()
			if port == "" {
				port = map[string]string{"https": "443"}[u.Scheme]
				port = cmp.Or(port, "80")
			}
			return net.JoinHostPort(local(u.Hostname()), port)
		}
	}
	return ""
}

// programsNamed is `program "a"`, or for several `programs "a", "b", "c" and 297 more
// (300)`.
func programsNamed(names []string) string {
	if len(names) == 1 {
		return fmt.Sprintf("program %q", names[0])
	}
	var b strings.Builder
	b.WriteString("programs ")
	for i, n := range names[:min(len(names), 3)] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", n)
	}
	if len(names) > 3 {
		fmt.Fprintf(&b, " and %d more", len(names)-3)
	}
	fmt.Fprintf(&b, " (%d)", len(names))
	return b.String()
}

// portsTaken names the ready probes whose address already answers while the bundle's
// daemon is not running: another process (another bundle's, a forgotten server) listens
// there, and the program would fail to bind while its probe passed for the other.
// With the daemon running, its own programs answer there: nothing to say.
func portsTaken(p *plan.Plan) []string {
	if lockedAlready(p) != nil {
		return nil
	}
	var out []string
	for _, pr := range p.Programs {
		if addr := probe.Taken(pr); addr != "" {
			out = append(out, fmt.Sprintf("%s: program %q: ready: %s already answers: another process listens there (its program would fail to bind, and the probe pass for the other)", pr.Pos, plan.Short(pr.ProcessName), addr))
		}
	}
	return out
}

// Permission bits for syscall.Access.
const (
	accessW = 0x2
	accessX = 0x1
)

// machineProblems checks what validation cannot: that the plan fits this machine. Each
// problem reads "POS: program \"x\": what"; instances of one program share messages, so
// duplicates are dropped.
func machineProblems(p *plan.Plan, lookupEnv func(string) (string, bool)) []string {
	out := supervisorProblems(p.Supervisor)
	seen := map[string]bool{}
	writers := map[string]string{} // a log's real path -> who writes it, as said
	for _, pr := range p.Programs {
		msgs := programProblems(pr, p.Root, lookupEnv)
		for _, l := range []struct {
			field string
			log   *plan.Log
		}{{"stdout", pr.Stdout}, {"stderr", pr.Stderr}} {
			if l.log == nil || strings.HasPrefix(l.log.Path, "/dev/") {
				continue
			}
			// Validation compares the paths as written; a symlinked folder (log -> /var/log/app)
			// makes two spellings one file, whose two writers rotate it apart.
			real := l.log.Path
			if dir, err := filepath.EvalSymlinks(filepath.Dir(real)); err == nil {
				real = filepath.Join(dir, filepath.Base(real))
			}
			who := fmt.Sprintf("the %s of %q (%s)", l.field, pr.ProcessName, l.log.Path)
			if other, ok := writers[real]; ok && !strings.HasSuffix(other, "("+l.log.Path+")") {
				msgs = append(msgs, fmt.Sprintf("%s log: %s is the same file as %s, through a symlink: two writers would rotate it apart and lose lines", l.field, l.log.Path, other))
				continue
			}
			writers[real] = who
		}
		for _, msg := range msgs {
			line := fmt.Sprintf("program %q: %s", plan.Short(pr.Name), msg)
			if pr.Pos != "" {
				line = pr.Pos + ": " + line
			}
			if !seen[line] {
				seen[line] = true
				out = append(out, line)
			}
		}
	}
	return out
}

// supervisorProblems checks the daemon's own files as up will meet them. Each problem
// reads "POS: supervisor(): field: what", POS the supervisor() call's when there is one.
func supervisorProblems(sv plan.Supervisor) []string {
	var out []string
	subject := "supervisor(): "
	if sv.Pos != "" {
		subject = sv.Pos + ": " + subject
	}
	say := func(field, format string, args ...any) {
		out = append(out, subject+field+": "+fmt.Sprintf(format, args...))
	}
	if msg := minfdsProblem(sv.MinFDs); msg != "" {
		out = append(out, subject+msg)
	}
	if base := filepath.Base(sv.Socket); len(base) > 100 {
		say("socket", "its file name is %d bytes, too long for a unix socket (at most 100 here)", len(base))
	}
	if st, err := os.Stat(sv.Socket); err == nil && st.Mode().Type() != fs.ModeSocket {
		say("socket", "%s exists and is not a socket", sv.Socket)
	}
	if st, err := os.Stat(sv.Pidfile); sv.Pidfile != "" && err == nil && !st.Mode().IsRegular() {
		say("pidfile", "%s exists and is not a file", sv.Pidfile)
	}
	for _, f := range []struct{ field, path string }{{"pidfile", sv.Pidfile}, {"socket", sv.Socket}} {
		if f.path != "" && (f.path == sv.StateDir || f.path == sv.LogDir) {
			say(f.field, "%s is also a folder of the daemon's (state_dir or log_dir)", f.path)
		}
	}
	for _, d := range []struct{ field, path string }{{"state_dir", sv.StateDir}, {"log_dir", sv.LogDir}} {
		if d.path == "" {
			continue
		}
		if fs := pseudoFS(d.path); fs != "" {
			say(d.field, "%s is under %s, which cannot hold the daemon's files", d.path, fs)
			continue
		}
		if st, err := os.Stat(d.path); err == nil && !st.IsDir() {
			say(d.field, "%s is not a directory", d.path)
		} else if d.field == "state_dir" {
			// The daemon's lock and its plan.json are made there at up (log_dir's files
			// are checked with the programs' logs).
			if err := checkLogFolder(d.path); err != nil {
				say(d.field, "%v", err)
			} else if st != nil { // there: up refuses one others may write
				if err := safeStateDir(d.path); err != nil {
					say(d.field, "%v", err)
				}
			}
		}
	}
	if dir := filepath.Dir(sv.Socket); sv.Socket != "" && dir != sv.StateDir {
		if _, err := os.Stat(dir); err == nil {
			if err := safeSocketDir(dir); err != nil {
				say("socket", "%v", err)
			}
		}
	}
	return out
}

// openLogFolders warns of the log folders that exist and that others may write (no
// sticky bit): they can read every program's output, and replace its logs (symlinks
// planted there are not followed, files are). One line per folder.
func openLogFolders(p *plan.Plan) []string {
	var out []string
	seen := map[string]bool{}
	dirs := []string{p.Supervisor.LogDir}
	for _, pr := range p.Programs {
		for _, l := range []*plan.Log{pr.Stdout, pr.Stderr} {
			if l != nil && !strings.HasPrefix(l.Path, "/dev/") {
				dirs = append(dirs, filepath.Dir(l.Path))
			}
		}
	}
	for _, dir := range dirs {
		if dir == "" || seen[dir] {
			continue
		}
		seen[dir] = true
		var st syscall.Stat_t
		if syscall.Stat(dir, &st) == nil && st.Mode&0o002 != 0 && st.Mode&syscall.S_ISVTX == 0 {
			out = append(out, fmt.Sprintf("warning: log folder %s may be written by others (mode %#o, no sticky bit): they can read the programs' output and replace their logs; chmod o-w it", dir, st.Mode&0o7777))
		}
	}
	return out
}

// plantedLogs says of each log file the daemon would refuse to write, as planted by
// another user (see logs.Planted), what up then says: check said ok of them.
func plantedLogs(p *plan.Plan) []string {
	var out []string
	seen := map[string]bool{}
	check := func(pos, path string, trust []uint32) {
		if seen[path] || strings.HasPrefix(path, "/dev/") {
			return
		}
		seen[path] = true
		if err := logs.Planted(path, trust...); err != nil {
			out = append(out, fmt.Sprintf("%s: log %s: %v", pos, path, err))
		}
	}
	owner := scriptOwner(p)
	check(cmp.Or(p.Supervisor.Pos, p.Entry+":1:1"), filepath.Join(p.Supervisor.LogDir, daemonLog), owner)
	for _, pr := range p.Programs {
		for _, l := range []*plan.Log{pr.Stdout, pr.Stderr} {
			if l != nil {
				check(pr.Pos, l.Path, append(slices.Clone(owner), logUsers(p, l.Path)...))
			}
		}
	}
	return out
}

// pythonScript is the script file a Python interpreter's command line runs, read with
// the interpreter's own rules (options first; -c and -m run no file, -X and -W take a
// value); "" when argv is no python's, or runs no file.
func pythonScript(argv []string) string {
	if len(argv) < 2 || !isPythonName(filepath.Base(argv[0])) {
		return ""
	}
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "-" || a == "--":
			return "" // stdin; after --, still a script, but rare enough to leave
		case !strings.HasPrefix(a, "-"):
			return a
		case a == "-X" || a == "-W" || a == "--check-hash-based-pycs":
			i++ // its value
		case strings.HasPrefix(a, "-X") || strings.HasPrefix(a, "-W") || strings.HasPrefix(a, "--"):
			// a value joined (-Wignore::DeprecationWarning), or a long option
		case strings.ContainsAny(a[1:], "cm"):
			return "" // -c code, -m module (also joined: -uc, -um)
		}
	}
	return ""
}

// isPythonName: python, python3, python3.12, pypy3.
func isPythonName(base string) bool {
	for _, p := range []string{"python", "pypy"} {
		if v, ok := strings.CutPrefix(base, p); ok {
			return strings.Trim(v, "0123456789.") == ""
		}
	}
	return false
}

// statErr is the error of stat(path), nil when it is there.
func statErr(path string) error {
	_, err := os.Stat(path)
	return err
}

// pseudoFS is "/proc" or "/sys" when path is under one of them: kernel file systems
// where no file can be created (up failed there with "lock: open /proc/sys/daemon.lock:
// no such file or directory"), even as root, whom access(2) lets write most of /sys.
func pseudoFS(path string) string {
	for _, fs := range []string{"/proc", "/sys"} {
		if path == fs || strings.HasPrefix(path, fs+"/") {
			return fs
		}
	}
	return ""
}

// programProblems checks pr against this machine; root is where it runs when it names
// no directory (the bundle root: the daemon works from there).
func programProblems(pr plan.Program, root string, lookupEnv func(string) (string, bool)) []string {
	var msgs []string
	if len(pr.Command) > 0 {
		if err := checkCommand(pr, lookupEnv); err != nil {
			msgs = append(msgs, "command: "+err.Error())
		}
	}
	if pr.Directory != "" {
		if err := checkDir(pr.Directory); err != nil {
			msgs = append(msgs, "directory: "+err.Error())
		}
	}
	// The script a Python command runs (python.script(here(VERSION + "/serve.py"))): a
	// typo in the version switched to stopped the server for one that could not start.
	if script := pythonScript(pr.Command); script != "" {
		if !filepath.IsAbs(script) {
			script = filepath.Join(cmp.Or(pr.Directory, root), script) // python -u v1/serve.py run from the root
		}
		if _, err := os.Stat(script); filepath.IsAbs(script) && missing(err) {
			msgs = append(msgs, "command: script "+script+": no such file or directory")
		}
	}
	// The code a version names (the plan's CODE): a typo in the version switched every
	// program to a folder that is not there, and each failed on its import.
	for _, dir := range filepath.SplitList(pr.Env["PYTHONPATH"]) {
		if _, err := os.Stat(dir); filepath.IsAbs(dir) && missing(err) {
			msgs = append(msgs, "env: PYTHONPATH: "+dir+": no such file or directory")
		}
	}
	for _, l := range []struct {
		stream string
		log    *plan.Log
	}{{"stdout", pr.Stdout}, {"stderr", pr.Stderr}} {
		if l.log == nil {
			continue
		}
		if fs := pseudoFS(l.log.Path); fs != "" && missing(statErr(l.log.Path)) {
			// One there is a stream (/proc/self/fd/1); a file to make is not, as root
			// too, whom access(2) lets write there: up dropped the output.
			msgs = append(msgs, l.stream+" log: "+l.log.Path+" is under "+fs+", where no file can be created")
		} else if err := checkLogFolder(filepath.Dir(l.log.Path)); err != nil {
			msgs = append(msgs, l.stream+" log: "+err.Error())
		} else if st, err := os.Stat(l.log.Path); err == nil && st.IsDir() {
			msgs = append(msgs, l.stream+" log: "+l.log.Path+" is a directory")
		}
	}
	if pr.User != "" {
		if err := checkUser(pr.User); err != nil {
			msgs = append(msgs, "user: "+err.Error())
		} else if os.Geteuid() == 0 {
			msgs = append(msgs, userAccess(pr)...)
		}
	}
	if r := pr.Ready; r != nil && r.Kind == plan.ProbeExec && len(r.Command) > 0 {
		// The probe runs from the daemon, through its PATH (engine/probe).
		probe := plan.Program{Command: r.Command}
		if err := checkCommand(probe, lookupEnv); err != nil {
			msgs = append(msgs, "ready: probe.exec: "+err.Error())
		}
	}
	return msgs
}

// checkCommand finds command[0] as the launcher will (launcher.LookPath for a bare
// name, through the PATH the program will see), a path as it is.
func checkCommand(pr plan.Program, lookupEnv func(string) (string, bool)) error {
	name := pr.Command[0]
	if strings.Contains(name, "/") {
		return checkExecutable(name)
	}
	var env []string
	if path, ok := pr.Env["PATH"]; ok {
		env = []string{"PATH=" + path}
	}
	if _, err := launcher.LookPath(name, env, lookupEnv); err != nil {
		return fmt.Errorf("%q not found in PATH", name)
	}
	return nil
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if missing(err) {
			return fmt.Errorf("%s: no such file", path)
		}
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s: is a directory", path)
	}
	if fi.Mode()&0o111 == 0 || syscall.Access(path, accessX) != nil {
		return fmt.Errorf("%s: not executable", path)
	}
	if interp, ok := launcher.MissingInterpreter(path); ok {
		return fmt.Errorf("%s: its #! interpreter %s does not exist (a virtualenv moved since it was made? run the tool as python -m)", path, interp)
	}
	return nil
}

func checkDir(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if missing(err) {
			return fmt.Errorf("%s: no such directory", path)
		}
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", path)
	}
	return nil
}

// checkLogFolder accepts a folder that exists and is writable, or one whose nearest
// existing ancestor is a writable folder (the log writer creates the rest).
func checkLogFolder(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if missing(err) {
			if d == filepath.Dir(d) {
				return fmt.Errorf("folder %s: no existing ancestor", dir)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("folder %s: %w", dir, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("folder %s: %s is not a directory", dir, d)
		}
		if syscall.Access(d, accessW) != nil {
			if d == dir {
				return fmt.Errorf("folder %s: not writable", dir)
			}
			return fmt.Errorf("folder %s cannot be created: %s is not writable", dir, d)
		}
		return nil
	}
}

func checkUser(name string) error {
	u, err := user.Lookup(name)
	if _, nerr := strconv.Atoi(name); nerr == nil {
		if u, err = user.LookupId(name); err != nil {
			return fmt.Errorf("unknown user id %s", name)
		}
	} else if err != nil {
		return fmt.Errorf("unknown user %q", name)
	}
	// Not root, starvisor can run a program as no one but itself: as certain a failure
	// as an unknown user (supervisord: "can't drop privilege as nonroot user").
	if euid := os.Geteuid(); euid != 0 && u.Uid != strconv.Itoa(euid) {
		return fmt.Errorf("%s: starvisor runs as uid %d, not root, and cannot switch to another user (run it as root, or leave user out)", name, euid)
	}
	return nil
}

// missing reports a path that does not exist, including one below a file (ENOTDIR).
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// userAccess is what keeps a program run as another user (the daemon is root) from its
// directory or command: a folder on the way it may not search, a command it may not run.
// The spawn fails with EACCES there (the launcher names the folder: deniedWhy).
func userAccess(pr plan.Program) []string {
	u, err := user.Lookup(pr.User)
	if err != nil {
		if u, err = user.LookupId(pr.User); err != nil {
			return nil
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gids := map[int]bool{}
	if g, err := strconv.Atoi(u.Gid); err == nil {
		gids[g] = true
	}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.Atoi(id); err == nil {
				gids[g] = true
			}
		}
	}
	var msgs []string
	if pr.Directory != "" {
		if p := launcher.Unsearchable(pr.Directory, uid, gids); p != "" {
			msgs = append(msgs, fmt.Sprintf("directory: %s: user %s may not enter it", p, pr.User))
		}
	}
	if cmd := pr.Command[0]; filepath.IsAbs(cmd) {
		if p := launcher.Unsearchable(filepath.Dir(cmd), uid, gids); p != "" {
			msgs = append(msgs, fmt.Sprintf("command: %s: user %s may not enter it", p, pr.User))
		} else if st, err := os.Stat(cmd); err == nil && !launcher.Permits(st, uid, gids, 1) {
			msgs = append(msgs, fmt.Sprintf("command: %s: user %s may not run it", cmd, pr.User))
		}
	}
	return msgs
}
