package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/plan"
)

// fakeBackend records calls; its processes are all RUNNING with pid 100+index.
type fakeBackend struct {
	mu      sync.Mutex
	p       *plan.Plan
	calls   []string
	stopped bool
	queued  map[string]bool   // STOPPED, a start of it queued (waiting for a dependency)
	logErr  map[string]string // a log error, as status says it after "; log: "
	watched int               // Status calls: with figures, counted as someone watching
}

func (f *fakeBackend) States() []engine.Status { return f.states() }
func (f *fakeBackend) Status() []engine.Status {
	f.mu.Lock()
	f.watched++
	f.mu.Unlock()
	return f.states()
}

func (f *fakeBackend) states() []engine.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []engine.Status
	for i, pr := range f.p.Programs {
		st := engine.Status{Name: pr.ProcessName, Group: pr.Group, State: engine.Running,
			Pid: 100 + i, Since: time.Now().Add(-time.Minute), Started: time.Now().Add(-time.Minute), Hash: pr.Hash}
		if f.queued[pr.ProcessName] {
			st.State, st.Pid, st.Queued = engine.Stopped, 0, true
		}
		if e := f.logErr[pr.ProcessName]; e != "" {
			st.LogError = e
			st.Description += "; log: " + e
		}
		out = append(out, st)
	}
	return out
}
func (f *fakeBackend) Plan() *plan.Plan {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.p
}

// setPlan swaps the plan as an apply would.
func (f *fakeBackend) setPlan(p *plan.Plan) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.p = p
}
func (f *fakeBackend) record(verb string, names []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, verb+" "+strings.Join(names, ","))
}
func (f *fakeBackend) Start(_ context.Context, n ...string) error { f.record("start", n); return nil }
func (f *fakeBackend) Stop(_ context.Context, n ...string) error  { f.record("stop", n); return nil }
func (f *fakeBackend) Restart(_ context.Context, n ...string) error {
	f.record("restart", n)
	return nil
}
func (f *fakeBackend) Signal(_ context.Context, s syscall.Signal, n ...string) error {
	f.record("signal "+s.String(), n)
	return nil
}
func (f *fakeBackend) Apply(_ context.Context, p *plan.Plan) (plan.Delta, error) {
	d := plan.Diff(f.p, p)
	f.p = p
	return d, nil
}
func (f *fakeBackend) Shutdown(context.Context) error { f.stopped = true; return nil }
func (f *fakeBackend) ShuttingDown() bool             { return f.stopped }

func testPlan(t testing.TB, dir string, names ...string) *plan.Plan {
	t.Helper()
	p := &plan.Plan{Format: plan.Format, Entry: "deploy.star", Root: dir, Supervisor: plan.Supervisor{
		Socket: filepath.Join(dir, "s.sock"), Pidfile: filepath.Join(dir, "pid"),
		LogDir: dir, StateDir: dir}}
	for _, n := range names {
		pr := plan.Defaults()
		pr.Name, pr.ProcessName, pr.Command = n, n, []string{"/bin/true"}
		pr.Stdout = plan.DefaultLog(filepath.Join(dir, n+".log"))
		p.Programs = append(p.Programs, pr)
	}
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	return p
}

// serve starts a server on a fresh short socket path and returns a client for it.
func serve(t testing.TB, b Backend, configure ...func(*Server)) (*Client, *Server, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c, s := serveAt(t, filepath.Join(dir, "run", "s.sock"), b, configure...)
	return c, s, dir
}

