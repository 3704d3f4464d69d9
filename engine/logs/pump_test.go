package logs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
	"golang.org/x/sys/unix"

	"github.com/starvisor/starvisor/engine/plan"
)

// Pump moves every byte, across rotations, and reports the end once; also on kernels
// without preadv2(RWF_NOWAIT) on pipes, which take poll(2) then read(2).
func TestPumpKeepsLines(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(map[bool]string{false: "nowait", true: "poll"}[fallback], func(t *testing.T) {
			is := is.New(t)
			noWait.Store(fallback)
			t.Cleanup(func() { noWait.Store(false) })
			path := filepath.Join(t.TempDir(), "a.log")
			f := open(t, plan.Log{Path: path, MaxBytes: 4000, Backups: 200})
			all := strings.Join(numbered(20000, 30), "")
			pumpAll(t, f, pipeFrom(t, all, true))
			is.True(f.Rotations() >= 50)
			checkFiles(t, path, 4000, all)
		})
	}
}

// The point of Pump: a pipe that says nothing holds no goroutine, and the next
// byte is still moved.
func TestPumpHoldsNoGoroutineWhileIdle(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path})
	r, w := blockingPipe(t)
	defer w.Close()
	readable.once.Do(readable.start) // the shared waiter's goroutine is not the pump's

	const n = 50
	base := runtime.NumGoroutine()
	done := make(chan struct{}, n)
	pipes := []*os.File{r}
	for range n - 1 {
		var p [2]int
		is.NoErr(syscall.Pipe2(p[:], syscall.O_CLOEXEC))
		pipes = append(pipes, os.NewFile(uintptr(p[0]), "r"))
		defer os.NewFile(uintptr(p[1]), "w").Close()
	}
	for _, p := range pipes {
		f.Pump(p, func() { done <- struct{}{} })
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= base })

	_, err := w.WriteString("hello\n")
	is.NoErr(err)
	waitFor(t, func() bool { b, _ := os.ReadFile(path); return string(b) == "hello\n" })
	waitFor(t, func() bool { return runtime.NumGoroutine() <= base }) // idle again
	w.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no end reported after the writer closed")
	}
}

// Once the file is closed (its program removed), the pump still drains the pipe so
// a writer left holding it never blocks, and reports the end.
func TestPumpDrainsAfterClose(t *testing.T) {
	is := is.New(t)
	f := open(t, plan.Log{Path: filepath.Join(t.TempDir(), "a.log")})
	is.NoErr(f.Close())
	all := strings.Repeat("x", 4<<20) // more than a pipe holds
	done := make(chan struct{})
	f.Pump(pipeFrom(t, all, true), func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the pipe was not drained")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// readNow never blocks: EAGAIN on an empty pipe, the bytes when some wait, (0, nil)
// at end of input; with preadv2(RWF_NOWAIT) and with its poll(2) fallback.
func TestReadNow(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		is := is.New(t)
		noWait.Store(fallback)
		var fds [2]int
		is.NoErr(syscall.Pipe2(fds[:], syscall.O_CLOEXEC))
		buf := make([]byte, 16)
		_, err := readNow(fds[0], buf)
		is.Equal(err, syscall.EAGAIN)
		syscall.Write(fds[1], []byte("hi"))
		n, err := readNow(fds[0], buf)
		is.NoErr(err)
		is.Equal(string(buf[:n]), "hi")
		syscall.Close(fds[1])
		n, err = readNow(fds[0], buf)
		is.Equal(n, 0)
		is.NoErr(err)
		syscall.Close(fds[0])
	}
	noWait.Store(false)
}

// A pipe is enlarged to 1 MiB once a read finds it busy, not before: a quiet program's
// pipes keep the kernel's 64 KiB (and cost no fcntl at spawn). Root only (see growPipe).
func TestPumpGrowsBusyPipesOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("pipes are enlarged only as root")
	}
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path})
	r, w := blockingPipe(t)
	size := func() int {
		n, err := unix.FcntlInt(w.Fd(), unix.F_GETPIPE_SZ, 0)
		is.NoErr(err)
		return n
	}
	done := make(chan struct{})
	f.Pump(r, func() { close(done) })
	written := 0
	fileSize := func() int {
		st, err := os.Stat(path)
		if err != nil {
			return 0
		}
		return int(st.Size())
	}
	_, err := w.Write([]byte("quiet\n"))
	is.NoErr(err)
	written += 6
	waitFor(t, func() bool { return fileSize() == written })
	is.Equal(size(), 64<<10) // a line: not busy
	block := make([]byte, 256<<10)
	for range 8 { // 2 MiB in big writes: the pipe fills
		n, err := w.Write(block)
		is.NoErr(err)
		written += n
	}
	waitFor(t, func() bool { return fileSize() == written })
	is.Equal(size(), 1<<20)
	w.Close()
	<-done
}

