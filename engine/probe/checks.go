package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

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
	what := "http " + pb.URL
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

// execCheck runs the command in the program's directory and environment. When
// the probe times out, the command's whole process group is killed.
func execCheck(pr plan.Program) (check, string, error) {
	argv := pr.Ready.Command
	what := "exec " + strings.Join(argv, " ")
	if len(argv) == 0 {
		return nil, what, errors.New("no command")
	}
	// The probe runs as the program would: its user, its environment (inherit_env).
	var env []string
	if pr.InheritEnv {
		env = os.Environ()
	}
	for k, v := range pr.Env {
		env = append(env, k+"="+v)
	}
	cred, env, err := launcher.Credential(pr.User, pr.Env, env)
	if err != nil {
		return nil, what, err
	}
	return func(ctx context.Context) error {
		// The output goes into a pipe the command writes directly (no copier in between),
		// so a background child holding it open does not hold up the attempt.
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		defer r.Close()
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = pr.Directory
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = w, w
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		err = cmd.Start()
		w.Close()
		if err != nil {
			return err
		}
		var out tail
		read := make(chan struct{})
		go func() { io.Copy(&out, r); close(read) }()
		err = cmd.Wait()
		// What the command left in its process group ends with the attempt: a probe
		// runs every interval and must not leave processes behind.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		r.SetReadDeadline(time.Now().Add(100 * time.Millisecond)) // one that escaped the group may hold the pipe
		<-read
		if err != nil {
			if msg := strings.TrimSpace(string(out.b)); msg != "" {
				return fmt.Errorf("%w: %s", err, lastLine(msg))
			}
			return err
		}
		return nil
	}, what, nil
}

// tail keeps the last 4 KB written to it: enough for the last line of a probe's output.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = append(t.b[:0], t.b[len(t.b)-4096:]...)
	}
	return len(p), nil
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