// serveAt serves b on the socket sock.
func serveAt(t testing.TB, sock string, b Backend, configure ...func(*Server)) (*Client, *Server) {
	t.Helper()
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(b, t.Logf)
	for _, f := range configure {
		f(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	return NewClient(sock), s
}

func TestSocketModeAndSecondListener(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a")
	c, _, dir := serve(t, fb)
	st, err := os.Stat(c.Socket)
	is.NoErr(err)
	is.Equal(st.Mode().Perm(), os.FileMode(0o600)) // socket is owner-only
	dst, err := os.Stat(filepath.Join(dir, "run"))
	is.NoErr(err)
	is.Equal(dst.Mode().Perm(), os.FileMode(0o700)) // and so is its folder
	_, err = Listen(c.Socket)
	is.True(err != nil && strings.Contains(err.Error(), "already running")) // a live socket is never taken over
}

// Listen takes over a stale socket but never removes anything else at its path (a file
// the script named by mistake, the script itself).
func TestListenLeavesAFileAlone(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "data.db")
	is.NoErr(os.WriteFile(path, []byte("precious"), 0o644))
	_, err := Listen(path)
	is.True(err != nil && strings.Contains(err.Error(), "is not a socket"))
	b, err := os.ReadFile(path)
	is.NoErr(err)
	is.Equal(string(b), "precious")

	stale := filepath.Join(t.TempDir(), "s.sock")
	l, err := Listen(stale)
	is.NoErr(err)
	l.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	l.Close() // leaves the socket file, as a killed daemon does
	l, err = Listen(stale)
	is.NoErr(err)
	l.Close()
}

// A socket path longer than a unix socket address holds (a bundle in a deep folder)
// still works, through a descriptor of its folder.
func TestLongSocketPath(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a")
	sock := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60), "run", "starvisor.sock")
	is.True(len(sock) > maxSunPath)
	c, _ := serveAt(t, sock, fb)
	st, err := c.Status(context.Background())
	is.NoErr(err)
	is.Equal(st.Programs[0].Name, "a")
	fi, err := os.Stat(sock)
	is.NoErr(err)
	is.Equal(fi.Mode()&os.ModeSocket, os.ModeSocket) // the socket is where it was asked
	_, err = Listen(sock)
	is.True(err != nil && strings.Contains(err.Error(), "already running"))
}

func TestStatusAndActions(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "web", "db")
	fb.p.Programs[0].Group = "svc"
	fb.p.Programs[1].Group = "svc"
	c, _, _ := serve(t, fb)
	ctx := context.Background()

	st, err := c.Status(ctx)
	is.NoErr(err)
	is.Equal(len(st.Programs), 2)
	is.Equal(st.Programs[0].State, "RUNNING")
	is.True(st.Programs[0].UptimeS >= 59)

	r, err := c.Action(ctx, "stop", []string{"svc:*"})
	is.NoErr(err)
	is.Equal(len(r.Results), 2)
	_, err = c.Action(ctx, "restart", []string{"web", "all"})
	is.NoErr(err)
	_, err = c.Signal(ctx, "usr1", []string{"db"})
	is.NoErr(err)
	is.Equal(fb.calls, []string{"stop db,web", "restart db,web", "signal user defined signal 1 db"})

	_, err = c.Action(ctx, "start", []string{"nope"})
	is.True(err != nil && strings.Contains(err.Error(), "no such process")) // unknown names are refused
	_, err = c.Signal(ctx, "BOGUS", []string{"db"})
	is.True(err != nil && strings.Contains(err.Error(), "bad signal name"))
	is.Equal(len(fb.calls), 3) // refused requests touch nothing

	pid, err := c.Pid(ctx, "")
	is.NoErr(err)
	is.Equal(pid, os.Getpid())
	pid, err = c.Pid(ctx, "web")
	is.NoErr(err)
	is.True(pid >= 100)
}

func TestApplyDryRunChangesNothing(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	fb := &fakeBackend{}
	fb.p = testPlan(t, dir, "a", "b")
	c, _, _ := serve(t, fb)
	next := testPlan(t, dir, "a", "c")
	r, err := c.Apply(context.Background(), next, true)
	is.NoErr(err)
	d := r.Delta
	is.Equal(d.Added, []string{"c"})
	is.Equal(d.Removed, []string{"b"})
	is.Equal(len(fb.p.Programs), 2)
	is.Equal(fb.p.Programs[1].Name, "b") // dry run left the running plan alone
	r, err = c.Apply(context.Background(), next, false)
	is.NoErr(err)
	is.Equal(r.Delta.Unchanged, []string{"a"})
	is.Equal(fb.p.Programs[1].Name, "c")
}