// A small pipe (a user past the pipe-buffer quota gets 4-8 KiB ones) is not paused on
// after a read of half of it: the child, blocked on the full pipe, waited out each pause
// (8 MB/s). A default one keeps coalescing below 32 KiB.
func TestPumpPausesByPipeSize(t *testing.T) {
	is := is.New(t)
	f := open(t, plan.Log{Path: filepath.Join(t.TempDir(), "a.log")})
	for _, c := range []struct{ size, pause int }{{8 << 10, 4 << 10}, {64 << 10, coalesceBelow}} {
		r, w := blockingPipe(t)
		_, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, c.size)
		is.NoErr(err)
		_, err = w.Write([]byte("line\n"))
		is.NoErr(err)
		p := &pump{f: f, r: r, fd: int(r.Fd())}
		is.Equal(p.drain(), syscall.EAGAIN)
		is.Equal(p.pause, c.pause)
		r.Close()
		w.Close()
	}
}

// Writes that land while a pump goes idle race its wait for the next byte: every line
// arrives once, in order. Writers pause at random so their pumps go idle thousands of
// times.
func TestPumpIdleRacesKeepOrder(t *testing.T) {
	const pipes, lines = 8, 3000
	done := make(chan struct{}, pipes)
	paths := make([]string, pipes)
	for i := range pipes {
		paths[i] = filepath.Join(t.TempDir(), "a.log")
		f := open(t, plan.Log{Path: paths[i]})
		var fds [2]int
		if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		f.Pump(os.NewFile(uintptr(fds[0]), "r"), func() { done <- struct{}{} })
		go func() {
			w := os.NewFile(uintptr(fds[1]), "w")
			defer w.Close()
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for n := range lines {
				fmt.Fprintf(w, "%d\n", n)
				if rng.IntN(4) == 0 {
					time.Sleep(time.Duration(rng.IntN(50)) * time.Microsecond) // the pump goes idle
				}
			}
		}()
	}
	for range pipes {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("a pump reported no end")
		}
	}
	var want strings.Builder
	for n := range lines {
		fmt.Fprintf(&want, "%d\n", n)
	}
	for _, p := range paths {
		if got := read(t, p); got != want.String() {
			t.Fatalf("%s: %d bytes, want %d, in order", p, len(got), want.Len())
		}
	}
}

// One write bigger than the pipe, into a pump gone idle: the writer blocks mid-write on
// the full pipe, and the pump must hear of the bytes then, not once the write returns.
// (inotify, tried to keep pipes unpolled, reports a write only at its end: this hung.)
func TestPumpBigWriteIntoIdlePipe(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path})
	r, w := blockingPipe(t)
	done := make(chan struct{})
	f.Pump(r, func() { close(done) })
	_, err := w.WriteString("first\n")
	is.NoErr(err)
	waitFor(t, func() bool { b, _ := os.ReadFile(path); return string(b) == "first\n" })
	waitFor(t, func() bool { return readable.waiting(int(r.Fd())) }) // idle
	// More than the 64 KiB pipe holds.
	big := strings.Repeat("x", 1<<20) + "\n"
	_, err = w.WriteString(big)
	is.NoErr(err)
	w.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the pump did not drain a write bigger than its idle pipe")
	}
	is.Equal(len(read(t, path)), len("first\n")+len(big))
}

// blockingPipe makes a pipe as the launcher does for a log (blocking, out of Go's
// netpoller); both ends are closed when the test ends.
func blockingPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w = os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// A stream that ends mid-line (a process exiting after "Traceback..." without its
// newline) has that line ended: the next run's first line starts a line of its own.
func TestPumpEndsAnUnfinishedLine(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path})
	pumpAll(t, f, pipeFrom(t, "first run, last words", true))
	pumpAll(t, f, pipeFrom(t, "second run\n", true))
	is.Equal(read(t, path), "first run, last words\nsecond run\n")
}

// waiting says whether a notify of w for fd is pending (the fd is in the epoll set).
func (w *waiter) waiting(fd int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.ready[int32(fd)]
	return ok
}
