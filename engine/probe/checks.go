package probe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/launcher"
	"github.com/starvisor/starvisor/engine/plan"
)

func tcpCheck(pb *plan.Probe) (check, string, error) {
	host := pb.Host
	if host == "" {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, strconv.Itoa(pb.Port))
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}, "tcp " + addr, nil
}

func (p *Prober) httpCheck(pb *plan.Probe) (check, string, error) {
	want := pb.Status
	if want == 0 {
		want = http.StatusOK
	}
	client := p.Client
	if client == nil {
		client = &http.Client{ // the redirect's answer is not the service's
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	what := "http " + plan.Redacted(pb.URL)
	if _, err := http.NewRequest(http.MethodGet, pb.URL, nil); err != nil {
		return nil, what, err
	}
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, pb.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("status %d, want %d", resp.StatusCode, want)
		}
		return nil
	}, what, nil
}

// execCheck runs the command as the program would run: its directory, user, umask and
// environment (inherit_env), through the daemon's launcher, so each attempt is
// contained as a program is: in cgroup mode in a cgroup of its own, emptied when the
// command exits; otherwise in its own process group, its escaped descendants found
// by the STARVISOR_PROCESS_NAME it carries (engine.ProbeName). A probe runs every interval:
// nothing an attempt starts outlives it, not even a child that called setsid.
func execCheck(pr plan.Program, l engine.Launcher, daemon string) (check, string, error) {
	argv := pr.Ready.Command
	what := "exec " + strings.Join(argv, " ")
	if len(argv) == 0 {
		return nil, what, errors.New("no command")
	}
	var env []string
	if pr.InheritEnv {
		env = os.Environ()
	} else if _, ok := pr.Env["PATH"]; !ok {
		env = append(env, "PATH="+cmp.Or(os.Getenv("PATH"), engine.DefaultPath)) // as its program's
	}
	for k, v := range pr.Env {
		env = append(env, k+"="+v)
	}
	env = append(env, engine.EnvProcessName+"="+engine.ProbeName(pr.ProcessName))
	if daemon != "" {
		env = append(env, engine.EnvDaemon+"="+daemon)
	}
	if _, _, err := launcher.Credential(pr.User, pr.Env, env); err != nil {
		return nil, what, err // an unknown user: no attempt can pass
	}
	run := plan.Program{Name: pr.Name, ProcessName: engine.ProbeName(pr.ProcessName), Command: argv,
		Directory: pr.Directory, User: pr.User, Umask: pr.Umask, Env: pr.Env, KillAsGroup: true}
	return func(ctx context.Context) error {
		out := &tail{}
		h, err := l.Start(engine.Spec{Program: run, Env: env, Stdout: out, Stderr: out})
		if err != nil {
			return err
		}
		var exit engine.Exit
		select {
		case exit = <-h.Done():
		case <-ctx.Done():
			h.Signal(syscall.SIGKILL, true)
			exit = <-h.Done()
		}
		h.Signal(syscall.SIGKILL, true) // what the command left behind
		if err := exitError(exit); err != nil {
			if msg := strings.TrimSpace(out.String()); msg != "" {
				return fmt.Errorf("%w: %s", err, lastLine(msg))
			}
			return err
		}
		return nil
	}, what, nil
}

// exitError says how a probe's command failed, in os/exec's words; nil for exit 0.
func exitError(e engine.Exit) error {
	switch {
	case e.Signal != 0:
		return fmt.Errorf("signal: %s", e.Signal)
	case e.Code != 0:
		return fmt.Errorf("exit status %d", e.Code)
	}
	return nil
}

// tail keeps the last 4 KB written to it: enough for the last line of a probe's output.
// A child left behind may still write while the attempt reads it.
type tail struct {
	mu sync.Mutex
	b  []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = append(t.b[:0], t.b[len(t.b)-4096:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
