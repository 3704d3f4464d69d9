package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// ErrUnreachable wraps every failure to reach the daemon, so the CLI can exit 3.
var ErrUnreachable = errors.New("cannot reach the daemon")

// unreachable words a failed connection without the HTTP client's URL wrapping:
// "cannot reach the daemon at S: dial unix S: connect: connection refused".
func unreachable(socket string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w at %s: the daemon does not answer (nothing in %s): hung, stopped (SIGSTOP), or serving as many clients as it takes (logs -f left running)? `starvisor ls` gives its pid", ErrUnreachable, socket, AnswerWithin)
	}
	var oe *net.OpError
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.As(err, &oe) && oe.Op != "dial" {
		// Connected, then cut off: the daemon went away mid-answer.
		return fmt.Errorf("%w at %s: lost the connection (did the daemon exit?): %v", ErrUnreachable, socket, err)
	}
	if errors.Is(err, syscall.EACCES) {
		if uid, ok := SocketOwner(socket); ok && uid != os.Geteuid() {
			return &ForeignDaemonError{Socket: socket, UID: uid}
		}
	}
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		// No socket, or one nobody listens on (left by a killed daemon): none runs.
		return &NoDaemonError{Socket: socket}
	}
	return fmt.Errorf("%w at %s: %w", ErrUnreachable, socket, err) // both kept: ErrForeignSocket is asked for
}

// NoDaemonError: nothing listens on Socket (no daemon runs there, or one was killed).
type NoDaemonError struct{ Socket string }

func (e *NoDaemonError) Error() string {
	return fmt.Sprintf("%v at %s: no daemon is running there (start one: starvisor up --detach)", ErrUnreachable, e.Socket)
}

func (e *NoDaemonError) Unwrap() error { return ErrUnreachable }

// ForeignDaemonError: the socket, or its folder, is another user's, who runs the daemon
// there: a client of another user may not connect ("permission denied" sent people to
// chmod things).
type ForeignDaemonError struct {
	Socket string
	UID    int
}

func (e *ForeignDaemonError) Error() string {
	return fmt.Sprintf("%v at %s: its daemon runs as %s, not you (uid %d): run this as that user, or as root (or it ran so and left its socket's folder behind, which no one but that user can look into: then %s removes it)", ErrUnreachable, e.Socket, e.Owner(), os.Geteuid(), e.leftBehind())
}

// leftBehind is how the folder of a socket a daemon of another user left would go.
func (e *ForeignDaemonError) leftBehind() string {
	return fmt.Sprintf("`rm -r %s`, as that user or root,", filepath.Dir(e.Socket))
}

// Owner names the daemon's user: "h24u1 (uid 1001)", or "uid 1001" when it has no name.
func (e *ForeignDaemonError) Owner() string {
	if u, err := user.LookupId(strconv.Itoa(e.UID)); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, e.UID)
	}
	return fmt.Sprintf("uid %d", e.UID)
}

func (e *ForeignDaemonError) Unwrap() error { return ErrUnreachable }

// SocketOwner is the uid owning socket, or its folder where that may not be searched
// (a 0700 run/ of another user's); ok false when neither can be looked at.
func SocketOwner(socket string) (uid int, ok bool) {
	for _, p := range []string{socket, filepath.Dir(socket)} {
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) == nil {
			return int(st.Uid), true
		}
	}
	return 0, false
}

// Client talks to one daemon's socket.
type Client struct {
	Socket string
	// Starting, when set, hears once why the daemon does not answer yet (see Hold):
	// every call waits for it.
	Starting func(msg string)
	// Expect, when set, are the users whose daemon this may be besides root and the
	// caller (the bundle script's owner): root sends nothing to another's, even in a
	// folder of theirs (a socket path a script points into a user's folder).
	Expect []uint32
	hc     *http.Client
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	c := &Client{Socket: socket}
	c.hc = &http.Client{Transport: oneShot{socket, c}}
	return c
}

// oneShot is an http.RoundTripper that dials the socket for each request and closes the
// connection with the response body. A CLI run makes one or two requests; http.Transport's
// pooling (a goroutine to dial, one to read and one to write per connection) cost about a
// millisecond of every `starvisor status`, for connections never reused.
type oneShot struct {
	socket string
	cl     *Client
}

