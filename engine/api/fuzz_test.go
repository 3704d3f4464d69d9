package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/plan"
)

// postPaths are every POST endpoint of the control API.
var postPaths = []string{"/v1/start", "/v1/stop", "/v1/restart", "/v1/signal", "/v1/apply", "/v1/shutdown"}

// FuzzRequestBodies posts arbitrary bodies to every POST endpoint through the server's
// ServeHTTP, with the caller's credentials set as a unix socket connection would set them.
// No body may make the server panic (ServeHTTP turns a panic into a 500, so any 5xx fails)
// or answer anything but a JSON object.
//
//	go test -run '^$' -fuzz FuzzRequestBodies -fuzztime 5m ./engine/api
func FuzzRequestBodies(f *testing.F) {
	good := fuzzPlan(f)
	goodPlan, err := json.Marshal(ApplyRequest{Plan: good})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		`{"names":["web"]}`, `{"names":["all"]}`, `{"names":["workers:*"]}`, `{"names":["workers:w_1"]}`,
		`{"names":["web"],"signal":"HUP"}`, `{"names":["web"],"signal":"SIGKILL"}`, `{"names":["web"],"signal":"9"}`,
		`{"names":["nope"]}`, `{"names":[]}`, `{"names":null}`, `{"names":[""]}`, `{"names":[":*"]}`,
		`{"names":["web"],"signal":""}`, `{"names":["web"],"signal":"-1"}`, `{"names":["web"],"signal":"99999999999999999999"}`,
		`{}`, `null`, `[]`, ``, `{"names":["web"]}x`, `{"bogus":1}`, `{"names":"web"}`,
		`{"plan":null}`, `{"plan":{}}`, `{"plan":{"format":1,"programs":[{}]}}`, `{"plan":{"format":1,"programs":[null]}}`,
		`{"plan":{"format":1,"programs":[{"name":"a","process_name":"a","command":["/bin/true"],"numprocs":1,"autorestart":"true","stop_signal":"TERM","exit_codes":[0]}]},"dry_run":true}`,
		`{"plan":{"format":1,"groups":[{"name":"g","programs":["a","a"]}]}}`,
	} {
		for i := range postPaths {
			f.Add(uint8(i), []byte(s))
		}
	}
	var dry ApplyRequest
	_ = json.Unmarshal(goodPlan, &dry)
	dry.DryRun = true
	dryPlan, _ := json.Marshal(dry)
	f.Add(uint8(4), goodPlan)
	f.Add(uint8(4), dryPlan)

	// The credentials withPeer would read from a unix socket: this process's own uid.
	ctx := context.WithValue(context.Background(), peerKey{}, peer{cred: &syscall.Ucred{
		Pid: int32(os.Getpid()), Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}})

	f.Fuzz(func(t *testing.T, endpoint uint8, body []byte) {
		path := postPaths[int(endpoint)%len(postPaths)]
		fb := &fuzzBackend{p: fuzzPlan(t)}
		var panics []string
		var mu sync.Mutex
		s := NewServer(fb, func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			if strings.Contains(format, "panic") {
				panics = append(panics, format)
			}
		})
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "http://starvisor"+path, bytes.NewReader(body))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if len(panics) > 0 || w.Code >= 500 || w.Code < 200 {
			t.Fatalf("POST %s %q: status %d, panics %v, body %s", path, body, w.Code, panics, w.Body)
		}
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("POST %s %q: status %d, answer is not a JSON object: %v: %q", path, body, w.Code, err, w.Body)
		}
		if w.Code >= 400 {
			if msg, _ := out["error"].(string); msg == "" {
				t.Fatalf("POST %s %q: status %d without an error message: %s", path, body, w.Code, w.Body)
			}
		}
	})
}

// fuzzPlan is a small finished plan: a program and a numprocs group.
func fuzzPlan(t testing.TB) *plan.Plan {
	p := &plan.Plan{Format: plan.Format, Entry: "deploy.star", Root: "/srv",
		Supervisor: plan.Supervisor{Socket: "/srv/s.sock", LogDir: "/srv/log", StateDir: "/srv/state"}}
	web := plan.Defaults()
	web.Name, web.ProcessName, web.Command = "web", "web", []string{"/bin/sleep", "1h"}
	p.Programs = append(p.Programs, web)
	for i, n := range []string{"w_0", "w_1"} {
		w := plan.Defaults()
		w.Name, w.ProcessName, w.ProcessNum, w.Numprocs, w.Group = "w", n, i, 2, "workers"
		w.Command = []string{"/bin/sleep", "1h"}
		w.Stdout = plan.DefaultLog("/srv/log/" + n + ".log")
		p.Programs = append(p.Programs, w)
	}
	p.Groups = []plan.Group{{Name: "workers", Programs: []string{"w"}, Priority: 999}}
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	return p
}

// fuzzBackend answers like a healthy supervisor without running anything. Apply diffs and
// prints the plan it is given, as the real one diffs it and keeps it for GET /v1/plan.
type fuzzBackend struct {
	mu sync.Mutex
	p  *plan.Plan
}

func (f *fuzzBackend) States() []engine.Status { return f.Status() }
func (f *fuzzBackend) Status() []engine.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []engine.Status
	for i, pr := range f.p.Programs {
		out = append(out, engine.Status{Name: pr.ProcessName, Group: pr.Group, State: engine.Running,
			Pid: 100 + i, Since: time.Now(), Started: time.Now(), Hash: pr.Hash})
	}
	return out
}
func (f *fuzzBackend) Plan() *plan.Plan                                        { return f.p }
func (f *fuzzBackend) Start(context.Context, ...string) error                  { return nil }
func (f *fuzzBackend) Stop(context.Context, ...string) error                   { return nil }
func (f *fuzzBackend) Restart(context.Context, ...string) error                { return nil }
func (f *fuzzBackend) Signal(context.Context, syscall.Signal, ...string) error { return nil }
func (f *fuzzBackend) Shutdown(context.Context) error                          { return nil }
func (f *fuzzBackend) ShuttingDown() bool                                      { return false }
func (f *fuzzBackend) Apply(_ context.Context, p *plan.Plan) (plan.Delta, error) {
	d := plan.Diff(f.p, p)
	if _, err := p.JSON(); err != nil {
		return d, err
	}
	return d, nil
}

// TestFuzzRequestBodiesReachHandlers checks the fuzz set-up itself: with the forged peer
// context a good body gets past the uid check to its handler (200, not 403).
func TestFuzzRequestBodiesReachHandlers(t *testing.T) {
	ctx := context.WithValue(context.Background(), peerKey{}, peer{cred: &syscall.Ucred{Uid: uint32(os.Getuid())}})
	body, err := json.Marshal(ApplyRequest{Plan: fuzzPlan(t)})
	if err != nil {
		t.Fatal(err)
	}
	for path, b := range map[string]string{
		"/v1/start": `{"names":["workers:*"]}`, "/v1/signal": `{"names":["web"],"signal":"HUP"}`,
		"/v1/apply": string(body), "/v1/shutdown": ``,
	} {
		s := NewServer(&fuzzBackend{p: fuzzPlan(t)}, t.Logf)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequestWithContext(ctx, http.MethodPost, "http://starvisor"+path, strings.NewReader(b)))
		if w.Code != http.StatusOK {
			t.Errorf("POST %s: status %d: %s", path, w.Code, w.Body)
		}
	}
}
