package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/plan"
)

// MaxBody bounds every request body: a 1,000-program plan is well under 2 MiB, one of
// 10,000 processes (numprocs' bound) about 13 MiB.
const MaxBody = 64 << 20

// Backend is what the server controls; *engine.Supervisor satisfies it.
type Backend interface {
	Status() []engine.Status
	States() []engine.Status // Status without usage figures, not counted as watching
	Plan() *plan.Plan
	Start(ctx context.Context, names ...string) error
	Stop(ctx context.Context, names ...string) error
	Restart(ctx context.Context, names ...string) error
	Signal(ctx context.Context, sig syscall.Signal, names ...string) error
	Apply(ctx context.Context, p *plan.Plan) (plan.Delta, error)
	Shutdown(ctx context.Context) error
	ShuttingDown() bool
}

var _ Backend = (*engine.Supervisor)(nil)

// Server answers the control API for one Backend.
type Server struct {
	// Version is the daemon's build, as `starvisor version` says it (/v1/daemon).
	Version  string
	b        Backend
	mux      *http.ServeMux
	shutdown chan struct{} // closed once a client asked the daemon to shut down
	// following counts the logs the follows under way hold open (see followLimit).
	following atomic.Int64
	logf      func(format string, args ...any)

	// Settings, when set, are the supervisor() settings the daemon runs with (socket,
	// folders): an applied plan keeps them, and a note says which differ. SettingsRoot
	// is the bundle root they were made under (see Root).
	Settings     *plan.Supervisor
	SettingsRoot string

	// RealRoot, when set, is the bundle root's real path when the daemon started: a plan
	// whose root (the same spelling, /srv/app) now leads to another folder (a release
	// symlink switched to a bundle of its own) is refused (OtherRoot).
	RealRoot string

	// Check, when set, says what would keep a program from starting (check's findings,
	// in the daemon's environment): an apply that would restart a running program into
	// such a version is refused (Breaking), unless forced.
	Check func(plan.Program) []string

	// Burst, when set, is called before a request that may start or stop many processes
	// (start, stop, restart, apply, shutdown), and what it returns once the answer is
	// written; a shutdown's is never called, the daemon exits. The daemon paces its GC
	// with it.
	Burst func() (done func())

	reloadErr atomic.Pointer[string] // see SetReloadError
	// DaemonLog, when set, names the detached daemon's own log as it writes it (a path
	// its folder held open gives); else it is <log_dir>/starvisor.log.
	DaemonLog func() string
	// Root, when set, says where the bundle's folder is now ("": not known), which a move
	// while the daemon runs changes: logs are read there (logPlan).
	Root func() string
	// StateError, when set, says why the daemon cannot record its processes now ("":
	// it can), for every status answer.
	StateError func() string

	// ConnTimeout bounds a request's headers and an idle connection: a client that
	// connects and never finishes its request is let go (thousands of them, from a buggy
	// monitoring script, took every descriptor, and programs failed to spawn). 0: 10 s.
	ConnTimeout time.Duration
}

// NewServer builds the handler; logf receives request panics and other daemon-side errors.
func NewServer(b Backend, logf func(format string, args ...any)) *Server {
	s := &Server{b: b, mux: http.NewServeMux(), shutdown: make(chan struct{}), logf: logf}
	s.mux.HandleFunc("GET /v1/status", s.status)
	s.mux.HandleFunc("GET /v1/plan", s.plan)
	s.mux.HandleFunc("GET /v1/pid", s.pid)
	s.mux.HandleFunc("GET /v1/daemon", s.daemon)
	s.mux.HandleFunc("GET /v1/logs", s.logs)
	// Of a group or all, supervisorctl starts the processes not running and stops the
	// running ones, silently skipping the others; named ones all get an answer.
	// A stopped process with a start queued is not skipped by a stop: the stop cancels it.
	// A job done (EXITED with an expected code) counts as started: `start all` does not
	// run a migration again; its name does.
	s.mux.HandleFunc("POST /v1/start", s.action("start", b.Start, func(st engine.Status) bool {
		// A start already queued (the daemon's, waiting for a dependency) is on its way:
		// it goes once the dependency this start all also starts is ready.
		return st.State.Active() || st.State == engine.Exited && st.Ready || st.Queued
	}))
	// A crash loop between two runs (EXITED, its restart armed) is up for a stop: stop all
	// left it restarting.
	s.mux.HandleFunc("POST /v1/stop", s.action("stop", b.Stop, func(st engine.Status) bool { return !st.State.Active() && !st.Queued && !st.Resuming }))
	s.mux.HandleFunc("POST /v1/restart", s.action("restart", b.Restart, nil))
	s.mux.HandleFunc("POST /v1/signal", s.signal)
	s.mux.HandleFunc("POST /v1/apply", s.apply)
	s.mux.HandleFunc("POST /v1/shutdown", s.shutdownReq)
	s.mux.HandleFunc("/", s.noRoute) // every answer but a log's is JSON, a wrong route's too
	return s
}

// routes are the API's, for the answer to a request matching none.
var routes = []string{"GET /v1/status", "GET /v1/plan", "GET /v1/pid", "GET /v1/daemon", "GET /v1/logs",
	"POST /v1/start", "POST /v1/stop", "POST /v1/restart", "POST /v1/signal", "POST /v1/apply", "POST /v1/shutdown"}

// noRoute answers a request no route takes: 405 (with Allow) for a known path asked with
// another method, else 404; an ErrorResponse either way, not net/http's plain text.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	for _, rt := range routes {
		if method, path, _ := strings.Cut(rt, " "); path == r.URL.Path {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: this route takes %s", r.Method, r.URL.Path, method))
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Errorf("%s %s: no such route (the API's: %s)", r.Method, r.URL.Path, strings.Join(routes, ", ")))
}

