package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine/api"
)

// The tests here run the real binary, built once per test process with `go build`.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func starvisorBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "svbin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "starvisor")
		build := exec.Command("go", "build", "-o", binPath, "github.com/starvisor/starvisor/cmd/starvisor")
		build.Env = append(os.Environ(), "CGO_ENABLED=0") // as released: static, see README "Install"
		out, err := build.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// startDaemon writes script into a fresh short folder, runs `starvisor up` on it in the
// foreground (its own process group) and waits until every process is RUNNING. Cleanup
// stops it with SIGTERM (which stops its children), then kills what is left.
func startDaemon(t testing.TB, script string, want int) (dir, sock string) {
	t.Helper()
	d := launchDaemon(t, script, want, nil)
	return d.dir, d.sock
}

// upDaemon is a foreground `up` started by launchDaemon.
type upDaemon struct {
	dir, sock string
	cmd       *exec.Cmd
	exited    chan struct{} // closed once cmd.Wait returned
}

// launchDaemon is startDaemon with the daemon's stdout and stderr given: nil is the
// file daemon.out in its folder.
func launchDaemon(t testing.TB, script string, want int, out *os.File) *upDaemon {
	t.Helper()
	return launchDaemonAsking(t, script, want, out, true)
}

// launchUnwatched is launchDaemon that waits for the RUNNING lines in the daemon's own
// output instead of asking it: a client's status keeps it sampling for a minute.
func launchUnwatched(t testing.TB, script string, want int) *upDaemon {
	t.Helper()
	return launchDaemonAsking(t, script, want, nil, false)
}

func launchDaemonAsking(t testing.TB, script string, want int, out *os.File, ask bool) *upDaemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "sv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "deploy.star"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "starvisor.sock")
	cmd := exec.Command(starvisorBin(t), "up", "-f", filepath.Join(dir, "deploy.star"))
	cmd.Dir = dir
	if out == nil {
		if out, err = os.Create(filepath.Join(dir, "daemon.out")); err != nil {
			t.Fatal(err)
		}
		defer out.Close()
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	cl := api.NewClient(sock)
	t.Cleanup(func() {
		st, _ := cl.Status(context.Background())
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			for _, p := range st.Programs {
				if p.Pid > 0 {
					syscall.Kill(-p.Pid, syscall.SIGKILL)
				}
			}
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			out, _ := os.ReadFile(filepath.Join(dir, "daemon.out"))
			t.Fatalf("daemon exited:\n%s", out)
		default:
		}
		if !ask {
			if b, _ := os.ReadFile(filepath.Join(dir, "daemon.out")); strings.Count(string(b), " -> RUNNING") >= want {
				return &upDaemon{dir: dir, sock: sock, cmd: cmd, exited: exited}
			}
		} else if st, err := cl.Status(context.Background()); err == nil && running(st) == want {
			return &upDaemon{dir: dir, sock: sock, cmd: cmd, exited: exited}
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon: %d processes not RUNNING after 60s", want)
		}
		time.Sleep(pollEvery)
	}
}

func running(st api.StatusResponse) int {
	n := 0
	for _, p := range st.Programs {
		if p.State == "RUNNING" {
			n++
		}
	}
	return n
}

// sleepers is a script of n programs that sleep.
func sleepers(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "for i in range(%d):\n", n)
	b.WriteString(`    program(name = "p%d" % i, command = ["sleep", "100000"], start_secs = 0, stdout = None)` + "\n")
	return b.String()
}
