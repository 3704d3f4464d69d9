package api

import (
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
	"syscall"
	"time"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/plan"
)

// maxBody bounds every request body: a 1,000-program plan is well under 2 MiB.
const maxBody = 8 << 20

// Backend is what the server controls; *engine.Supervisor satisfies it.
type Backend interface {
	Status() []engine.Status
	Plan() *plan.Plan
	Start(ctx context.Context, names ...string) error
	Stop(ctx context.Context, names ...string) error
	Restart(ctx context.Context, names ...string) error
	Signal(sig syscall.Signal, names ...string) error
	Apply(ctx context.Context, p *plan.Plan) (plan.Delta, error)
	Shutdown(ctx context.Context) error
}

var _ Backend = (*engine.Supervisor)(nil)

// Server answers the control API for one Backend.
type Server struct {
	b        Backend
	mux      *http.ServeMux
	shutdown chan struct{} // closed once a client asked the daemon to shut down
	logf     func(format string, args ...any)
}

// NewServer builds the handler; logf receives request panics and other daemon-side errors.
func NewServer(b Backend, logf func(format string, args ...any)) *Server {
	s := &Server{b: b, mux: http.NewServeMux(), shutdown: make(chan struct{}), logf: logf}
	s.mux.HandleFunc("GET /v1/status", s.status)
	s.mux.HandleFunc("GET /v1/plan", s.plan)
	s.mux.HandleFunc("GET /v1/pid", s.pid)
	s.mux.HandleFunc("GET /v1/logs", s.logs)
	s.mux.HandleFunc("POST /v1/start", s.action(b.Start))
	s.mux.HandleFunc("POST /v1/stop", s.action(b.Stop))
	s.mux.HandleFunc("POST /v1/restart", s.action(b.Restart))
	s.mux.HandleFunc("POST /v1/signal", s.signal)
	s.mux.HandleFunc("POST /v1/apply", s.apply)
	s.mux.HandleFunc("POST /v1/shutdown", s.shutdownReq)
	return s
}

// ShutdownRequested is closed after a client's shutdown request has stopped every process.
func (s *Server) ShutdownRequested() <-chan struct{} { return s.shutdown }

// Listen creates the socket (its folder 0700, the socket 0600). A live socket is an error
// (another daemon owns it); a stale one is removed.
func Listen(socket string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if c, err := net.DialTimeout("unix", socket, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("listen: a daemon is already running on %s", socket)
	}
	_ = os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	return l, nil
}

// Serve answers on l until ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{
		Handler:     s,
		ConnContext: withPeer,
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	err := hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
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
	s.mux.ServeHTTP(w, r)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, StatusResponse{Programs: statuses(s.b.Status(), time.Now())})
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
	name := r.URL.Query().Get("name")
	if name == "" {
		writeJSON(w, http.StatusOK, PidResponse{Pid: os.Getpid()})
		return
	}
	for _, st := range s.b.Status() {
		if st.Name == name {
			writeJSON(w, http.StatusOK, PidResponse{Pid: st.Pid})
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Errorf("no such process: %s", name))
}

func (s *Server) action(do func(context.Context, ...string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req ActionRequest
		if !readJSON(w, r, &req) {
			return
		}
		names, err := s.resolve(req.Names)
		if err != nil {
			writeError(w, http.StatusNotFound, err)
			return
		}
		err = do(r.Context(), names...)
		s.answer(w, names, err)
	}
}

func (s *Server) signal(w http.ResponseWriter, r *http.Request) {
	var req ActionRequest
	if !readJSON(w, r, &req) {
		return
	}
	sig, err := ParseSignal(req.Signal)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	names, err := s.resolve(req.Names)
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	s.answer(w, names, s.b.Signal(sig, names...))
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request) {
	var req ApplyRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Plan == nil {
		writeError(w, http.StatusBadRequest, errors.New("apply: no plan"))
		return
	}
	if err := req.Plan.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if req.DryRun {
		writeJSON(w, http.StatusOK, ApplyResponse{Delta: plan.Diff(s.b.Plan(), req.Plan)})
		return
	}
	d, err := s.b.Apply(r.Context(), req.Plan)
	if err != nil {
		writeError(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, ApplyResponse{Delta: d})
}

func (s *Server) shutdownReq(w http.ResponseWriter, r *http.Request) {
	err := s.b.Shutdown(r.Context())
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

// resolve turns namespecs into process names in start order, without duplicates.
func (s *Server) resolve(specs []string) ([]string, error) {
	p := s.b.Plan()
	if p == nil {
		return nil, errors.New("no plan applied yet")
	}
	if len(specs) == 0 {
		return nil, errors.New("no names given")
	}
	want := map[string]bool{}
	for _, spec := range specs {
		names, err := p.Select(spec)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			want[n] = true
		}
	}
	out := make([]string, 0, len(want))
	for _, pr := range p.Programs {
		if want[pr.ProcessName] {
			out = append(out, pr.ProcessName)
		}
	}
	return out, nil
}

// answer reports each process's state after an action; err is the action's own failure.
func (s *Server) answer(w http.ResponseWriter, names []string, err error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var res ActionResponse
	for _, st := range s.b.Status() {
		if want[st.Name] {
			res.Results = append(res.Results, Result{Name: st.Name, State: st.State.String()})
		}
	}
	if err != nil {
		writeJSON(w, http.StatusConflict, struct {
			ActionResponse
			ErrorResponse
		}{res, ErrorResponse{Error: err.Error()}})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func statuses(in []engine.Status, now time.Time) []ProgramStatus {
	out := make([]ProgramStatus, 0, len(in))
	for _, st := range in {
		ps := ProgramStatus{
			Name: st.Name, Group: st.Group, State: st.State.String(), Pid: st.Pid,
			ExitCode: st.ExitCode, Description: st.Description,
			CPUPercent: st.Usage.CPUPercent, RSSBytes: st.Usage.RSSBytes,
			TreeCPU: st.Usage.TreeCPUPercent, TreeRSS: st.Usage.TreeRSSBytes, Hash: st.Hash,
		}
		if st.Pid > 0 && !st.Since.IsZero() {
			ps.UptimeS = now.Sub(st.Since).Seconds()
		}
		out = append(out, ps)
	}
	return out
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %w", err))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, errors.New("bad request body: trailing data"))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
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