// An apply whose plan the daemon could not record (a full state folder) says so to who
// applied: only the daemon's log said it.
func TestApplySaysTheStateCannotBeRecorded(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	fb := &fakeBackend{}
	fb.p = testPlan(t, dir, "a")
	c, _, _ := serve(t, fb, func(s *Server) {
		s.StateError = func() string { return "plan.json: no space left on device" }
	})
	r, err := c.Apply(context.Background(), testPlan(t, dir, "a", "b"), false)
	is.NoErr(err)
	is.Equal(r.StateError, "plan.json: no space left on device")
}

// A query the handlers would misread is refused: one that does not parse was read as no
// name, and /v1/pid?name=a;b answered the daemon's own pid, which a script then killed.
func TestBadQueriesRefused(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a")
	c, _, _ := serve(t, fb)
	get := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://starvisor"+path, nil)
		resp, err := c.hc.Do(req)
		is.NoErr(err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for path, want := range map[string]string{
		"/v1/pid?name=a;b":          "escape ';' as %3B",
		"/v1/pid?name=c%d":          "bad query",
		"/v1/pid?name=":             "an empty name selects nothing",
		"/v1/status?name=":          "an empty name selects nothing",
		"/v1/logs?name=a&n=-1":      "n=-1: want a number of lines",
		"/v1/logs?name=a&n=abc":     "n=abc",
		"/v1/logs?name=a&stream=fo": "stream=fo: want stdout or stderr",
		"/v1/logs?name=a&follow=2":  "follow=2: want 1 or 0",
		"/v1/logs":                  "no names given", // a bad request here too (it was 404)
		"/v1/pid?name=a&name=b":     "pid takes one name, got 2",
		"/v1/logs?name=a&n=1&n=2":   "n given 2 times",
	} {
		code, body := get(path)
		is.Equal(code, 400)                   // path
		is.True(strings.Contains(body, want)) // path
	}
	code, body := get("/v1/pid?name=a")
	is.Equal(code, 200) // body
	is.True(strings.Contains(body, `"pid"`))
	// An unknown name asked many times is answered once.
	st, err := c.Status(t.Context(), "nope", "nope", "nope", "a")
	is.NoErr(err)
	is.Equal(st.Unknown, []string{"nope"})
}

func TestBadBodiesRefused(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a")
	c, _, _ := serve(t, fb)
	post := func(path, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://starvisor"+path, strings.NewReader(body))
		resp, err := c.hc.Do(req)
		is.NoErr(err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post("/v1/start", `{"names":["a"],"bogus":1}`)
	is.Equal(code, 400)
	is.True(strings.Contains(body, "unknown field"))
	// A wrong type in the request's words, not Go's ("Go struct field ActionRequest.names").
	code, body = post("/v1/start", `{"names":"a"}`)
	is.Equal(code, 400)
	is.True(strings.Contains(body, `bad request body: names: want a list of strings, got a JSON string`)) // body
	is.True(!strings.Contains(body, "Go struct"))
	code, _ = post("/v1/start", `{"names":["a"]} {"names":["a"]}`)
	is.Equal(code, 400)
	code, _ = post("/v1/apply", `{"plan":{"format":1,"programs":[{"name":""}]}}`)
	is.Equal(code, 400)
	code, body = post("/v1/apply", `{"plan":"`+strings.Repeat("x", MaxBody)+`"}`)
	is.Equal(code, 400)
	is.True(strings.Contains(body, "too large"))
	// A request naming nothing is a bad one (it was 404), and a plan without a root is
	// said as such (compared with the running bundle, it read "another bundle than  ").
	code, body = post("/v1/stop", `{}`)
	is.Equal(code, 400)
	is.True(strings.Contains(body, `"error":"no names given"`))
	code, body = post("/v1/apply", `{"plan":{},"dry_run":true}`)
	is.Equal(code, 400)
	is.True(strings.Contains(body, `the plan has no \"root\"`))
	is.Equal(len(fb.calls), 0)
}

// Every answer is an ErrorResponse, a request for no route too: net/http's plain text
// "404 page not found" and "Method Not Allowed" broke clients decoding the JSON the
// API documents.
func TestWrongRoutesAnswerJSON(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a")
	c, _, _ := serve(t, fb)
	do := func(method, path string) (*http.Response, ErrorResponse) {
		req, _ := http.NewRequest(method, "http://starvisor"+path, nil)
		resp, err := c.hc.Do(req)
		is.NoErr(err)
		defer resp.Body.Close()
		var e ErrorResponse
		is.NoErr(json.NewDecoder(resp.Body).Decode(&e))
		return resp, e
	}
	resp, e := do(http.MethodGet, "/v1/bogus")
	is.Equal(resp.StatusCode, 404)
	is.True(strings.HasPrefix(e.Error, "GET /v1/bogus: no such route (the API's: GET /v1/status, "))
	resp, e = do(http.MethodGet, "/v1/start")
	is.Equal(resp.StatusCode, 405)
	is.Equal(resp.Header.Get("Allow"), "POST")
	is.Equal(e.Error, "GET /v1/start: this route takes POST")
	resp, _ = do(http.MethodGet, "/v1/status") // the routes themselves still answer
	is.Equal(resp.StatusCode, 200)
	// A path to clean is no route: the mux answered a 301 in HTML, which a client
	// followed as a GET, a POST's body dropped.
	for _, p := range []string{"/v1//status", "/v1/./stop", "/v1/x/../status", "/v1/status/"} {
		resp, e = do(http.MethodPost, p)
		is.Equal(resp.StatusCode, 404)
		is.True(strings.HasPrefix(e.Error, "POST "+p+": no such route"))
	}
}

func TestShutdownSignalsDaemon(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a")
	c, s, _ := serve(t, fb)
	is.NoErr(c.Shutdown(context.Background()))
	is.True(fb.stopped)
	select {
	case <-s.ShutdownRequested():
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown request not signalled")
	}
}

// Requests that may start or stop many processes are bracketed by Burst; reads and
// refused requests are not, and a shutdown's burst never ends.
func TestBurstBracketsBulkRequests(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	fb := &fakeBackend{}
	fb.p = testPlan(t, dir, "web", "db")
	c, _, _ := serve(t, fb, func(s *Server) {
		s.Burst = func() func() {
			fb.record("burst", nil)
			return func() { fb.record("done", nil) }
		}
	})
	ctx := context.Background()
	_, err := c.Action(ctx, "stop", []string{"all"})
	is.NoErr(err)
	_, err = c.Status(ctx)
	is.NoErr(err)
	_, err = c.Signal(ctx, "usr1", []string{"db"})
	is.NoErr(err)
	_, err = c.Action(ctx, "start", []string{"nope"})
	is.True(err != nil)
	_, err = c.Apply(ctx, testPlan(t, dir, "web"), false)
	is.NoErr(err)
	is.NoErr(c.Shutdown(ctx))
	is.Equal(fb.calls, []string{"burst ", "stop db,web", "done ", "signal user defined signal 1 db",
		"burst ", "done ", "burst "})
}

func TestUnreachable(t *testing.T) {
	is := is.New(t)
	c := NewClient(filepath.Join(t.TempDir(), "none.sock"))
	_, err := c.Status(context.Background())
	is.True(errors.Is(err, ErrUnreachable))
}

// A socket another user's daemon serves, which this user may not connect to: said as
// that, with whose it is, not "permission denied" (which sent people to chmod things).
// The connect's EACCES is made up here: root connects anywhere.
func TestUnreachableForeignSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	is := is.New(t)
	dir := filepath.Join(t.TempDir(), "run")
	is.NoErr(os.Mkdir(dir, 0o700))
	sock := filepath.Join(dir, "starvisor.sock")
	is.NoErr(os.WriteFile(sock, nil, 0o600))
	is.NoErr(os.Chown(sock, 65534, 65534))
	denied := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}
	err := unreachable(sock, denied)
	f, ok := errors.AsType[*ForeignDaemonError](err)
	is.True(ok)
	is.Equal(f.UID, 65534)
	is.True(errors.Is(err, ErrUnreachable)) // exit 3, as any daemon out of reach
	is.True(strings.Contains(err.Error(), "its daemon runs as "))
	is.True(strings.Contains(err.Error(), "uid 65534), not you (uid 0)"))
	is.True(strings.Contains(err.Error(), "or it ran so and left its socket's folder behind, which no one but that user can look into: then `rm -r "+dir+"`, as that user or root, removes it")) // a root run's run/ left: no daemon

	// This user's own socket refusing is not another user's daemon.
	is.NoErr(os.Chown(sock, 0, 0))
	_, ok = errors.AsType[*ForeignDaemonError](unreachable(sock, denied))
	is.True(!ok)
}

func TestPeerCheck(t *testing.T) {
	is := is.New(t)
	is.True(checkPeer(context.Background()) != nil) // no credentials: refused
	me := context.WithValue(context.Background(), peerKey{}, peer{cred: &syscall.Ucred{Uid: uint32(os.Getuid())}})
	is.NoErr(checkPeer(me))
	other := context.WithValue(context.Background(), peerKey{}, peer{cred: &syscall.Ucred{Uid: uint32(os.Getuid()) + 4242}})
	err := checkPeer(other)
	is.True(err != nil && strings.Contains(err.Error(), "permission denied"))
}

func TestLogsTailAndFollowAcrossRotation(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	fb := &fakeBackend{}
	fb.p = testPlan(t, dir, "a")
	logPath := fb.p.Programs[0].Stdout.Path
	var sb strings.Builder
	for i := 1; i <= 20; i++ {
		sb.WriteString("line " + strconv.Itoa(i) + "\n")
	}
	is.NoErr(os.WriteFile(logPath, []byte(sb.String()), 0o644))
	c, _, _ := serve(t, fb)

	is.Equal(tail(t, c, []string{"a"}, 3), "line 18\nline 19\nline 20\n")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := c.Logs(ctx, []string{"a"}, Stdout, true, 1)
	is.NoErr(err)
	defer rc.Close()
	r := bufio.NewReader(rc)
	next := func() string { l, err := r.ReadString('\n'); is.NoErr(err); return l }
	is.Equal(next(), "line 20\n")
	appendTo(t, logPath, "line 21\n")
	is.Equal(next(), "line 21\n")
	// rotate as the log writer does: the old file moves to .1, a new one takes its name;
	// a line written to the old file just before the rename must not be lost.
	appendTo(t, logPath, "line 22\n")
	is.NoErr(os.Rename(logPath, logPath+".1"))
	appendTo(t, logPath, "line 23\n")
	is.Equal(next(), "line 22\n")
	is.Equal(next(), "line 23\n")

	_, err = c.Logs(context.Background(), []string{"a"}, Stderr, false, 1)
	is.True(err != nil && strings.Contains(err.Error(), "no log file"))
}

func appendTo(t *testing.T, path, s string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// failingBackend's Start fails per process, as the engine does.
type failingBackend struct{ fakeBackend }

func (f *failingBackend) Start(_ context.Context, n ...string) error {
	f.record("start", n)
	return errors.Join(&engine.ProcessError{Name: "web", Err: engine.ErrAlreadyStarted},
		&engine.ProcessError{Name: "db", Err: fmt.Errorf("%w: Exited too quickly", engine.ErrSpawn)})
}

// Of a group or all, start leaves out the running processes and stop the stopped ones,
// without a word (supervisorctl's make_allfunc filters them); named ones are acted on.
func TestGroupActionsSkipWhatIsAlreadySo(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "web", "db")
	c, _, _ := serve(t, fb)
	r, err := c.Action(context.Background(), "start", []string{"all"})
	is.NoErr(err)
	is.Equal(len(r.Results), 0) // both RUNNING
	_, err = c.Action(context.Background(), "start", []string{"web"})
	is.NoErr(err)
	is.Equal(fb.calls, []string{"start web"})

	// A stopped process whose start is queued is stopped too: the stop cancels it; and
	// not started again by a start all: its start is on its way (it answered "already
	// started" once its dependency got ready meanwhile).
	fb.queued = map[string]bool{"db": true}
	r, err = c.Action(context.Background(), "start", []string{"all"})
	is.NoErr(err)
	is.Equal(len(r.Results), 0)
	_, err = c.Action(context.Background(), "stop", []string{"all"})
	is.NoErr(err)
	is.Equal(fb.calls, []string{"start web", "stop db,web"})
}

func TestActionResultsCarryEachProcessError(t *testing.T) {
	is := is.New(t)
	fb := &failingBackend{}
	fb.p = testPlan(t, t.TempDir(), "web", "db", "ok")
	c, _, _ := serve(t, fb)
	r, err := c.Action(context.Background(), "start", []string{"web", "db", "ok", "nosuch"})
	var ae *ActionError
	is.True(errors.As(err, &ae)) // any failure is a 409 with the results
	is.Equal(r.Results, ae.Results)
	byName := map[string]Result{}
	for _, res := range r.Results {
		byName[res.Name] = res
	}
	is.Equal(byName["nosuch"].Error, "no such process") // unknown names reported, the rest acted on
	is.Equal(byName["web"].Error, "already started")
	is.Equal(byName["db"].Error, "spawn error: Exited too quickly")
	is.Equal(byName["ok"].Error, "")
	is.Equal(byName["ok"].State, "RUNNING")
	is.Equal(fb.calls, []string{"start db,ok,web"})

	st, err := c.Status(context.Background(), "web", "nosuch")
	is.NoErr(err)
	is.Equal(len(st.Programs), 1)
	is.Equal(st.Unknown, []string{"nosuch"})
}

// A start that finds a process it asked for while STOPPED already started (the daemon's
// own start of a dependent won the race) reports it started, not "already started".
func TestStartOfOneStartedMeanwhileSucceeds(t *testing.T) {
	is := is.New(t)
	fb := &failingBackend{}
	fb.p = testPlan(t, t.TempDir(), "web", "db")
	fb.queued = map[string]bool{"web": true} // STOPPED when asked
	c, _, _ := serve(t, fb)
	_, err := c.Action(context.Background(), "start", []string{"web", "db"})
	var ae *ActionError
	is.True(errors.As(err, &ae)) // db's failure stays
	byName := map[string]Result{}
	for _, res := range ae.Results {
		byName[res.Name] = res
	}
	is.Equal(byName["web"].Error, "")
	is.Equal(byName["db"].Error, "spawn error: Exited too quickly")
}

func TestApplyRecomputesOrderAndHashes(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	fb := &fakeBackend{}
	fb.p = testPlan(t, dir, "a")
	c, _, _ := serve(t, fb)
	next := testPlan(t, dir, "a", "b")
	want := next.Programs[0].Hash
	// a client that sends programs out of start order with forged hashes
	next.Programs[0], next.Programs[1] = next.Programs[1], next.Programs[0]
	next.Programs[0].Hash, next.Programs[1].Hash = "sha256:forged", ""
	_, err := c.Apply(context.Background(), next, false)
	is.NoErr(err)
	is.Equal(fb.p.Programs[0].Name, "a")  // start order restored
	is.Equal(fb.p.Programs[0].Hash, want) // hash recomputed
}

// An applied plan keeps the daemon's own supervisor() settings; the answer notes the
// ones it had otherwise.
func TestApplyKeepsTheDaemonsSettings(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	fb := &fakeBackend{p: testPlan(t, dir, "a")}
	running := fb.p.Supervisor
	c, _ := serveAt(t, filepath.Join(t.TempDir(), "s.sock"), fb, func(s *Server) { s.Settings = &running })
	next := testPlan(t, dir, "a")
	next.Supervisor.StateDir = filepath.Join(dir, "elsewhere")
	r, err := c.Apply(context.Background(), next, false)
	is.NoErr(err)
	is.Equal(len(r.Notes), 1)
	is.True(strings.Contains(r.Notes[0], "state_dir "+next.Supervisor.StateDir+" (running: "+running.StateDir+")"))
	is.Equal(fb.p.Supervisor, running) // the plan the daemon holds says what it runs with
	r, err = c.Apply(context.Background(), testPlan(t, dir, "a"), true)
	is.NoErr(err)
	is.Equal(len(r.Notes), 0) // the same settings: nothing to say
}

// A daemon that goes away mid-answer is "lost the connection", not a refused dial: the
// user learns it was there and left.
func TestClientLostConnection(t *testing.T) {
	is := is.New(t)
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	is.NoErr(err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close() // answers nothing
		}
	}()
	_, err = NewClient(sock).Status(t.Context())
	is.True(errors.Is(err, ErrUnreachable))
	is.True(strings.Contains(err.Error(), "lost the connection"))
}

