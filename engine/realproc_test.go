package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// These tests run real processes, outside any synctest bubble. The child is this test
// binary (TestMain), so they need nothing from the host.

const childEnv = "STARVISOR_ENGINE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "sleep" {
		time.Sleep(time.Hour) // dies on SIGTERM by default
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// execLauncher is a minimal real launcher for these tests (the production one is
// engine/launcher): its own process group per child, exit from Wait.
type execLauncher struct {
	mu   sync.Mutex
	pids []int
}

type execHandle struct {
	pid  int
	done chan Exit
}

func (h *execHandle) Pid() int          { return h.pid }
func (h *execHandle) Done() <-chan Exit { return h.done }
func (h *execHandle) Signal(sig syscall.Signal, group bool) error {
	if group {
		return syscall.Kill(-h.pid, sig)
	}
	return syscall.Kill(h.pid, sig)
}

func (l *execLauncher) Start(spec Spec) (Handle, error) {
	cmd := exec.Command(spec.Program.Command[0], spec.Program.Command[1:]...)
	cmd.Env = spec.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h := &execHandle{pid: cmd.Process.Pid, done: make(chan Exit, 1)}
	l.mu.Lock()
	l.pids = append(l.pids, h.pid)
	l.mu.Unlock()
	go func() {
		cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		e := Exit{Code: ws.ExitStatus(), Time: time.Now()}
		if ws.Signaled() {
			e.Code, e.Signal = -1, ws.Signal()
		}
		h.done <- e
	}()
	return h, nil
}

// killAll kills every process group this launcher started (cleanup after a failure).
func (l *execLauncher) killAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, pid := range l.pids {
		syscall.Kill(-pid, syscall.SIGKILL)
	}
}

func sleepers(t testing.TB, n int) *plan.Plan {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var progs []plan.Program
	for i := range n {
		progs = append(progs, prog(fmt.Sprintf("p%03d", i), startSecs(0), func(pr *plan.Program) {
			pr.Command = []string{exe}
			pr.InheritEnv, pr.Env = false, map[string]string{childEnv: "sleep"}
			pr.StopAsGroup = true
		}))
	}
	p := &plan.Plan{Root: "/srv", Entry: "deploy.star", Programs: progs}
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	return p
}

func allIn(s *Supervisor, st State) func() (bool, error) {
	return func() (bool, error) {
		for _, x := range s.Status() {
			if x.State != st {
				return false, nil
			}
		}
		return true, nil
	}
}

func TestReal200StartAndShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 200 processes")
	}
	l := &execLauncher{}
	t.Cleanup(l.killAll)
	s := New(Options{Launcher: l})
	p := sleepers(t, 200)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	begin := time.Now()
	if _, err := s.Apply(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.waitFor(ctx, allIn(s, Running)); err != nil {
		t.Fatalf("not all RUNNING: %v", err)
	}
	up := time.Since(begin)
	t.Logf("200 processes RUNNING in %v", up)
	if up > 2*time.Second && !raceEnabled { // generous: raw fork+exec of 200 children alone takes 0.3-0.5 s on a loaded 2-CPU VM
		t.Errorf("200 start_secs=0 processes took %v to reach RUNNING", up)
	}
	pids := map[int]bool{}
	for _, x := range s.Status() {
		pids[x.Pid] = true
	}
	if len(pids) != 200 || pids[0] {
		t.Fatalf("want 200 distinct live pids, got %d", len(pids))
	}

	begin = time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("shutdown of 200 in %v", time.Since(begin))
	for pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d still exists after shutdown: %v", pid, err)
		}
	}
	for _, x := range s.Status() {
		if x.State != Stopped || x.ExitCode != -1 {
			t.Errorf("%s: %v exit %d", x.Name, x.State, x.ExitCode)
		}
	}
}

func BenchmarkStatus200(b *testing.B) {
	s := New(Options{Launcher: &fakeLauncher{t0: time.Now()}})
	defer s.Shutdown(context.Background())
	if _, err := s.Apply(context.Background(), sleepers(b, 200)); err != nil {
		b.Fatal(err)
	}
	if err := s.waitFor(context.Background(), allIn(s, Running)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(s.Status()) != 200 {
			b.Fatal("want 200")
		}
	}
}

// BenchmarkStart200 is the engine's own cost of bringing 200 start_secs=0 processes to
// RUNNING and shutting them down, on the fake launcher (no fork).
func BenchmarkStart200(b *testing.B) {
	p := sleepers(b, 200)
	for b.Loop() {
		s := New(Options{Launcher: &fakeLauncher{t0: time.Now()}})
		if _, err := s.Apply(context.Background(), p); err != nil {
			b.Fatal(err)
		}
		if err := s.waitFor(context.Background(), allIn(s, Running)); err != nil {
			b.Fatal(err)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
