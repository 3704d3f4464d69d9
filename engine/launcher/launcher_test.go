package launcher

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/plan"
	"github.com/starvisor/starvisor/engine/procfs"
)

type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func shell(script string) engine.Spec {
	return engine.Spec{Program: plan.Program{Command: []string{"/bin/sh", "-c", script}}, Env: os.Environ()}
}

// start launches spec with New() and kills its whole group when the test ends.
func start(t *testing.T, spec engine.Spec) engine.Handle {
	t.Helper()
	return startWith(t, New(), spec)
}

// startWith launches spec with l. When the test ends it kills the process group and
// waits until the handle is finished, so its cgroup (if any) is gone before the next test.
func startWith(t *testing.T, l engine.Launcher, spec engine.Spec) engine.Handle {
	t.Helper()
	h, err := l.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanup(t, h) })
	return h
}

func cleanup(t *testing.T, h engine.Handle) {
	syscall.Kill(-h.Pid(), syscall.SIGKILL)
	select {
	case <-h.(*handle).finished:
	case <-time.After(10 * time.Second):
		t.Errorf("pid %d: handle not finished 10s after SIGKILL", h.Pid())
	}
}

// processGroups is a launcher in process group mode whatever the machine offers.
func processGroups() *Launcher {
	return &Launcher{why: errors.New("process group mode, for the test")}
}

func wait(t *testing.T, h engine.Handle) engine.Exit {
	t.Helper()
	select {
	case e := <-h.Done():
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after 10s")
		return engine.Exit{}
	}
}

func TestOutputIsCapturedBeforeExitIsReported(t *testing.T) {
	is := is.New(t)
	var out, errb buffer
	spec := shell("echo out; echo err >&2; exit 3")
	spec.Stdout, spec.Stderr = &out, &errb
	e := wait(t, start(t, spec))
	is.Equal(e.Code, 3)
	is.Equal(e.Signal, syscall.Signal(0))
	is.Equal(out.String(), "out\n")
	is.Equal(errb.String(), "err\n")
}

func TestRedirectStderrKeepsOrder(t *testing.T) {
	is := is.New(t)
	var both buffer
	spec := shell("echo a; echo b >&2; echo c; echo d >&2")
	spec.Stdout, spec.Stderr = &both, &both
	wait(t, start(t, spec))
	is.Equal(both.String(), "a\nb\nc\nd\n") // one pipe: the child's order
}

func TestNilWritersDiscard(t *testing.T) {
	is := is.New(t)
	e := wait(t, start(t, shell("echo out; echo err >&2; read x; exit 0"))) // stdin is /dev/null: read sees EOF
	is.Equal(e.Code, 0)
}

func TestKilledBySignal(t *testing.T) {
	is := is.New(t)
	e := wait(t, start(t, shell("kill -TERM $$")))
	is.Equal(e.Code, -1)
	is.Equal(e.Signal, syscall.SIGTERM)
}

// A grandchild holding the pipe open must not hold back the exit.
func TestExitNotDelayedByGrandchildHoldingPipe(t *testing.T) {
	is := is.New(t)
	var out buffer
	spec := shell("sleep 1000 & echo started")
	spec.Stdout = &out
	began := time.Now()
	e := wait(t, start(t, spec))
	is.Equal(e.Code, 0)
	is.True(time.Since(began) < 5*time.Second) // sleep 1000 still holds stdout
	is.Equal(out.String(), "started\n")
}

// Everything the child wrote is in the log file when the exit is reported.
func TestNoByteLostIntoLogFile(t *testing.T) {
	is := is.New(t)
	f, err := logs.Open(plan.Log{Path: filepath.Join(t.TempDir(), "x.log"), MaxBytes: 1 << 20, Backups: 10})
	is.NoErr(err)
	defer f.Close()
	spec := shell("i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done; head -c 3000000 /dev/zero | tr '\\0' 'z'; echo")
	spec.Stdout, spec.Stderr = f, f
	wait(t, start(t, spec))
	var total int64
	for _, name := range []string{"x.log.3", "x.log.2", "x.log.1", "x.log"} {
		if st, err := os.Stat(filepath.Join(filepath.Dir(f.Path()), name)); err == nil {
			total += st.Size()
		}
	}
	want := int64(3000001)
	for i := range 2000 {
		want += int64(len("line \n") + len(strconv.Itoa(i)))
	}
	is.Equal(total, want)
	is.NoErr(f.Err())
}

func TestSignalReachesTheWholeGroup(t *testing.T) {
	is := is.New(t)
	var out buffer
	spec := shell("sleep 1000 & echo $!; sleep 1000 & echo $!; wait")
	spec.Stdout = &out
	h := start(t, spec)
	pids := waitLines(t, &out, 2)
	is.NoErr(h.Signal(syscall.SIGTERM, true))
	e := wait(t, h)
	is.Equal(e.Signal, syscall.SIGTERM)
	for _, p := range pids {
		waitGone(t, p)
	}
	is.NoErr(h.Signal(syscall.SIGTERM, false)) // already gone: not an error
	is.NoErr(h.Signal(syscall.SIGTERM, true))
}

func waitLines(t *testing.T, b *buffer, n int) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if f := strings.Fields(b.String()); len(f) >= n {
			var pids []int
			for _, s := range f {
				p, _ := strconv.Atoi(s)
				pids = append(pids, p)
			}
			return pids
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("want %d lines, got %q", n, b.String())
	return nil
}

// waitGone polls until pid is dead (gone, or a zombie nobody reaped yet).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("pid %d still alive", pid)
}

// The start time a handle knows without reading /proc is the one /proc shows (the
// state file records it to tell a recycled pid apart), in both launcher modes.
func TestStartTicksAreProcs(t *testing.T) {
	for name, l := range map[string]*Launcher{"default": New().(*Launcher), "process groups": processGroups()} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			known := 0
			sleep := engine.Spec{Program: plan.Program{Command: []string{"/bin/sleep", "60"}}, Env: os.Environ()}
			for i := 0; i < 50 && known < 3; i++ { // a spawn is ~1 ms: most fall inside a 10 ms tick
				h := startWith(t, l, sleep)
				ticks, ok := h.(*handle).StartTicks()
				if !ok {
					continue // straddled a tick
				}
				known++
				var buf [procfs.BufSize]byte
				st, found := procfs.Read(h.Pid(), buf[:])
				is.True(found)
				is.Equal(ticks, st.StartTicks)
			}
			is.True(known > 0)
		})
	}
}