// net/http's own messages reach the daemon's log in its words, a repeated one once a
// minute with a count (out of descriptors, the accept loop said it 200 times a second).
func TestQuietLogFoldsRepeats(t *testing.T) {
	is := is.New(t)
	var got []string
	q := &quietLog{logf: func(f string, a ...any) { got = append(got, fmt.Sprintf(f, a...)) }}
	for _, d := range []string{"5ms", "10ms", "20ms"} {
		fmt.Fprintf(q, "http: Accept error: accept4: too many open files; retrying in %s\n", d)
	}
	q.at = q.at.Add(-2 * time.Minute)
	fmt.Fprintf(q, "http: Accept error: accept4: too many open files; retrying in 5ms\n")
	is.Equal(got, []string{
		"api: http: Accept error: accept4: too many open files; retrying in 5ms",
		"api: the last message came 2 more times",
		"api: http: Accept error: accept4: too many open files; retrying in 5ms",
	})
}

// A connection that never finishes its request is closed after ConnTimeout: held open,
// thousands took every descriptor of the daemon.
func TestHalfRequestIsLetGo(t *testing.T) {
	_, _, dir := serve(t, &fakeBackend{}, func(s *Server) { s.ConnTimeout = 50 * time.Millisecond })
	conn, err := net.Dial("unix", filepath.Join(dir, "run", "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /v1/status HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // the test's bound, far past the timeout
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("still open: %v", err)
	}
}

// A request whose body stalls is let go after ConnTimeout too.
func TestStalledBodyIsLetGo(t *testing.T) {
	_, _, dir := serve(t, &fakeBackend{}, func(s *Server) { s.ConnTimeout = 50 * time.Millisecond })
	conn, err := net.Dial("unix", filepath.Join(dir, "run", "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /v1/stop HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"names\":")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // the test's bound, far past the timeout
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("still open: %v", err)
	}
	if !strings.Contains(string(b), "400 Bad Request") {
		t.Errorf("answer %q", b)
	}
}

// Every status answer says when the daemon cannot record its processes (StateError), by
// name or not, and nothing once it can again.
func TestStatusSaysStateError(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "web")
	var failing atomic.Pointer[string]
	c, _, _ := serve(t, fb, func(s *Server) {
		s.StateError = func() string {
			if p := failing.Load(); p != nil {
				return *p
			}
			return ""
		}
	})
	msg := "state file run/state.json: no space left on device"
	failing.Store(&msg)
	st, err := c.Status(t.Context())
	is.NoErr(err)
	is.Equal(st.StateError, msg)
	st, err = c.Status(t.Context(), "web")
	is.NoErr(err)
	is.Equal(st.StateError, msg)
	failing.Store(nil)
	st, err = c.Status(t.Context())
	is.NoErr(err)
	is.Equal(st.StateError, "")
}

