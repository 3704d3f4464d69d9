package logs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
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
	var fds [2]int
	is.NoErr(syscall.Pipe2(fds[:], syscall.O_CLOEXEC)) // blocking, as the launcher makes them
	r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
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
	var fds [2]int
	is.NoErr(syscall.Pipe2(fds[:], syscall.O_CLOEXEC))
	r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
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
		var fds [2]int
		is.NoErr(syscall.Pipe2(fds[:], syscall.O_CLOEXEC))
		r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
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

// An idle pump waits on an inotify watch of its pipe, not in the epoll set: a pipe
// polled once is marked for good, and each later write into it pays a wake-up (see
// pipewatch_linux.go). Both ways, bytes and the end written before the pump armed
// its wait (which raise no event) are still seen, and later ones too.
func TestPumpWaitsOnInotify(t *testing.T) {
	readable.once.Do(readable.start)
	if readable.ino < 0 {
		t.Skip("this kernel does not report every write into a pipe to inotify")
	}
	for _, off := range []bool{false, true} {
		t.Run(map[bool]string{false: "inotify", true: "epoll"}[off], func(t *testing.T) {
			is := is.New(t)
			noInotify.Store(off)
			t.Cleanup(func() { noInotify.Store(false) })
			path := filepath.Join(t.TempDir(), "a.log")
			f := open(t, plan.Log{Path: path})

			var fds [2]int
			is.NoErr(syscall.Pipe2(fds[:], syscall.O_CLOEXEC))
			r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
			_, err := w.WriteString("before\n") // before Pump: no watch sees it
			is.NoErr(err)
			done := make(chan struct{})
			f.Pump(r, func() { close(done) })
			waitFor(t, func() bool { b, _ := os.ReadFile(path); return string(b) == "before\n" })

			var st syscall.Stat_t
			is.NoErr(syscall.Fstat(fds[0], &st))
			watched := func() bool { return watches(t, readable.ino, st.Ino) }
			polled := func() bool { return watches(t, readable.epfd, uint64(fds[0])) }
			waitFor(t, func() bool { return watched() != polled() })
			is.Equal(watched(), !off)

			_, err = w.WriteString("after\n")
			is.NoErr(err)
			waitFor(t, func() bool { b, _ := os.ReadFile(path); return string(b) == "before\nafter\n" })
			waitFor(t, func() bool { return watched() != polled() }) // armed again
			w.Close()
			<-done
			is.True(!watched())
		})
	}

	// The end alone, before any watch: the writer closed an empty pipe.
	is := is.New(t)
	f := open(t, plan.Log{Path: filepath.Join(t.TempDir(), "b.log")})
	var fds [2]int
	is.NoErr(syscall.Pipe2(fds[:], syscall.O_CLOEXEC))
	syscall.Close(fds[1])
	pumpAll(t, f, os.NewFile(uintptr(fds[0]), "r"))
}

// watches says whether fdinfo of fd, an inotify or epoll instance, lists what: a
// watched inode ("inotify wd:1 ino:<hex> ...") or a target fd ("tfd: <n> events: ...").
func watches(t *testing.T, fd int, what uint64) bool {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) >= 3 && fields[0] == "inotify":
			n, err := strconv.ParseUint(strings.TrimPrefix(fields[2], "ino:"), 16, 64)
			if err == nil && n == what {
				return true
			}
		case len(fields) >= 2 && fields[0] == "tfd:":
			if n, err := strconv.ParseUint(fields[1], 10, 64); err == nil && n == what {
				return true
			}
		}
	}
	return false
}

// Writes that land while a pump arms its wait race the watch's event against the
// pump's own look at the pipe: whichever wins, every line arrives once, in order.
// Writers pause at random so their pumps go idle thousands of times.
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

// The two ends of the race in idle, played in order: bytes that came before the watch
// are taken by the pump's own look, which cancels the watch; when the watch fired
// meanwhile, the look writes what it read and leaves the rest to the run the watch
// started, which waits for it: nothing is lost or reordered.
func TestPumpLookAfterArm(t *testing.T) {
	readable.once.Do(readable.start)
	if readable.ino < 0 {
		t.Skip("this kernel does not report every write into a pipe to inotify")
	}
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "a.log")
	f := open(t, plan.Log{Path: path})
	var fds [2]int
	is.NoErr(syscall.Pipe2(fds[:], syscall.O_CLOEXEC))
	r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	var st syscall.Stat_t
	is.NoErr(syscall.Fstat(fds[0], &st))
	done := make(chan struct{})
	p := &pump{f: f, r: r, fd: fds[0], done: func() { close(done) }}

	// Before the watch: no event; the look finds the bytes and takes the watch back.
	p.mu.Lock()
	_, err := w.WriteString("ab\n")
	is.NoErr(err)
	wd, ok := p.arm()
	is.True(ok)
	is.True(p.look(wd))
	is.True(!p.armed.Load())
	is.True(!watches(t, readable.ino, st.Ino))
	is.Equal(p.drain(), syscall.EAGAIN)
	is.Equal(read(t, path), "ab\n")

	// After the watch: it fires and starts a run, which waits for mu.
	wd, ok = p.arm()
	is.True(ok)
	_, err = w.WriteString("cd\n")
	is.NoErr(err)
	waitFor(t, func() bool { return !p.armed.Load() })
	is.True(!p.look(wd)) // read "c", and left "d\n" to the run
	is.Equal(read(t, path), "ab\nc")
	p.mu.Unlock()
	waitFor(t, func() bool { return read(t, path) == "ab\ncd\n" })
	w.Close()
	<-done
}