// quietLog takes net/http's own messages ("http: Accept error: ... too many open files;
// retrying in 5ms") into the daemon's log in its words, the same message at most once a
// minute: out of descriptors, the accept loop said it 200 times a second.
type quietLog struct {
	logf func(format string, args ...any)
	mu   sync.Mutex
	last string
	at   time.Time
	n    int // repeats not shown
}

func (q *quietLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	// The varying part (retrying in 5ms, 10ms, ...) does not make another message.
	key, _, _ := strings.Cut(msg, "; retrying")
	q.mu.Lock()
	defer q.mu.Unlock()
	if key == q.last && time.Since(q.at) < time.Minute {
		q.n++
		return len(p), nil
	}
	if q.n > 0 && q.logf != nil {
		q.logf("api: the last message came %d more times", q.n)
	}
	q.last, q.at, q.n = key, time.Now(), 0
	if q.logf != nil {
		q.logf("api: %s", msg)
	}
	return len(p), nil
}

// ShutdownRequested is closed after a client's shutdown request has stopped every process.
func (s *Server) ShutdownRequested() <-chan struct{} { return s.shutdown }

// Listen creates the socket (its folder 0700, the socket 0600). A live socket is an error
// (another daemon owns it); a stale one is removed; anything else at the path (a file
// the script named by mistake, the script itself) is an error and is left alone.
func Listen(socket string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if Answers(socket) {
		return nil, fmt.Errorf("listen: a daemon is already running on %s", socket)
	}
	if st, err := os.Lstat(socket); err == nil {
		if st.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("listen: %s exists and is not a socket; name another path in supervisor(socket = ...)", socket)
		}
		_ = os.Remove(socket)
	}
	var l net.Listener
	err := viaShortPath(socket, func(name string) (err error) {
		l, err = net.Listen("unix", name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	return l, nil
}

// SetReloadError says in every status answer that the last reload failed (msg), or, with
// "", that it did not: a failed `systemctl reload` showed only in the daemon's log.
func (s *Server) SetReloadError(msg string) { s.reloadErr.Store(&msg) }

func (s *Server) reloadError() string {
	if p := s.reloadErr.Load(); p != nil {
		return *p
	}
	return ""
}

// movedNote is what to add to msg, an error naming the bundle's old folder, when the
// bundle moved since its plan was made (a restart's "couldn't chdir to" the old path):
// an apply from where it is now takes the new paths.
func (s *Server) movedNote(msg string) string {
	p := s.b.Plan()
	if s.Root == nil || p == nil || p.Root == "" {
		return ""
	}
	root := s.Root()
	if root == "" || root == p.Root {
		return ""
	}
	// The folder that moved may hold the script's (etc/deploy.star beside ../venv): a
	// venv's python there failed with no word of the move.
	from, _ := plan.MovedFolder(p.Root, root, Gone)
	if !strings.Contains(msg, from+"/") && !strings.Contains(msg, from+":") {
		return ""
	}
	return fmt.Sprintf(" (the bundle moved to %s since its plan was applied: starvisor apply there takes its new paths)", root)
}

func (s *Server) stateError() string {
	if s.StateError == nil {
		return ""
	}
	return s.StateError()
}

func (s *Server) connTimeout() time.Duration {
	if s.ConnTimeout > 0 {
		return s.ConnTimeout
	}
	return 10 * time.Second
}

// Serve answers on l until ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ConnContext:       withPeer,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          log.New(&quietLog{logf: s.logf}, "", 0),
		ReadHeaderTimeout: s.connTimeout(),
		IdleTimeout:       s.connTimeout(),
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	err := hs.Serve(limited(l, maxConns()))
	if errors.Is(err, http.ErrServerClosed) {
		// Serve returns as Shutdown begins; answers in flight (the shutdown request's
		// own) are written by the time Shutdown returns, and the daemon must not exit
		// before that.
		<-drained
		return nil
	}
	return err
}

// ServeHTTP checks the caller's uid, recovers from panics, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			s.logf("api: panic serving %s %s: %v", r.Method, r.URL.Path, v)
			writeError(w, http.StatusInternalServerError, fmt.Errorf("internal error: %v", v))
		}
	}()
	if err := checkPeer(r.Context()); err != nil {
		writeError(w, http.StatusForbidden, err)
		return
	}
	if r.Method == http.MethodPost {
		// The body too within ConnTimeout (readJSON lifts it once read): a client that
		// stalls mid-body held its connection, and a descriptor, for good.
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.connTimeout()))
	}
	if err := checkQuery(r.URL.RawQuery); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if r.URL.Path == "" || path.Clean(r.URL.Path) != r.URL.Path {
		// The mux would answer a 301 in HTML to the cleaned path (/v1//status), which a
		// script's client follows as a GET, a POST's body dropped.
		s.noRoute(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// checkQuery refuses a query the handlers would misread: one that does not parse was
// read as no name at all (Go's Query drops its error), and /v1/pid of a name with a
// bare ';' answered the daemon's own pid, which a script then killed; an empty name, a
// line count or a stream that is not one, which answered as if left out.
func checkQuery(raw string) error {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return fmt.Errorf("bad query: %v (escape ';' as %%3B and '%%' as %%25 in names)", err)
	}
	if slices.Contains(q["name"], "") {
		return errors.New("bad query: an empty name selects nothing")
	}
	for _, k := range []string{"n", "stream", "follow", "daemon", "stderr", "usage"} {
		if len(q[k]) > 1 { // which one wins was the server's choice, silently
			return fmt.Errorf("bad query: %s given %d times; give it once", k, len(q[k]))
		}
	}
	if v, ok := q["n"]; ok {
		if n, err := strconv.Atoi(v[0]); err != nil || n < 0 {
			return fmt.Errorf("bad query: n=%s: want a number of lines, 0 or more", v[0])
		}
	}
	if v, ok := q["stream"]; ok && v[0] != string(Stdout) && v[0] != string(Stderr) {
		return fmt.Errorf("bad query: stream=%s: want stdout or stderr", v[0])
	}
	for _, k := range []string{"follow", "daemon", "stderr", "usage"} {
		if v, ok := q[k]; ok && v[0] != "0" && v[0] != "1" {
			return fmt.Errorf("bad query: %s=%s: want 1 or 0", k, v[0])
		}
	}
	return nil
}

// status answers every process, or with ?name=SPEC... those the specs select (unknown
// specs listed apart, so the others are still shown). With usage=0, without the CPU and
// memory figures, and not counted as someone watching: ls, and the clients' waits, made
// every daemon scan /proc for a minute for figures nobody showed.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	states := s.b.Status
	if r.URL.Query().Get("usage") == "0" {
		states = s.b.States
	}
	all := statuses(sc.programs[:0], states(), time.Now())
	sc.programs = all
	for i := range all {
		// A start that failed on a path of the bundle's old place says it moved, as the
		// start's own answer does: status showed only "can't find command".
		if all[i].SpawnFailed && (all[i].State == "BACKOFF" || all[i].State == "FATAL") {
			all[i].Description += s.movedNote(all[i].Description)
		}
	}
	specs := r.URL.Query()["name"]
	if len(specs) == 0 {
		writeStatus(w, sc, StatusResponse{Programs: all, ReloadError: s.reloadError(), StateError: s.stateError(), ShuttingDown: s.b.ShuttingDown()})
		return
	}
	names, unknown, err := s.resolve(specs)
	if err != nil {
		writeError(w, resolveStatus(err), err)
		return
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := StatusResponse{Programs: make([]ProgramStatus, 0, len(names)), ReloadError: s.reloadError(), StateError: s.stateError(), ShuttingDown: s.b.ShuttingDown()}
	for _, ps := range all {
		if want[ps.Name] {
			out.Programs = append(out.Programs, ps)
		}
	}
	for _, u := range unknown {
		out.Unknown = append(out.Unknown, u.Name)
	}
	writeStatus(w, sc, out)
}

// scratch holds a status answer's buffers between requests. At ~500 bytes a process,
// fresh ones for each `status` were most of what the daemon allocated, and so of its GC
// work (each cycle scans every process's goroutine stacks).
type scratch struct {
	programs []ProgramStatus
	buf      []byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func writeStatus(w http.ResponseWriter, sc *scratch, r StatusResponse) {
	sc.buf = appendStatus(sc.buf[:0], r)
	writeBody(w, http.StatusOK, sc.buf)
}

func (s *Server) plan(w http.ResponseWriter, r *http.Request) {
	p := s.b.Plan()
	if p == nil {
		writeError(w, http.StatusNotFound, errors.New("no plan applied yet"))
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) pid(w http.ResponseWriter, r *http.Request) {
	names := r.URL.Query()["name"]
	if len(names) > 1 {
		// The first was answered, the others dropped: a script asking for two pids got one.
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad query: pid takes one name, got %d", len(names)))
		return
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		writeJSON(w, http.StatusOK, PidResponse{Pid: os.Getpid()})
		return
	}
	pr, ok := s.one(w, name)
	if !ok {
		return
	}
	for _, st := range s.b.States() {
		if st.Name == pr.ProcessName {
			writeJSON(w, http.StatusOK, PidResponse{Pid: st.Pid})
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Errorf("no such process: %s", name)) // removed meanwhile
}

// one finds the process a name selects (plan.One), or answers 404 and returns false.
func (s *Server) one(w http.ResponseWriter, name string) (plan.Program, bool) {
	p := s.b.Plan()
	if p == nil {
		writeError(w, http.StatusNotFound, errors.New("no plan applied yet"))
		return plan.Program{}, false
	}
	pr, err := p.One(name)
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return plan.Program{}, false
	}
	return pr, true
}

// burst calls s.Burst, if set.
func (s *Server) burst() (done func()) {
	if s.Burst == nil {
		return func() {}
	}
	return s.Burst()
}

// accepted is the context of an action the daemon took on: the client's going away
// (Ctrl-C on `starvisor restart` halfway through a slow stop) must not cancel it, or
// the program would stay stopped and an apply would end half done. The daemon carries
// it out, as supervisord does a request it received.
func accepted(r *http.Request) context.Context { return context.WithoutCancel(r.Context()) }

// action serves start, stop and restart (verb).
func (s *Server) action(verb string, do func(context.Context, ...string) error, skip func(engine.Status) bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req ActionRequest
		if !readJSON(w, r, &req) {
			return
		}
		names, unknown, err := s.resolve(req.Names)
		if err != nil {
			writeError(w, resolveStatus(err), err)
			return
		}
		if skip != nil {
			names = s.skipInGroups(req.Names, names, skip)
		}
		// Like supervisorctl, an unknown name is reported and the known ones still acted on.
		var up map[string]time.Time // those up when asked, since when: what a restart stops first, what a start finds started
		if verb != "stop" {
			up = s.active(names)
		}
		groups := s.groupsOf(names) // for the lines of those an apply removes meanwhile
		doing, refused := names, error(nil)
		if verb == "restart" {
			doing, refused = s.wouldNotStart(names, up)
		}
		if len(doing) > 0 {
			defer s.burst()()
			err = do(accepted(r), doing...)
		}
		err = errors.Join(refused, err)
		switch verb {
		case "restart":
			// "already started" after its stop: a concurrent start (an apply's, of the new
			// version) did the restart's work.
			s.answerStopped(w, names, unknown, startedMeanwhile(err, nil), s.changed(up), groups) // those it stopped first
		case "start":
			s.answerStopped(w, names, unknown, startedMeanwhile(err, up), nil, groups)
		default:
			s.answerStopped(w, names, unknown, err, nil, groups)
		}
	}
}

// wouldNotStart keeps out of a restart the processes up now that their check says could
// not start again (its command gone: a bundle moved, a venv removed), as apply refuses
// to restart one into a version that cannot start: the restart stopped a healthy
// process, then failed to spawn it. It returns the others, and an error per refused one.
func (s *Server) wouldNotStart(names []string, up map[string]time.Time) ([]string, error) {
	p := s.b.Plan()
	if s.Check == nil || p == nil {
		return names, nil
	}
	var keep []string
	var errs []error
	for _, n := range names {
		pr, ok := p.Lookup(n)
		if _, running := up[n]; ok && running {
			if problems := s.Check(pr); len(problems) > 0 {
				errs = append(errs, &engine.ProcessError{Name: n, Err: fmt.Errorf("would not start again (%s): nothing stopped; fix it, or stop it", strings.Join(problems, "; "))})
				continue
			}
		}
		keep = append(keep, n)
	}
	return keep, errors.Join(errs...)
}

// startedMeanwhile drops "already started" of the processes that were not up when the
// start was asked: the daemon's own start of one (a dependent waiting for the job this
// start ran) came first, and it is up as asked. `start all` said "web: ERROR (already
// started)" when it won that race.
func startedMeanwhile(err error, up map[string]time.Time) error {
	pes := engine.ProcessErrors(err)
	if len(pes) == 0 {
		return err
	}
	var keep []error
	for _, pe := range pes {
		if _, was := up[pe.Name]; !errors.Is(pe, engine.ErrAlreadyStarted) || was {
			keep = append(keep, pe)
		}
	}
	return errors.Join(keep...)
}

// active is which of names are up (STARTING, RUNNING, BACKOFF) now, each with the time
// of its last state change.
func (s *Server) active(names []string) map[string]time.Time {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	up := map[string]time.Time{}
	for _, st := range s.b.States() {
		if want[st.Name] && st.State.Active() {
			up[st.Name] = st.Since
		}
	}
	return up
}

// changed is which of up (active's) have changed state since: a restart stopped them.
// One it refused (a dependency FATAL) is left as it was, and is not said stopped.
func (s *Server) changed(up map[string]time.Time) map[string]bool {
	out := map[string]bool{}
	listed := map[string]bool{}
	for _, st := range s.b.States() {
		listed[st.Name] = true
		if since, ok := up[st.Name]; ok && !st.Since.Equal(since) {
			out[st.Name] = true
		}
	}
	for name := range up {
		out[name] = out[name] || !listed[name] // up, and removed since: stopped
	}
	return out
}

func (s *Server) signal(w http.ResponseWriter, r *http.Request) {
	var req ActionRequest
	if !readJSON(w, r, &req) {
		return
	}
	sig, err := engine.ParseSignal(req.Signal)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	names, unknown, err := s.resolve(req.Names)
	if err != nil {
		writeError(w, resolveStatus(err), err)
		return
	}
	// Of a group or all, those running: `signal HUP all` in a logrotate hook must not
	// fail for a program that is stopped.
	names = s.skipInGroups(req.Names, names, func(st engine.Status) bool {
		return st.State != engine.Starting && st.State != engine.Running && st.State != engine.Stopping
	})
	if len(names) > 0 {
		err = s.b.Signal(r.Context(), sig, names...)
	}
	s.answer(w, names, unknown, err)
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request) {
	defer s.burst()() // decoding a big plan is garbage too
	var req ApplyRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Plan == nil {
		writeError(w, http.StatusBadRequest, errors.New("apply: no plan"))
		return
	}
	if !filepath.IsAbs(req.Plan.Root) {
		// Said as such: compared with the running bundle, it read "another bundle than  ".
		writeError(w, http.StatusBadRequest, errors.New(`apply: the plan has no "root" (an absolute folder: a plan as starvisor plan --json prints it)`))
		return
	}
	// Finish validates, then recomputes start order and hashes: the engine diffs by hash
	// and starts in plan order, so it must not trust a client's copy of either.
	if err := req.Plan.Finish(); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if s.b.ShuttingDown() { // a dry run too: "no changes" would read as all well
		writeError(w, http.StatusConflict, engine.ErrShutdown)
		return
	}
	other := otherBundle(s.b.Plan(), req.Plan)
	besides := other != nil && req.DryRun && sameFolder(s.b.Plan(), req.Plan)
	if besides {
		other = nil // plan --diff of a rewrite tried beside the script: shown, apply refuses it
	}
	if err := errors.Join(other, OtherRoot(s.RealRoot, req.Plan)); err != nil {
		writeError(w, http.StatusConflict, err)
		return
	}
	running := s.b.Plan()
	diff := plan.Diff(running, req.Plan) // what the dry run shows, the notes and the refusal judge
	notes := s.keepSettings(req.Plan)
	if n := envChanged(running, req.Plan); n != "" {
		notes = append(notes, n)
	}
	notes = append(notes, downUntilDeps(req.Plan, diff)...)
	if f, ok := s.b.(interface{ FirstJobs() []string }); ok {
		if jobs := f.FirstJobs(); len(jobs) > 0 {
			// The running plan holds those jobs' new versions already: the difference
			// below is against it, and this apply waits for that one.
			what, done := "the jobs "+strings.Join(jobs, ", "), "they are done"
			if len(jobs) == 1 {
				what, done = "the job "+jobs[0], "it is done"
			}
			note := RunningFirstNote + what + ", and applies the rest once " + done + "; this one waits for it, and the difference shown is against the plan with the new version"
			if req.DryRun {
				note = RunningFirstNote + what + ", and applies the rest once " + done + "; the difference shown is against the plan with the new version"
			}
			notes = append(notes, note)
		}
	}
	if req.DryRun {
		if diff.Empty() && s.reloadError() != "" && !besides {
			s.SetReloadError("") // the script is what runs, whatever a reload said before
		}
		r := ApplyResponse{Delta: diff, Notes: notes}
		if besides {
			r.Refused = fmt.Sprintf("this daemon runs %s; %s beside it is a bundle of its own (each script in a folder is one): to run it here, make it %s",
				filepath.Join(running.Root, running.Entry), req.Plan.Entry, running.Entry)
		} else if err := Breaking(s.b.States(), req.Plan, diff, s.Check); err != nil {
			r.Refused = err.Error()
			// What a refused apply would not do: "the job runs first, and web restarts"
			// read as a promise above "nothing applied".
			r.Notes = slices.DeleteFunc(r.Notes, func(n string) bool { return strings.Contains(n, "the job runs first") })
		} else if w := AfterJobs(s.b.States(), req.Plan, diff, s.Check); w != "" {
			r.Notes = append(r.Notes, "apply may refuse: "+w)
		}
		if n := startsStopped(s.b.States(), running, req.Plan, diff); n != "" {
			r.Notes = append(r.Notes, n)
		}
		if f, ok := s.b.(interface {
			WouldRunFirst(*plan.Plan, plan.Delta) []string
		}); ok {
			r.FirstJobs = f.WouldRunFirst(req.Plan, diff)
		}
		writeJSON(w, http.StatusOK, r)
		return
	}
	if !req.Force {
		if err := Breaking(s.b.States(), req.Plan, diff, s.Check); err != nil {
			// In the daemon's log too, as an apply made is: a deploy that failed is
			// looked for there.
			s.logf("apply refused (asked by pid %d): %v", peerPid(r.Context()), err)
			writeError(w, http.StatusConflict, err)
			return
		}
	}
	// In the daemon's log, before the restarts it brings: they read "stop requested", as
	// a stop by hand, and "why did everything restart at 08:24?" had no answer there. In
	// the apply's turn, against the plan it changes: one queued behind an apply of the
	// same script logged the changes that one made.
	say := func(d plan.Delta) {
		if !d.Empty() {
			s.logf("%s", appliedLine(d, peerPid(r.Context())))
		}
	}
	ctx := accepted(r)
	if req.Force {
		ctx = engine.Forced(ctx)
	}
	var d plan.Delta
	var err error
	if m, ok := s.b.(interface {
		ApplyMade(context.Context, func(*plan.Plan) (*plan.Plan, error)) (plan.Delta, error)
	}); ok {
		d, err = m.ApplyMade(ctx, func(running *plan.Plan) (*plan.Plan, error) {
			if req.Expect != nil && !maps.Equal(Hashes(running), req.Expect) {
				return nil, ErrPlanChanged
			}
			say(plan.Diff(running, req.Plan))
			return req.Plan, nil
		})
	} else {
		say(diff)
		d, err = s.b.Apply(ctx, req.Plan)
	}
	if err != nil {
		// In the daemon's log too: a deploy that failed (a job put back) is looked for there.
		s.logf("apply failed: %v", err)
		writeError(w, http.StatusConflict, err)
		return
	}
	if s.reloadError() != "" {
		s.SetReloadError("") // the plan running is the one applied now, not the one before
	}
	// Said to who applied (a deploy's log), not only in the daemon's: it said nothing.
	writeJSON(w, http.StatusOK, ApplyResponse{Delta: d, Notes: notes, StateError: s.stateError()})
}

// envChanged words the host.env values next was evaluated with that differ from those
// of the running plan ("" when none): an apply from a shell without MODE=prod set
// switches production to its default, and the diff shows only "~ web: env".
func envChanged(running, next *plan.Plan) string {
	if running == nil {
		return ""
	}
	var diff []string
	for _, k := range slices.Sorted(maps.Keys(next.Inputs.Env)) {
		_, ok := running.Inputs.Env[k]
		now, nowSet := next.Inputs.Value(k)
		was, wasSet := running.Inputs.Value(k)
		if ok && (now != was || nowSet != wasSet) && !strings.HasPrefix(k, "host.") {
			diff = append(diff, plan.EnvDiff(k, now, nowSet, was, wasSet, "running"))
		}
	}
	if len(diff) == 0 {
		return ""
	}
	return EnvChangedNote + ": " + strings.Join(diff, ", ")
}

// appliedLine is the daemon log's line for a client's apply: what it changes (and in
// what), and which client (by pid) asked.
func appliedLine(d plan.Delta, pid int) string {
	line := fmt.Sprintf("apply: %d added, %d changed, %d removed, %d updated without a restart", len(d.Added), len(d.Changed), len(d.Removed), len(d.Updated))
	var names, fields []string
	for _, c := range d.Changed {
		names = append(names, c.Name)
		for _, f := range c.Fields {
			if !slices.Contains(fields, f) {
				fields = append(fields, f)
			}
		}
	}
	for _, part := range []struct {
		mark  string
		names []string
	}{{"+", d.Added}, {"~", names}, {"-", d.Removed}} {
		if len(part.names) == 0 {
			continue
		}
		shown := part.names
		if len(shown) > 10 {
			shown = append(slices.Clone(shown[:10]), fmt.Sprintf("and %d more", len(part.names)-10))
		}
		line += "; " + part.mark + " " + strings.Join(shown, ", ")
		if part.mark == "~" && len(fields) > 0 {
			line += " (" + strings.Join(fields, ", ") + ")"
		}
	}
	if pid > 0 {
		line += fmt.Sprintf(" (asked by pid %d)", pid)
	}
	return line
}

// startsStopped notes, for a dry run, the changed processes stopped by hand that the
// apply starts (as supervisord's update does): a deploy during maintenance brought
// everything back up, and the difference shown did not say so ("" when none).
func startsStopped(states []engine.Status, running, next *plan.Plan, d plan.Delta) string {
	if running == nil {
		return ""
	}
	stopped := map[string]bool{}
	for _, st := range states {
		stopped[st.Name] = st.State == engine.Stopped && !st.Resuming
	}
	var names []string
	for _, c := range d.Changed {
		was, ok1 := running.Lookup(c.Name)
		pr, ok2 := next.Lookup(c.Name)
		if ok1 && ok2 && stopped[c.Name] && was.Autostart && pr.Autostart {
			names = append(names, c.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	are, them := "are", "them"
	if len(names) == 1 {
		are, them = "is", "it"
	}
	return fmt.Sprintf("%s %s STOPPED, and this apply starts %s (a changed program starts, as supervisord's update does); stop %s again after it, or set autostart = False, to keep %s down",
		strings.Join(names, ", "), are, them, them, them)
}

// RunningFirstNote begins the note of an apply waiting behind another's jobs: a client's
// --wait bounds that wait (the jobs may hang).
const RunningFirstNote = "an apply is running first "

// EnvChangedNote begins envChanged's note.
const EnvChangedNote = "the script read other host.env values than the running plan's"

// downUntilDeps notes the programs the apply restarts that depend on a job it adds or
// changes (a migration), which the engine runs first (see engine.Supervisor.Apply).
func downUntilDeps(next *plan.Plan, d plan.Delta) []string {
	var notes []string
	jobs := d.JobsFirst(next)
	for _, job := range slices.Sorted(maps.Keys(jobs)) {
		// Every restarted program that waits for it: one named read as only that one
		// waiting, the others restarted at once.
		var deps []string
		for _, c := range d.Changed {
			if pr, ok := next.Lookup(c.Name); ok && !pr.IsJob() && slices.Contains(pr.DependsOn, job) && !slices.Contains(deps, pr.Name) {
				deps = append(deps, pr.Name)
			}
		}
		if len(deps) == 0 {
			deps = []string{jobs[job]} // a job the job that runs first depends on
		}
		if len(deps) == 1 {
			notes = append(notes, fmt.Sprintf("%s depends on the job %s: the job runs first, and %s restarts once it is done (should it fail, nothing else is applied)", deps[0], job, deps[0]))
			continue
		}
		notes = append(notes, fmt.Sprintf("%s depend on the job %s: the job runs first, and they restart once it is done (should it fail, nothing else is applied)", strings.Join(deps, ", "), job))
	}
	return notes
}

// otherBundle refuses a plan from another bundle than the running one's, while that one is
// still where it was: two bundles naming one socket (a copy made for staging, a
// supervisord habit of /run/app.sock) would otherwise replace each other's programs. A
// bundle moved since its daemon started (its old root holds no script any more) is
// the same one, at its new place.
func otherBundle(running, next *plan.Plan) error {
	script := OtherBundle(running, next)
	switch {
	case script == "":
		return nil
	case sameFolder(running, next):
		// A bundle is its entry script: a second one beside it (a rewrite being tried)
		// would replace the first one's programs under its daemon.
		return fmt.Errorf("this daemon runs %s; %s beside it is a bundle of its own (each script in a folder is one): nothing applied. plan --diff -f %s shows how they differ; to run it here, make it %s",
			script, next.Entry, filepath.Join(next.Root, next.Entry), running.Entry)
	}
	return fmt.Errorf("this daemon runs %s, another bundle than %s (do both name this socket?): nothing applied", script, filepath.Join(next.Root, next.Entry))
}

// sameFolder says whether the two plans' scripts are in one folder.
func sameFolder(a, b *plan.Plan) bool {
	if a == nil || b == nil {
		return false
	}
	if a.Root == b.Root {
		return true
	}
	sa, err1 := os.Stat(a.Root)
	sb, err2 := os.Stat(b.Root)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// OtherRoot refuses next when its root now leads to another folder than realRoot, the
// daemon's at its start, which still exists: the same spelling through a switched
// symlink (app -> release-8, each release a bundle with its deploy.star) applied the
// other release's script to this daemon, its logs moving there. A root moved away (the
// bundle renamed while it runs) is the bundle at its new place.
func OtherRoot(realRoot string, next *plan.Plan) error {
	if realRoot == "" {
		return nil
	}
	now, err := filepath.EvalSymlinks(next.Root)
	if err != nil || now == realRoot {
		return nil
	}
	if _, err := os.Stat(realRoot); err != nil {
		return nil // moved away
	}
	return fmt.Errorf("%s leads to %s now, and this daemon runs the bundle in %s (a symlink switched to a bundle of its own: moving between them is shutdown, then up): nothing applied", next.Root, now, realRoot)
}

// OtherBundle returns the script of the running plan when it is another bundle's than
// next's, and that one is still where it was; "" when they are the same bundle.
func OtherBundle(running, next *plan.Plan) string {
	if running == nil || running.Root == "" {
		return ""
	}
	script, nextScript := filepath.Join(running.Root, running.Entry), filepath.Join(next.Root, next.Entry)
	if script == nextScript {
		return ""
	}
	st, err := os.Stat(script)
	if err != nil {
		return "" // moved away: the bundle at its new place
	}
	if nst, err := os.Stat(nextScript); err == nil && os.SameFile(st, nst) {
		return "" // the same script by another path (a symlink on the way)
	}
	// Another script, even in the same folder: two scripts there are two bundles.
	return script
}

// keepSettings gives p the daemon's own supervisor() settings (KeepSettings) and
// returns the note, if any, for the answer.
func (s *Server) keepSettings(p *plan.Plan) []string {
	if s.Settings == nil {
		return nil
	}
	running := *s.Settings
	if s.Root != nil && s.SettingsRoot != "" {
		// The bundle moved (mv) since the daemon started: its folders, held open, moved
		// with it, and are where it is now, not a setting that differs.
		now := s.Root()
		for _, f := range []*string{&running.Socket, &running.Pidfile, &running.LogDir, &running.StateDir} {
			*f = plan.MovedPath(s.SettingsRoot, now, *f)
		}
	}
	if note := KeepSettings(running, p); note != "" {
		return []string{note}
	}
	return nil
}

// KeepSettings gives next the settings of the running daemon, which an apply or a reload
// cannot change (the socket it listens on, the folders it was started with), and words
// which next had otherwise ("" when none).
func KeepSettings(running plan.Supervisor, next *plan.Plan) string {
	var diff []string
	for _, f := range []struct{ name, was, now string }{
		{"socket", running.Socket, next.Supervisor.Socket}, {"pidfile", running.Pidfile, next.Supervisor.Pidfile},
		{"log_dir", running.LogDir, next.Supervisor.LogDir}, {"state_dir", running.StateDir, next.Supervisor.StateDir},
		{"minfds", strconv.Itoa(running.MinFDs), strconv.Itoa(next.Supervisor.MinFDs)},
	} {
		switch {
		case f.was == f.now:
		case f.name == "log_dir": // the programs' log paths were resolved against it already
			diff = append(diff, fmt.Sprintf("log_dir %s (programs' default logs go there now; the daemon's own log stays in %s)", f.now, f.was))
		default:
			diff = append(diff, fmt.Sprintf("%s %s (running: %s)", f.name, f.now, f.was))
		}
	}
	next.Supervisor = running
	if len(diff) == 0 {
		return ""
	}
	return "supervisor() settings differ from the running daemon's, which keeps its own until it is started again: " + strings.Join(diff, ", ")
}

func (s *Server) shutdownReq(w http.ResponseWriter, r *http.Request) {
	s.burst() // never done: the daemon exits
	err := s.b.Shutdown(accepted(r))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
	select {
	case <-s.shutdown:
	default:
		close(s.shutdown)
	}
}

// errNoNames: a request naming no process, a bad request (400), where one naming none
// that exists is 404.
var errNoNames = errors.New("no names given")

// resolveStatus is the HTTP status of a resolve error.
func resolveStatus(err error) int {
	if errors.Is(err, errNoNames) {
		return http.StatusBadRequest
	}
	return http.StatusNotFound
}

// resolve turns namespecs into process names in start order, without duplicates. Specs
// that match nothing come back as results carrying the error; err is for a request that
// cannot be served at all.
func (s *Server) resolve(specs []string) (names []string, unknown []Result, err error) {
	p := s.b.Plan()
	if p == nil {
		return nil, nil, errors.New("no plan applied yet")
	}
	if len(specs) == 0 {
		return nil, nil, errNoNames
	}
	want := map[string]bool{}
	asked := map[string]bool{}
	for _, spec := range specs {
		if asked[spec] {
			continue // once: 200,000 copies of an unknown name made 17 MB of answer
		}
		asked[spec] = true
		got, err := p.Select(spec)
		if err != nil {
			unknown = append(unknown, Result{Name: spec, Error: notFound(spec)})
			continue
		}
		for _, n := range got {
			want[n] = true
		}
	}
	names = make([]string, 0, len(want))
	for _, pr := range p.Programs {
		if want[pr.ProcessName] {
			names = append(names, pr.ProcessName)
		}
	}
	return names, unknown, nil
}

// skipInGroups leaves out of names the processes that only a group spec ("web:*",
// "web:", "all", a pool's name) selected and whose state skip holds: supervisorctl's start of a group
// skips its running members, and says nothing of them.
func (s *Server) skipInGroups(specs, names []string, skip func(engine.Status) bool) []string {
	p := s.b.Plan()
	named := map[string]bool{}
	for _, spec := range specs {
		if spec == "all" || strings.HasSuffix(spec, ":*") || strings.HasSuffix(spec, ":") {
			continue
		}
		// A pool's bare name (worker, for worker_0..2) selects a group as worker:* does:
		// said alike (each member was "ERROR (already started)" one way, nothing the other).
		if got, _ := p.Select(spec); len(got) == 1 {
			named[got[0]] = true
		}
	}
	state := map[string]engine.Status{}
	for _, st := range s.b.States() {
		state[st.Name] = st
	}
	out := names[:0:0]
	for _, n := range names {
		if st, ok := state[n]; named[n] || !ok || !skip(st) {
			out = append(out, n)
		}
	}
	return out
}

// NotFound words a spec that matched nothing as supervisorctl does (status, whose
// answer lists such specs apart, words them so too).
func NotFound(spec string) string { return notFound(spec) }

// notFound words a spec that matched nothing as supervisorctl does.
func notFound(spec string) string {
	if strings.HasSuffix(spec, ":*") {
		return "no such group"
	}
	return "no such process"
}

// answer reports each process's state after an action, with its own error from err (an
// errors.Join of *engine.ProcessError). Any error makes the answer a 409 whose message
// joins them all, so a client that reads only the status still sees the failure.
func (s *Server) answer(w http.ResponseWriter, names []string, unknown []Result, err error) {
	s.answerStopped(w, names, unknown, err, nil, nil)
}

// groupsOf maps each of names to its group, as the status lists them now.
func (s *Server) groupsOf(names []string) map[string]string {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]string{}
	for _, st := range s.b.States() {
		if want[st.Name] {
			out[st.Name] = st.Group
		}
	}
	return out
}

// answerStopped is answer marking the results of the processes in stopped Stopped;
// groups names the groups of those the status no longer lists (removed meanwhile).
func (s *Server) answerStopped(w http.ResponseWriter, names []string, unknown []Result, err error, stopped map[string]bool, groups map[string]string) {
	perProc := map[string]string{}
	for _, pe := range engine.ProcessErrors(err) {
		perProc[pe.Name] = pe.Err.Error() + s.movedNote(pe.Err.Error())
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var res ActionResponse
	res.Results = append(res.Results, unknown...)
	for _, st := range s.b.States() {
		if want[st.Name] {
			res.Results = append(res.Results, Result{Name: st.Name, Group: st.Group, State: st.State.String(), Error: perProc[st.Name], Stopped: stopped[st.Name]})
			delete(perProc, st.Name)
		}
	}
	// Errors for names the status no longer lists (removed meanwhile) still get a line.
	for _, n := range names {
		if msg, ok := perProc[n]; ok {
			res.Results = append(res.Results, Result{Name: n, Group: groups[n], Error: msg, Stopped: stopped[n]})
		}
	}
	var msgs []string
	for _, r := range res.Results {
		if r.Error != "" {
			msgs = append(msgs, r.Name+": "+r.Error)
		}
	}
	if err != nil && len(engine.ProcessErrors(err)) == 0 {
		msgs = append(msgs, err.Error()) // not about one process (the daemon is shutting down)
	}
	if len(msgs) > 0 {
		writeJSON(w, http.StatusConflict, struct {
			ActionResponse
			ErrorResponse
		}{res, ErrorResponse{Error: strings.Join(msgs, "; ")}})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// statuses appends in, as the API words it, to out.
func statuses(out []ProgramStatus, in []engine.Status, now time.Time) []ProgramStatus {
	for _, st := range in {
		ps := ProgramStatus{
			Name: st.Name, Group: st.Group, State: st.State.String(), Ready: st.Ready, Pid: st.Pid,
			ExitCode: st.ExitCode, Restarts: st.Restarts, LastRestart: st.LastRestart, SpawnFailed: st.SpawnFailed, Description: st.Description, Blocked: st.Blocked,
			Resuming:   st.Resuming || st.Queued,
			CPUPercent: st.Usage.CPUPercent, RSSBytes: st.Usage.RSSBytes,
			TreeCPU: st.Usage.TreeCPUPercent, TreeRSS: st.Usage.TreeRSSBytes, Hash: st.Hash,
		}
		if st.Pid > 0 && !st.Started.IsZero() { // as the description's "uptime"
			ps.UptimeS = now.Sub(st.Started).Seconds()
		}
		ps.LastRestartReason, ps.LastRestartAt, ps.Since = st.RestartWhy, stamp(st.RestartAt), stamp(st.Since)
		ps.LastWords, ps.LastWordsLog, ps.LastWordsAt = st.LastWords, st.LastWordsLog, stamp(st.LastWordsAt)
		ps.LogError = st.LogError
		out = append(out, ps)
	}
	return out
}

// stamp writes t for status --json: RFC 3339 in UTC to the millisecond; "" for none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			// In the request's words, not Go's ("Go struct field ActionRequest.names").
			err = fmt.Errorf("%s: want %s, got a JSON %s", te.Field, jsonKind(te.Type), te.Value)
		}
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %w", err))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, errors.New("bad request body: trailing data"))
		return false
	}
	http.NewResponseController(w).SetReadDeadline(time.Time{}) // read: the answer may take minutes
	return true
}

// jsonKind names what a Go type takes in JSON.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list of " + strings.TrimPrefix(jsonKind(t.Elem()), "a ") + "s"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "an object"
	}
	return "a number"
}

// writeJSON answers with v and its length: a body of unknown length goes out chunked,
// which the client then has to reassemble. HTML escaping is off (this is no web page), so
// names and descriptions stay readable and on the client's fast decode path.
func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	writeBody(w, code, buf.Bytes())
}

// writeBody answers with a JSON body of known length.
func writeBody(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, ErrorResponse{Error: err.Error()})
}

func queryInt(r *http.Request, key string, def int) int {
	if v, err := strconv.Atoi(r.URL.Query().Get(key)); err == nil {
		return v
	}
	return def
}
