package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"syscall"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/plan"
)

// ErrNoDaemon is what an offline client's actions answer.
var ErrNoDaemon = errors.New("the daemon is not running")

// NewOfflineClient returns a client that answers from p alone, in this process, with no
// daemon: its logs are the files p names (the same tails, prefixes and follows a daemon
// serves), its status lists nothing, and every action fails with ErrNoDaemon. It is what
// `logs` falls back to once the daemon died, just when its programs' logs matter.
func NewOfflineClient(p *plan.Plan) *Client {
	s := NewServer(offline{p}, func(string, ...any) {})
	return &Client{Socket: "(no daemon)", hc: &http.Client{Transport: inProcess{s.mux}}}
}

// offline is a Backend with a plan and no processes.
type offline struct{ p *plan.Plan }

func (o offline) Status() []engine.Status                                 { return nil }
func (o offline) States() []engine.Status                                 { return nil }
func (o offline) Plan() *plan.Plan                                        { return o.p }
func (o offline) Start(context.Context, ...string) error                  { return ErrNoDaemon }
func (o offline) Stop(context.Context, ...string) error                   { return ErrNoDaemon }
func (o offline) Restart(context.Context, ...string) error                { return ErrNoDaemon }
func (o offline) Signal(context.Context, syscall.Signal, ...string) error { return ErrNoDaemon }
func (o offline) Apply(context.Context, *plan.Plan) (plan.Delta, error) {
	return plan.Delta{}, ErrNoDaemon
}
func (o offline) Shutdown(context.Context) error { return ErrNoDaemon }
func (o offline) ShuttingDown() bool             { return false }

// inProcess is an http.RoundTripper that serves each request with h on a goroutine of
// this process, streaming the answer: a followed log has no end to wait for.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	body, bw := io.Pipe()
	w := &streamWriter{header: http.Header{}, body: bw, ready: make(chan struct{})}
	go func() {
		t.h.ServeHTTP(w, req)
		w.WriteHeader(http.StatusOK) // an empty answer
		bw.Close()
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		body.Close()
		return nil, req.Context().Err()
	}
	return &http.Response{StatusCode: w.code, Status: http.StatusText(w.code), Header: w.header, Body: body, Request: req}, nil
}

// streamWriter hands the status and header over at the first write, and the bytes through
// a pipe as they come.
type streamWriter struct {
	header http.Header
	body   *io.PipeWriter
	once   sync.Once
	code   int
	ready  chan struct{}
}

func (w *streamWriter) Header() http.Header { return w.header }

func (w *streamWriter) WriteHeader(code int) {
	w.once.Do(func() {
		w.code = code
		w.header = w.header.Clone() // the handler's later changes are not the reader's
		close(w.ready)
	})
}

func (w *streamWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

func (w *streamWriter) Flush() {}