// removingBackend's restart meets an apply that removes the process it restarts.
type removingBackend struct {
	fakeBackend
	next *plan.Plan
}

func (f *removingBackend) Restart(_ context.Context, n ...string) error {
	f.mu.Lock()
	f.p = f.next
	f.mu.Unlock()
	return &engine.ProcessError{Name: "web", Err: engine.ErrRemoved}
}

// A restart of a process an apply removed meanwhile says it stopped it, and why its
// start failed: no "web: stopped" line, and "abnormal termination".
func TestRestartOfOneRemovedMeanwhile(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	fb := &removingBackend{next: testPlan(t, dir, "db")}
	fb.p = testPlan(t, dir, "web", "db")
	for i := range fb.p.Programs {
		if fb.p.Programs[i].Name == "web" {
			fb.p.Programs[i].Group = "front" // said as front:web, as before the apply
		}
	}
	c, _, _ := serve(t, fb)
	_, err := c.Action(context.Background(), "restart", []string{"web"})
	var ae *ActionError
	is.True(errors.As(err, &ae))
	is.Equal(len(ae.Results), 1)
	is.Equal(ae.Results[0].Name, "web")
	is.Equal(ae.Results[0].Group, "front")
	is.True(ae.Results[0].Stopped)
	is.Equal(ae.Results[0].Error, "no such process: an apply removed it")
}

