package logs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// TestMain lets the test binary act as the child that floods a pipe:
// GO_WANT_HELPER_PROCESS=blocks TOTAL SIZE writes TOTAL bytes of 100-byte lines
// in SIZE-byte writes to stdout.
func TestMain(m *testing.M) {
	if os.Getenv("GO_WANT_HELPER_PROCESS") == "blocks" {
		total, _ := strconv.Atoi(os.Args[len(os.Args)-2])
		size, _ := strconv.Atoi(os.Args[len(os.Args)-1])
		line := append(bytes.Repeat([]byte("x"), 99), '\n')
		block := bytes.Repeat(line, size/len(line)+1)[:size]
		for total > 0 {
			n, err := syscall.Write(1, block[:min(size, total)])
			if err != nil {
				os.Exit(1)
			}
			total -= n
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// flood runs the helper child writing total bytes in writes of size into a pipe
// and captures it into f through Pump, as the launcher does. It returns the
// capture's wall time and this process's CPU time.
func flood(b *testing.B, f *File, total, size int) (wall, cpu time.Duration) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		b.Fatal(err)
	}
	r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	syscall.Syscall(syscall.SYS_FCNTL, r.Fd(), 1031 /* F_SETPIPE_SZ */, 1<<20)
	cmd := helper(total, size)
	cmd.Stdout = w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	before := cpuTime()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	w.Close()
	done := make(chan struct{})
	f.Pump(r, func() { close(done) })
	<-done
	wall = time.Since(start)
	cpu = cpuTime() - before
	if err := cmd.Wait(); err != nil {
		b.Fatalf("child: %v", err)
	}
	return wall, cpu
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCapture1GiB: one child writes 1 GiB in 1 MiB writes, captured into a
// file rotating at 50 MB with 10 backups (the default log spec).
func BenchmarkCapture1GiB(b *testing.B) {
	f, err := Open(plan.Log{Path: filepath.Join(b.TempDir(), "cap.log"), MaxBytes: 50 << 20, Backups: 10})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const total = 1 << 30
	var wall, cpu time.Duration
	for b.Loop() {
		w, c := flood(b, f, total, 1<<20)
		wall, cpu = wall+w, cpu+c
	}
	b.ReportMetric(float64(total)*float64(b.N)/wall.Seconds()/1e6, "MB/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/GiB")
	b.ReportMetric(float64(f.Rotations())/float64(b.N), "rotations/op")

	// The floor: the same bytes written from memory into the same kind of file, no
	// child and no pipe. What the file system costs on this machine.
	floor, err := Open(plan.Log{Path: filepath.Join(b.TempDir(), "floor.log"), MaxBytes: 50 << 20, Backups: 10})
	if err != nil {
		b.Fatal(err)
	}
	defer floor.Close()
	block := bytes.Repeat(append(bytes.Repeat([]byte("x"), 99), '\n'), 1<<20/100+1)[:1<<20]
	before, start := cpuTime(), time.Now()
	for range total / len(block) {
		floor.Write(block)
	}
	b.ReportMetric(float64(total)/time.Since(start).Seconds()/1e6, "floor-MB/s")
	b.ReportMetric((cpuTime() - before).Seconds(), "floor-cpu-s")
	if err := floor.Err(); err != nil {
		b.Fatal(err)
	}

	// What memory the kernel takes fresh costs this machine: the CPU to touch 256 MiB of
	// new anonymous pages once, per GiB. In a VM whose balloon reports free pages to the
	// host, each first touch is a host fault; the page cache pays it for every new page.
	mem, err := syscall.Mmap(-1, 0, 256<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		b.Fatal(err)
	}
	before = cpuTime()
	for i := 0; i < len(mem); i += 4096 {
		mem[i] = 1
	}
	b.ReportMetric((cpuTime()-before).Seconds()*4, "fresh-page-cpu-s/GiB")
	syscall.Munmap(mem)
}

// BenchmarkLines: one child writes 1 M lines of 100 bytes, one write(2) each.
func BenchmarkLines(b *testing.B) {
	f, err := Open(plan.Log{Path: filepath.Join(b.TempDir(), "lines.log"), MaxBytes: 50 << 20, Backups: 10})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const lines = 1_000_000
	var wall, cpu time.Duration
	for b.Loop() {
		w, c := flood(b, f, lines*100, 100)
		wall, cpu = wall+w, cpu+c
	}
	b.ReportMetric(float64(lines)*float64(b.N)/wall.Seconds(), "lines/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")

	// For scale: the same child writing straight into a file of its own, no daemon.
	out, err := os.Create(filepath.Join(b.TempDir(), "direct.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	cmd := helper(lines*100, 100)
	cmd.Stdout = out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(lines)/time.Since(start).Seconds(), "direct-lines/s")

	// The ceiling of any capture: the child writing into a pipe whose reader throws the
	// bytes away, reading 1 MiB at a time with 1 ms pauses (nobody to wake).
	b.ReportMetric(float64(lines)/discardRun(b, lines*100, 100, false).Seconds(), "discard-lines/s")
	// The same after one poll(2) of the pipe. Linux (5.16+) then marks the pipe for good,
	// and each write wakes its wait queue, empty or not. Pump must poll a quiet pipe for
	// its first byte (the alternative, a thread blocked in read per pipe, costs the
	// memory the daemon is measured on), so this is the ceiling for Pump.
	b.ReportMetric(float64(lines)/discardRun(b, lines*100, 100, true).Seconds(), "discard-polled-lines/s")
}

// discardRun runs the helper into a 1 MiB pipe drained by a reader that keeps nothing,
// and returns the wall time until the end of its output; polled: the pipe was polled
// once before.
func discardRun(b *testing.B, total, size int, polled bool) time.Duration {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		b.Fatal(err)
	}
	r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	defer r.Close()
	syscall.Syscall(syscall.SYS_FCNTL, r.Fd(), 1031 /* F_SETPIPE_SZ */, 1<<20)
	if polled {
		pollIn1(fds[0], 0)
	}
	cmd := helper(total, size)
	cmd.Stdout = w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	w.Close()
	syscall.SetNonblock(fds[0], true)
	buf := make([]byte, 1<<20)
	for {
		n, err := syscall.Read(fds[0], buf)
		if n == 0 && err == nil {
			break // end of output
		}
		if n < len(buf) {
			time.Sleep(time.Millisecond) // the reader's pause, not a test wait
		}
	}
	wall := time.Since(start)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("child: %v", err)
	}
	return wall
}

// helper is the flooding child: total bytes of 100-byte lines in writes of size.
func helper(total, size int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$", strconv.Itoa(total), strconv.Itoa(size))
	cmd.Env = append(os.Environ(), "GO_WANT_HELPER_PROCESS=blocks")
	return cmd
}