// RoundTrip waits, while the daemon answers that it is starting (Hold), for it to serve.
// A request with a body never meets such an answer: answers() asks first.
func (o oneShot) RoundTrip(req *http.Request) (*http.Response, error) {
	told := false
	for {
		resp, err := o.once(req)
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(startingHeader) == "" {
			return resp, err
		}
		var e ErrorResponse
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		resp.Body.Close()
		if !told && o.cl != nil && o.cl.Starting != nil {
			told = true
			o.cl.Starting(e.Error)
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		}
	}
}

func (o oneShot) once(req *http.Request) (*http.Response, error) {
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	if req.Method != http.MethodGet {
		// An action answers once it is done (a stop waits out stop_timeout), so no
		// deadline fits it: ask first whether the daemon answers at all. A hung or
		// SIGSTOPped one still accepts connections, and would run the action once
		// resumed, long after its client gave up. Asked before this connection is made:
		// a daemon still starting answers that one too.
		if err := o.answers(req.Context()); err != nil {
			closeBody()
			return nil, err
		}
	}
	c, err := Dial(req.Context(), o.socket)
	if err == nil {
		if err = checkServer(c, o.socket, o.cl.Expect); err != nil {
			c.Close()
			err = fmt.Errorf("socket %s: %w", o.socket, err)
		}
	}
	if err != nil {
		closeBody()
		return nil, err
	}
	stop := context.AfterFunc(req.Context(), func() { c.Close() }) // unblocks reads on cancel
	fail := func(err error) (*http.Response, error) {
		stop()
		c.Close()
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	if err := req.Write(c); err != nil {
		return fail(err)
	}
	if req.Method == http.MethodGet {
		c.SetReadDeadline(time.Now().Add(AnswerWithin)) // until the header: a followed log streams on
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return fail(err)
	}
	c.SetReadDeadline(time.Time{})
	resp.Body = &connBody{ReadCloser: resp.Body, conn: c, stop: stop}
	return resp, nil
}

// AnswerWithin is how long a client waits for the daemon to start answering a question
// (status, plan, logs): every one is answered in milliseconds, so a daemon silent that
// long is hung or stopped, and a monitoring probe must not hang with it.
var AnswerWithin = 10 * time.Second

// answers asks the daemon for its pid, within AnswerWithin.
func (o oneShot) answers(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://starvisor/v1/pid", nil)
	if err != nil {
		return err
	}
	resp, err := o.RoundTrip(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// connBody closes the connection with the body: the connection first, as closing an
// HTTP body reads it to its end, which a followed log never reaches.
type connBody struct {
	io.ReadCloser
	conn net.Conn
	stop func() bool
}

func (b *connBody) Close() error {
	b.stop()
	err := b.conn.Close()
	b.ReadCloser.Close()
	return err
}

// ActionError is a daemon answer that names a failure, with the per-process results it had.
type ActionError struct {
	Message string
	Results []Result
}

func (e *ActionError) Error() string { return e.Message }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		if len(b) > MaxBody {
			// Said here: the daemon would cut the connection mid-request, which reads as
			// "cannot reach the daemon".
			return fmt.Errorf("the request is %d MiB, more than the daemon takes (%d MiB): a plan that large is more than it is meant for", len(b)>>20, MaxBody>>20)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://starvisor"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return unreachable(c.Socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		if out == nil {
			return nil
		}
		data, err := readBody(resp)
		if err != nil {
			return unreachable(c.Socket, err)
		}
		if d, ok := out.(bodyDecoder); ok {
			err = d.decodeBody(data)
		} else {
			err = json.Unmarshal(data, out)
		}
		if err != nil {
			return unreachable(c.Socket, err)
		}
		return nil
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return unreachable(c.Socket, err)
	}
	var e struct {
		Error   string   `json:"error"`
		Results []Result `json:"results"`
	}
	if json.Unmarshal(data, &e) != nil || e.Error == "" {
		e.Error = fmt.Sprintf("daemon answered %s", resp.Status)
	}
	if a, ok := out.(*ActionResponse); ok {
		a.Results = e.Results
	}
	return &ActionError{Message: e.Error, Results: e.Results}
}

// Status returns the status of the processes the specs select ("all", "NAME", "GROUP:*",
// "GROUP:NAME"), or of every process when none is given.
func (c *Client) Status(ctx context.Context, specs ...string) (StatusResponse, error) {
	var r StatusResponse
	path := "/v1/status"
	if len(specs) > 0 {
		path += "?" + url.Values{"name": specs}.Encode()
	}
	return r, c.do(ctx, http.MethodGet, path, nil, &r)
}

// States is Status without the CPU and memory figures, not counted as watching (no
// sampling rounds follow): for a client that shows states only, or waits on them.
func (c *Client) States(ctx context.Context, specs ...string) (StatusResponse, error) {
	var r StatusResponse
	q := url.Values{"usage": {"0"}}
	if len(specs) > 0 {
		q["name"] = specs
	}
	return r, c.do(ctx, http.MethodGet, "/v1/status?"+q.Encode(), nil, &r)
}

// Plan returns the plan the daemon runs.
func (c *Client) Plan(ctx context.Context) (*plan.Plan, error) {
	var p plan.Plan
	if err := c.do(ctx, http.MethodGet, "/v1/plan", nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Action runs verb ("start", "stop", "restart") on names and waits for the end state.
func (c *Client) Action(ctx context.Context, verb string, names []string) (ActionResponse, error) {
	var r ActionResponse
	err := c.do(ctx, http.MethodPost, "/v1/"+verb, ActionRequest{Names: names}, &r)
	return r, err
}

// Signal sends sig to names.
func (c *Client) Signal(ctx context.Context, sig string, names []string) (ActionResponse, error) {
	var r ActionResponse
	err := c.do(ctx, http.MethodPost, "/v1/signal", ActionRequest{Names: names, Signal: sig}, &r)
	return r, err
}

// Apply sends a plan; with dryRun the daemon only computes the difference.
func (c *Client) Apply(ctx context.Context, p *plan.Plan, dryRun bool) (ApplyResponse, error) {
	return c.ApplyRequest(ctx, ApplyRequest{Plan: p, DryRun: dryRun})
}

// ApplyRequest sends req whole (Force).
func (c *Client) ApplyRequest(ctx context.Context, req ApplyRequest) (ApplyResponse, error) {
	var r ApplyResponse
	err := c.do(ctx, http.MethodPost, "/v1/apply", req, &r)
	return r, err
}

// Pid returns the daemon's pid (name "") or a process's.
func (c *Client) Pid(ctx context.Context, name string) (int, error) {
	var r PidResponse
	path := "/v1/pid"
	if name != "" {
		path += "?name=" + url.QueryEscape(name)
	}
	return r.Pid, c.do(ctx, http.MethodGet, path, nil, &r)
}

// Shutdown stops every process and then the daemon; it returns once processes are gone.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/shutdown", struct{}{}, nil)
}

// LogStream is the answer to Logs: the lines, and the processes whose log could not be
// read ("name: why"), left out so that the others still print.
type LogStream struct {
	io.ReadCloser
	Skipped []string
	resp    *http.Response
}

// Ended says, once the body was read to its end, why a follow ended though the daemon
// runs on ("web removed by an apply"); "" when it did not (the daemon stopped).
func (s *LogStream) Ended() string {
	if s.resp == nil {
		return ""
	}
	return s.resp.Trailer.Get(endedTrailer)
}

// Logs streams the last n lines of the logs (stream: stdout, stderr or both) of each
// process the specs select, then new ones while follow holds; from several logs each
// line comes after its label (the process's name, name.err for its stderr beside).
func (c *Client) Logs(ctx context.Context, specs []string, stream Stream, follow bool, n int) (*LogStream, error) {
	q := url.Values{"name": specs}
	if stream != Both {
		q.Set("stream", string(stream))
	}
	return c.logs(ctx, q, follow, n)
}

// DaemonLog is Logs of the detached daemon's own log (<log_dir>/starvisor.log).
func (c *Client) DaemonLog(ctx context.Context, follow bool, n int) (*LogStream, error) {
	return c.logs(ctx, url.Values{"daemon": {"1"}}, follow, n)
}

func (c *Client) logs(ctx context.Context, q url.Values, follow bool, n int) (*LogStream, error) {
	q.Set("n", strconv.Itoa(n))
	if follow {
		q.Set("follow", "1")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://starvisor/v1/logs?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, unreachable(c.Socket, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e ErrorResponse
		data, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return nil, errors.New(e.Error)
	}
	return &LogStream{ReadCloser: resp.Body, Skipped: resp.Header.Values(skippedHeader), resp: resp}, nil
}

// readBody reads a whole body into one allocation when the daemon says its length.
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n < 64<<20 {
		b := make([]byte, n)
		_, err := io.ReadFull(resp.Body, b)
		return b, err
	}
	return io.ReadAll(resp.Body)
}