// The note on a job run first names every restarted program that waits for it: one
// named read as only that one waiting, the others restarted at once.
func TestDownUntilDepsNamesEveryDependent(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	old := testPlan(t, dir, "migrate", "beat", "web", "worker", "other")
	next := testPlan(t, dir, "migrate", "beat", "web", "worker", "other")
	for i := range next.Programs {
		pr := &next.Programs[i]
		switch pr.Name {
		case "migrate":
			pr.Ready = &plan.Probe{Kind: plan.ProbeExited}
			pr.Command = []string{"/bin/true", "v2"}
		case "other":
			pr.Command = []string{"/bin/true", "v2"} // restarted, waits for nothing
		default:
			pr.DependsOn = []string{"migrate"}
			pr.Command = []string{"/bin/true", "v2"}
		}
	}
	old.Programs[0].Ready = &plan.Probe{Kind: plan.ProbeExited}
	is.NoErr(next.Finish())
	is.Equal(downUntilDeps(next, plan.Diff(old, next)), []string{
		"beat, web, worker depend on the job migrate: the job runs first, and they restart once it is done (should it fail, nothing else is applied)"})
}

// The daemon's log says what a client's apply changed, and who asked: its restarts read
// "stop requested", as a stop by hand.
func TestAppliedLine(t *testing.T) {
	is := is.New(t)
	var many []plan.Change
	for i := range 12 {
		many = append(many, plan.Change{Name: fmt.Sprintf("w%d", i), Fields: []string{"env"}})
	}
	is.Equal(appliedLine(plan.Delta{Added: []string{"a"}, Changed: many, Removed: []string{"old"}}, 42),
		"apply: 1 added, 12 changed, 1 removed, 0 updated without a restart; + a; ~ w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, and 2 more (env); - old (asked by pid 42)")
}

