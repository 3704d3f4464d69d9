package reliability_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// writer is a python3 child that writes n numbered lines to stdout, flushing each, then
// SIGKILLs itself: whatever sits in the pipe when it dies must still reach the log.
const writer = `import os, sys
n = int(sys.argv[1])
for i in range(n):
    sys.stdout.write("line %06d %s\n" % (i, "x" * (i % 37)))
    sys.stdout.flush()
os.kill(os.getpid(), 9)`

// TestNoLostLogLines: one program killed right after a burst of lines, one writing across
// dozens of rotations: every line written before it died is in its log files, in order,
// none torn or doubled.
func TestNoLostLogLines(t *testing.T) {
	const killedN, rotatedN = 20000, 20000
	b := newBundle(t, fmt.Sprintf(`
W = %q
program(name = "killed", command = ["python3", "-c", W, "%d"], env = TOKEN, start_secs = 0,
        autorestart = False, stdout = log("log/killed.log", max_bytes = 0))
program(name = "rotated", command = ["python3", "-c", W, "%d"], env = TOKEN, start_secs = 0,
        autorestart = False, stdout = log("log/rotated.log", max_bytes = "16KB", backups = 100))
`, writer, killedN, rotatedN))
	d := b.up(t)
	logDir := filepath.Join(b.dir, "log")

	check := func(name string, n int, files []string) {
		t.Helper()
		var lines []string
		// The engine learns of the exit from wait4, not from the pipe's end, so the last
		// lines may reach the file a little after EXITED: poll for them.
		eventually(t, 20*time.Second, name+"'s lines in its log", func() bool {
			lines = readLines(t, files...)
			return len(lines) >= n
		}, func() string { return fmt.Sprintf("%d of %d lines; status %v", len(lines), n, d.status()) })
		if len(lines) != n {
			t.Fatalf("%s: %d lines in the log, want %d", name, len(lines), n)
		}
		for i, l := range lines {
			want := fmt.Sprintf("line %06d ", i) + repeatX(i%37)
			if l != want {
				t.Fatalf("%s: line %d is %q, want %q (lost, reordered or torn)", name, i, l, want)
			}
		}
	}
	check("killed", killedN, []string{filepath.Join(logDir, "killed.log")})

	// Rotated files, oldest first: rotated.log.N ... rotated.log.1, rotated.log.
	eventually(t, 20*time.Second, "rotated to exit", func() bool {
		return d.status()["rotated"].State == "EXITED"
	}, func() string { return fmt.Sprint(d.status()) })
	var files []string
	for i := 100; i >= 1; i-- {
		files = append(files, filepath.Join(logDir, "rotated.log."+strconv.Itoa(i)))
	}
	files = append(files, filepath.Join(logDir, "rotated.log"))
	check("rotated", rotatedN, files)
	rotations := 0
	for _, f := range files[:100] {
		if len(readLines(t, f)) > 0 {
			rotations++
		}
	}
	if rotations < 20 {
		t.Errorf("only %d rotations; the test wants many", rotations)
	}
	t.Logf("%d lines killed mid-stream, %d lines across %d rotations: none lost", killedN, rotatedN, rotations)

	syscall.Kill(d.cmd.Process.Pid, syscall.SIGTERM)
	if code := d.wait(t, 10*time.Second); code != 0 {
		t.Errorf("up exited %d after SIGTERM; output:\n%s", code, d.out)
	}
}

func repeatX(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'x'
	}
	return string(b)
}
