package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/starvisor/starvisor/builtins"
	"github.com/starvisor/starvisor/engine/api"
)

// stateCommands are the verbs that observe a running daemon and the timing of its state
// changes. They find the daemon's socket in $STARVISOR_SOCKET when it is set, else at
// $WORK/run/starvisor.sock (the plan's default socket when the script calls no
// supervisor(socket = ...)). Keep scenario names under ~50 characters so that default
// path stays under the 108-byte unix socket limit.
//
// Event lines are the ones `starvisor up` prints, "2026-11-25T18:07:02.123 web STOPPED ->
// STARTING (reason)"; the timing verbs read them from a file or from "stdout" (the output
// of the last waited-for command, i.e. `wait` after the daemon was stopped).
var stateCommands = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"waitstate": waitState,
	"state":     checkState,
	"holdstate": holdState,
	"waitline":  waitLine,
	"delays":    delays,
	"gaps":      gaps,
	"gapsout":   gapsOut,
	"span":      span,
	"order":     order,
	"before":    before,
	"mark":      mark,
	"since":     since,
	"ctl":       ctl,
	"size":      size,
}

func socketPath(ts *testscript.TestScript) string {
	if s := ts.Getenv("STARVISOR_SOCKET"); s != "" {
		return s
	}
	return filepath.Join(ts.Getenv("WORK"), "run", "starvisor.sock")
}

func parseTimeout(ts *testscript.TestScript, args []string, i int, def time.Duration) time.Duration {
	if len(args) <= i {
		return def
	}
	d, err := time.ParseDuration(args[i])
	if err != nil {
		ts.Fatalf("bad duration %q: %v", args[i], err)
	}
	return d
}

var (
	clientsMu sync.Mutex
	clients   = map[string]*api.Client{}
)

// client is one api.Client per socket for the whole run: a Client keeps its connections
// alive, and a new one per 10-ms poll would pile up open connections.
func client(socket string) *api.Client {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	c, ok := clients[socket]
	if !ok {
		c = api.NewClient(socket)
		clients[socket] = c
	}
	return c
}

// processStatus asks the daemon for one process; a daemon that does not answer yet is
// reported as an error, so pollers keep polling.
func processStatus(ts *testscript.TestScript, name string) (api.ProgramStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := client(socketPath(ts)).Status(ctx)
	if err != nil {
		return api.ProgramStatus{}, err
	}
	for _, p := range r.Programs {
		if p.Name == name {
			return p, nil
		}
	}
	return api.ProgramStatus{}, fmt.Errorf("no process %q in status", name)
}

// stateIn reports whether state is one of want ("RUNNING" or "BACKOFF|FATAL").
func stateIn(state, want string) bool { return slices.Contains(strings.Split(want, "|"), state) }

// waitState polls the daemon until NAME is in STATE: waitstate NAME STATE[|STATE...] [timeout]
// (default 10s). STATE may list alternatives separated by "|".
func waitState(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: waitstate NAME STATE[|STATE] [timeout]")
	}
	timeout := parseTimeout(ts, args, 2, 10*time.Second)
	deadline := time.Now().Add(timeout)
	var last string
	for {
		st, err := processStatus(ts, args[0])
		if err == nil && stateIn(st.State, args[1]) {
			return
		}
		last = st.State
		if err != nil {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitstate: %s not %s within %s (last: %s)", args[0], args[1], timeout, last)
		}
		time.Sleep(pollEvery)
	}
}

// checkState asserts NAME's state now, and optionally that its description matches a
// regexp: [!] state NAME STATE [DESCRIPTION-REGEXP]. The pid is logged for the record.
func checkState(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: [!] state NAME STATE[|STATE] [description-regexp]")
	}
	st, err := processStatus(ts, args[0])
	ts.Check(err)
	ts.Logf("%s: %s pid %d %q", st.Name, st.State, st.Pid, st.Description)
	ok := stateIn(st.State, args[1])
	if ok && len(args) == 3 {
		ok = regexp.MustCompile(args[2]).MatchString(st.Description)
	}
	if ok == neg {
		ts.Fatalf("state: %s is %s %q; want %s%s %v", args[0], st.State, st.Description,
			map[bool]string{true: "not "}[neg], args[1], args[2:])
	}
}