// The daemon serves at most MaxConns connections at once; the next waits until one
// closes: forty logs -f clients that never read took its descriptors, and a crashed
// program could not be spawned again.
func TestConnectionsAreBounded(t *testing.T) {
	is := is.New(t)
	old := MaxConns
	MaxConns = 2
	t.Cleanup(func() { MaxConns = old })
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a")
	c, _, _ := serve(t, fb)
	var held []net.Conn
	for range 2 {
		conn, err := Dial(t.Context(), c.Socket)
		is.NoErr(err)
		held = append(held, conn)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Status(ctx)
	is.True(err != nil) // waits in the backlog: both slots are taken
	held[0].Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err = c.Status(t.Context()); err == nil || time.Now().After(deadline) {
			break
		}
	}
	is.NoErr(err) // a slot came free
	held[1].Close()
}

// A status without figures (usage=0: ls, the clients' waits) is not counted as someone
// watching: each ls made every daemon of the user scan /proc for a minute.
func TestStatesAreNotWatching(t *testing.T) {
	is := is.New(t)
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a")
	c, _, _ := serve(t, fb)
	st, err := c.States(t.Context())
	is.NoErr(err)
	is.Equal(len(st.Programs), 1)
	is.Equal(fb.watched, 0)
	_, err = c.Status(t.Context())
	is.NoErr(err)
	is.Equal(fb.watched, 1)
}