// holdState asserts NAME stays in STATE for the whole of DURATION: holdstate NAME STATE
// DURATION. A negative ("it does not restart") needs an observation window; this is it.
func holdState(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: holdstate NAME STATE DURATION")
	}
	end := time.Now().Add(parseTimeout(ts, args, 2, 0))
	for {
		st, err := processStatus(ts, args[0])
		ts.Check(err)
		if !stateIn(st.State, args[1]) {
			ts.Fatalf("holdstate: %s left %s: now %s %q", args[0], args[1], st.State, st.Description)
		}
		if time.Now().After(end) {
			return
		}
		time.Sleep(pollEvery)
	}
}

// waitLine waits until FILE has a line matching REGEXP (count lines with -count=N):
// waitline [-count=N] FILE REGEXP [timeout] (default 10s).
func waitLine(ts *testscript.TestScript, neg bool, args []string) {
	count := 1
	if len(args) > 0 && strings.HasPrefix(args[0], "-count=") {
		n, err := strconv.Atoi(strings.TrimPrefix(args[0], "-count="))
		ts.Check(err)
		count, args = n, args[1:]
	}
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: waitline [-count=N] FILE REGEXP [timeout]")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	timeout := parseTimeout(ts, args, 2, 10*time.Second)
	deadline := time.Now().Add(timeout)
	name := ts.MkAbs(args[0])
	for {
		n := 0
		if data, err := os.ReadFile(name); err == nil {
			for _, l := range strings.Split(string(data), "\n") {
				if re.MatchString(l) {
					n++
				}
			}
		}
		if n >= count {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitline: %d line(s) of %s match %q after %s; want %d", n, args[0], args[1], timeout, count)
		}
		time.Sleep(pollEvery)
	}
}

// event is one state-change line of `starvisor up`.
type event struct {
	at       time.Time
	proc     string
	from, to string
	line     string
}

var eventLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) (\S+) (\S+) -> (\S+)`)

// events reads the state-change lines of FILE ("stdout" is the last command's output).
func events(ts *testscript.TestScript, file string) []event {
	var out []event
	for _, l := range strings.Split(ts.ReadFile(file), "\n") {
		m := eventLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		t, err := time.ParseInLocation("2006-01-02T15:04:05.000", m[1], time.Local)
		ts.Check(err)
		out = append(out, event{at: t, proc: m[2], from: m[3], to: m[4], line: l})
	}
	return out
}

// expectation is "1s,2s,3s" (exactly these) or "1s,2s,..." (these first), with a tolerance.
type expectation struct {
	want   []time.Duration
	prefix bool
	tol    time.Duration
}

func parseExpectation(ts *testscript.TestScript, list string, tol []string) expectation {
	e := expectation{tol: 150 * time.Millisecond}
	if len(tol) > 0 {
		d, err := time.ParseDuration(strings.TrimPrefix(strings.TrimPrefix(tol[0], "±"), "+-"))
		if err != nil {
			ts.Fatalf("bad tolerance %q", tol[0])
		}
		e.tol = d
	}
	e.tol = slack(ts, e.tol)
	for _, s := range strings.Split(list, ",") {
		if s == "..." {
			e.prefix = true
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			ts.Fatalf("bad duration %q in %q", s, list)
		}
		e.want = append(e.want, d)
	}
	return e
}

func (e expectation) check(ts *testscript.TestScript, what string, got []time.Duration) {
	ts.Logf("%s: got %v, want %v ±%v", what, got, e.want, e.tol)
	if len(got) < len(e.want) || !e.prefix && len(got) != len(e.want) {
		ts.Fatalf("%s: %d interval(s) %v; want %v", what, len(got), got, e.want)
	}
	for i, w := range e.want {
		if diff := got[i] - w; diff > e.tol || diff < -e.tol {
			ts.Fatalf("%s: interval %d is %v; want %v ±%v (all: %v)", what, i+1, got[i], w, e.tol, got)
		}
	}
}

// slack widens a timing tolerance by $CONFORMANCE_SLACK (a factor, default 1) for
// machines too loaded to keep time; the scenarios' own tolerances are the contract.
func slack(ts *testscript.TestScript, d time.Duration) time.Duration {
	f, err := strconv.ParseFloat(os.Getenv("CONFORMANCE_SLACK"), 64)
	if err != nil || f < 1 {
		return d
	}
	return time.Duration(float64(d) * f)
}

// gaps asserts the intervals between successive entries of PROC into STATE:
// gaps FILE PROC STATE 1s,2s,3s [±150ms]. A trailing ",..." checks only the first ones.
func gaps(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 4 || len(args) > 5 {
		ts.Fatalf("usage: gaps FILE PROC STATE D1,D2,...[,...] [±TOL]")
	}
	var at []time.Time
	for _, e := range events(ts, args[0]) {
		if e.proc == args[1] && e.to == args[2] {
			at = append(at, e.at)
		}
	}
	var got []time.Duration
	for i := 1; i < len(at); i++ {
		got = append(got, at[i].Sub(at[i-1]))
	}
	parseExpectation(ts, args[3], args[4:]).check(ts, "gaps "+args[1]+" "+args[2], got)
}

// gapsOut is gaps on the last command's stdout: gapsout PROC STATE D1,D2,... [±TOL].
func gapsOut(ts *testscript.TestScript, neg bool, args []string) {
	gaps(ts, neg, append([]string{"stdout"}, args...))
}

// delays asserts, for each entry of PROC into FROM, the time until its next entry into TO
// (entries with no later TO are not counted): delays FILE PROC FROM TO D1,D2,... [±TOL].
// "delays stdout crash BACKOFF STARTING 1s,2s,3s" is the back-off schedule.
func delays(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 5 || len(args) > 6 {
		ts.Fatalf("usage: delays FILE PROC FROM TO D1,D2,...[,...] [±TOL]")
	}
	var got []time.Duration
	var from *event
	for _, e := range events(ts, args[0]) {
		if e.proc != args[1] {
			continue
		}
		if e.to == args[3] && from != nil {
			got = append(got, e.at.Sub(from.at))
			from = nil
		}
		if e.to == args[2] {
			from = &e
		}
	}
	parseExpectation(ts, args[4], args[5:]).check(ts, "delays "+args[1]+" "+args[2]+" -> "+args[3], got)
}

// span asserts the time from the first entry of P1 into S1 to the first entry of P2 into
// S2 after it: span FILE P1 S1 P2 S2 DURATION [±TOL].
func span(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 6 || len(args) > 7 {
		ts.Fatalf("usage: span FILE P1 S1 P2 S2 DURATION [±TOL]")
	}
	var start *event
	for _, e := range events(ts, args[0]) {
		if start == nil && e.proc == args[1] && e.to == args[2] {
			start = &e
			continue
		}
		if start != nil && e.proc == args[3] && e.to == args[4] {
			parseExpectation(ts, args[5], args[6:]).check(ts, "span", []time.Duration{e.at.Sub(start.at)})
			return
		}
	}
	ts.Fatalf("span: no %s %s followed by %s %s in %s", args[1], args[2], args[3], args[4], args[0])
}

// order asserts the order of the processes' first entries into STATE:
// order FILE STATE PROC...
func order(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: order FILE STATE PROC...")
	}
	var got []string
	seen := map[string]bool{}
	for _, e := range events(ts, args[0]) {
		if e.to != args[1] || seen[e.proc] || !slices.Contains(args[2:], e.proc) {
			continue
		}
		seen[e.proc] = true
		got = append(got, e.proc)
	}
	if !slices.Equal(got, args[2:]) {
		ts.Fatalf("order: entries into %s: %v; want %v", args[1], got, args[2:])
	}
}

// before asserts that the first entry of P1 into S1 came before the first entry of P2
// into S2 (which must happen): before FILE P1 S1 P2 S2. It states "without waiting for"
// with no clock: a start that waited for p1's RUNNING would come after it.
func before(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 5 {
		ts.Fatalf("usage: before FILE P1 S1 P2 S2")
	}
	for _, e := range events(ts, args[0]) {
		switch {
		case e.proc == args[1] && e.to == args[2]:
			return
		case e.proc == args[3] && e.to == args[4]:
			ts.Fatalf("before: %s entered %s before %s entered %s", args[3], args[4], args[1], args[2])
		}
	}
	ts.Fatalf("before: %s never entered %s in %s", args[1], args[2], args[0])
}

// mark writes the current time to FILE, for since: mark FILE.
func mark(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: mark FILE")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(time.Now().Format(time.RFC3339Nano)+"\n"), 0o644))
}

// since asserts that the first entry of PROC into STATE in FILE came at most MAX after the
// time in MARKFILE: since MARKFILE FILE PROC STATE MAX.
func since(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 5 {
		ts.Fatalf("usage: since MARKFILE FILE PROC STATE MAX")
	}
	t0, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(ts.ReadFile(args[0])))
	ts.Check(err)
	max := slack(ts, parseTimeout(ts, args, 4, 0))
	for _, e := range events(ts, args[1]) {
		if e.proc == args[2] && e.to == args[3] {
			// Event times are printed to the millisecond; allow for the truncation.
			d := e.at.Sub(t0.Truncate(time.Millisecond))
			ts.Logf("since: %s %s %v after the mark", args[2], args[3], d)
			if d > max {
				ts.Fatalf("since: %s entered %s %v after the mark; want at most %v", args[2], args[3], d, max)
			}
			return
		}
	}
	ts.Fatalf("since: %s never entered %s in %s", args[2], args[3], args[1])
}

// size asserts FILE's size in bytes is within [MIN, MAX]: size FILE MIN MAX.
func size(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: size FILE MIN MAX")
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	lo, err1 := strconv.ParseInt(args[1], 10, 64)
	hi, err2 := strconv.ParseInt(args[2], 10, 64)
	ts.Check(errors.Join(err1, err2))
	ts.Logf("size: %s is %d bytes", args[0], fi.Size())
	if fi.Size() < lo || fi.Size() > hi {
		ts.Fatalf("size: %s is %d bytes; want %d..%d", args[0], fi.Size(), lo, hi)
	}
}

// ctl drives the daemon through its control API (api.Client), the way the CLI's client
// verbs do, and prints what it got (to stdout, for the stdout verb; to FILE with -o):
//
//	[!] ctl [-o FILE] [-bg] [-min=DUR] [-max=DUR] VERB ARGS...
//
//	start|stop|restart NAMESPEC...   "NAME: STATE" per process, then "error: ..." lines
//	signal SIG NAMESPEC...           same
//	status                           "[GROUP:]NAME STATE DESCRIPTION" per process
//	pid [NAME]                       the pid
//	logs [-stderr] [-n=N] [-f] NAME  the log's lines (-f streams; use it with -bg)
//	apply [-dry-run]                 evaluates $WORK/deploy.star, sends the plan: "+ a", "~ b: env", "- c"
//	shutdown                         "shut down"
//
// ! ctl expects the daemon to answer with an error. -min and -max bound how long the call
// took. -bg returns at once and writes FILE when the call ends (streams as it goes for
// logs -f); the call is cancelled when the script ends.
func ctl(ts *testscript.TestScript, neg bool, args []string) {
	out, bg := "", false
	var min, max time.Duration
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch f := args[0]; {
		case f == "-o" && len(args) > 1:
			out, args = args[1], args[1:]
		case f == "-bg":
			bg = true
		case strings.HasPrefix(f, "-min="):
			min = parseTimeout(ts, []string{f[5:]}, 0, 0)
		case strings.HasPrefix(f, "-max="):
			max = slack(ts, parseTimeout(ts, []string{f[5:]}, 0, 0))
		default:
			ts.Fatalf("ctl: unknown flag %q", f)
		}
		args = args[1:]
	}
	if len(args) == 0 || bg && (neg || out == "") {
		ts.Fatalf("usage: [!] ctl [-o FILE] [-bg] [-min=DUR] [-max=DUR] VERB ARGS...")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	if bg {
		path, env := ts.MkAbs(out), newCtlEnv(ts)
		ts.Defer(cancel)
		// A stream (logs -f) is written in place, to be watched with waitline; any other
		// answer appears whole, so waitfile sees it complete.
		tmp := path + ".part"
		if args[0] == "logs" {
			tmp = path
		}
		go func() {
			f, err := os.Create(tmp)
			if err != nil {
				return
			}
			err = ctlRun(ctx, env, f, args)
			if err != nil {
				fmt.Fprintf(f, "error: %v\n", err)
			}
			f.Close()
			os.Rename(tmp, path)
		}()
		return
	}
	defer cancel()
	var b strings.Builder
	t0 := time.Now()
	err := ctlRun(ctx, newCtlEnv(ts), &b, args)
	took := time.Since(t0)
	if err != nil {
		for _, l := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(&b, "error: %s\n", l)
		}
	}
	if out != "" {
		ts.Check(os.WriteFile(ts.MkAbs(out), []byte(b.String()), 0o644))
	} else {
		fmt.Fprint(ts.Stdout(), b.String())
	}
	ts.Logf("ctl %s: took %v\n%s", strings.Join(args, " "), took.Round(time.Millisecond), b.String())
	switch {
	case err != nil && !neg:
		ts.Fatalf("ctl %s: %v", args[0], err)
	case err == nil && neg:
		ts.Fatalf("ctl %s: unexpected success", args[0])
	case min > 0 && took < min:
		ts.Fatalf("ctl %s took %v; want at least %v", args[0], took, min)
	case max > 0 && took > max:
		ts.Fatalf("ctl %s took %v; want at most %v", args[0], took, max)
	}
}

// flusher lets a background stream be read while it is written.
type flusher interface{ Sync() error }

// ctlEnv is what ctlRun needs from the script, read before a -bg call leaves it.
type ctlEnv struct {
	socket, work string
	env          map[string]string
}

func newCtlEnv(ts *testscript.TestScript) ctlEnv {
	e := ctlEnv{socket: socketPath(ts), work: ts.Getenv("WORK"), env: map[string]string{}}
	for _, k := range []string{"HOME", "PATH", "STARVISOR_LIBS", "STARVISOR_SOCKET"} {
		e.env[k] = ts.Getenv(k)
	}
	return e
}

func ctlRun(ctx context.Context, e ctlEnv, w io.Writer, args []string) error {
	c := client(e.socket)
	verb, args := args[0], args[1:]
	results := func(r api.ActionResponse, err error) error {
		for _, x := range r.Results {
			fmt.Fprintf(w, "%s: %s\n", x.Name, x.State)
		}
		return err
	}
	switch verb {
	case "start", "stop", "restart":
		return results(c.Action(ctx, verb, args))
	case "signal":
		if len(args) < 1 {
			return errors.New("usage: signal SIG NAME...")
		}
		return results(c.Signal(ctx, args[0], args[1:]))
	case "status":
		r, err := c.Status(ctx)
		for _, p := range r.Programs {
			spec := p.Name // supervisorctl's namespec: "group:name" unless they are the same
			if p.Group != "" && p.Group != p.Name {
				spec = p.Group + ":" + p.Name
			}
			fmt.Fprintf(w, "%s %s %s\n", spec, p.State, p.Description)
		}
		return err
	case "pid":
		name := ""
		if len(args) > 0 {
			name = args[0]
		}
		pid, err := c.Pid(ctx, name)
		if err == nil {
			fmt.Fprintln(w, pid)
		}
		return err
	case "shutdown":
		err := c.Shutdown(ctx)
		if err == nil {
			fmt.Fprintln(w, "shut down")
		}
		return err
	case "logs":
		stderr, follow, n := false, false, 100
		for len(args) > 1 && strings.HasPrefix(args[0], "-") {
			switch {
			case args[0] == "-stderr":
				stderr = true
			case args[0] == "-f":
				follow = true
			case strings.HasPrefix(args[0], "-n="):
				v, err := strconv.Atoi(args[0][3:])
				if err != nil {
					return err
				}
				n = v
			}
			args = args[1:]
		}
		if len(args) != 1 {
			return errors.New("usage: logs [-stderr] [-n=N] [-f] NAME")
		}
		stream := api.Stdout
		if stderr {
			stream = api.Stderr
		}
		rc, err := c.Logs(ctx, []string{args[0]}, stream, follow, n)
		if err != nil {
			return err
		}
		defer rc.Close()
		buf := make([]byte, 32<<10)
		for {
			k, err := rc.Read(buf)
			if k > 0 {
				w.Write(buf[:k])
				if f, ok := w.(flusher); ok {
					f.Sync()
				}
			}
			if err == io.EOF || err != nil && ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return err
			}
		}
	case "apply":
		dry := len(args) > 0 && args[0] == "-dry-run"
		p, err := builtins.Eval(ctx, builtins.Options{
			File:      filepath.Join(e.work, "deploy.star"),
			LookupEnv: func(k string) (string, bool) { v, ok := e.env[k]; return v, ok && v != "" },
			Print:     io.Discard,
		})
		if err != nil {
			return err
		}
		r, err := c.Apply(ctx, p, dry)
		d := r.Delta
		for _, n := range d.Added {
			fmt.Fprintf(w, "+ %s\n", n)
		}
		for _, ch := range d.Changed {
			fmt.Fprintf(w, "~ %s: %s\n", ch.Name, strings.Join(ch.Fields, ", "))
		}
		for _, n := range d.Removed {
			fmt.Fprintf(w, "- %s\n", n)
		}
		return err
	}
	return fmt.Errorf("unknown verb %q", verb)
}
