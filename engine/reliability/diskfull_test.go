package reliability_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ticker is a python3 child that writes a numbered line of ~100 bytes every 5 ms,
// flushing each: a full disk's last page fills within a fraction of a second.
const ticker = `import sys, time
i = 0
while True:
    sys.stdout.write("line %d %s\n" % (i, "x" * 90))
    sys.stdout.flush()
    i += 1
    time.sleep(0.005)`

// TestLogFolderFullOrUnwritable: the bundle's log folder is a small tmpfs. Once it is full
// (a filler file up to ENOSPC) or read-only, the program keeps running with the same pid,
// `status` shows the log error in its description and the daemon's log announces it;
// once the filler is gone (or the folder is writable again), new numbered lines reach the
// log file and the error leaves `status`. Root only (mount).
func TestLogFolderFullOrUnwritable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	t.Run("full", func(t *testing.T) {
		logFolderCase(t, "", "no space left on device", func(t *testing.T, mnt string) func() {
			filler := filepath.Join(mnt, "filler")
			f, err := os.Create(filler)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			block := make([]byte, 64<<10)
			for {
				if _, err := f.Write(block); err != nil {
					if !errors.Is(err, syscall.ENOSPC) {
						t.Fatalf("filling the tmpfs: %v", err)
					}
					break
				}
			}
			return func() {
				if err := os.Remove(filler); err != nil {
					t.Fatal(err)
				}
			}
		})
	})
	t.Run("readonly", func(t *testing.T) {
		// Read-only from the start: a remount to ro refuses while the log is open for
		// writing, and chmod does not stop root.
		logFolderCase(t, "ro", "read-only file system", func(t *testing.T, mnt string) func() {
			return func() {
				if out, err := exec.Command("mount", "-o", "remount,rw", mnt).CombinedOutput(); err != nil {
					t.Fatalf("remount rw: %v %s", err, out)
				}
			}
		})
	})
}

// logFolderCase mounts a 512 KiB tmpfs (with extra mount options opts) as the bundle's
// log folder, starts a ticker logging into it, breaks the folder with breakIt once lines
// flow (at once when opts make it unwritable), and checks the failure and the recovery
// that breakIt's result brings.
func logFolderCase(t *testing.T, opts, wantErr string, breakIt func(t *testing.T, mnt string) (repair func())) {
	b := newBundle(t, fmt.Sprintf(`
program(name = "w", command = ["python3", "-c", %q], env = TOKEN, start_secs = 0,
        stop_timeout = "2s", stdout = log("log/w.log", max_bytes = 0))
`, ticker))
	mnt := filepath.Join(b.dir, "log") // fresh: the bundle's temp dir is new
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	mountOpts := "size=512k"
	if opts != "" {
		mountOpts += "," + opts
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", mountOpts, "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("mount -t tmpfs: %v %s", err, out)
	}
	// Registered after newBundle's cleanup and before the daemon's, so it runs after the
	// daemon is killed (nothing holds the log open) and before the bundle is removed.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v %s; detaching lazily", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	logFile := filepath.Join(mnt, "w.log")

	d := b.up(t)
	pid := d.allRunning(t, 1, 15*time.Second)["w"].Pid
	if opts == "" { // writable at first: break it while lines flow
		eventually(t, 10*time.Second, "lines in the log", func() bool { return len(numbers(logFile)) >= 5 },
			func() string { return fmt.Sprint(d.status()) })
	}
	repair := breakIt(t, mnt)
	broken := time.Now()

	// The error shows in status, the process keeps running with its pid, the daemon says so.
	var desc string
	eventually(t, 10*time.Second, "the log error in status", func() bool {
		desc = d.status()["w"].Description
		return strings.Contains(desc, "log: ") && strings.Contains(desc, wantErr)
	}, func() string { return "description: " + desc })
	shown := time.Since(broken)
	eventually(t, 5*time.Second, "the daemon's log to announce the error", func() bool {
		out := d.out.String()
		return strings.Contains(out, "w: log: ") && strings.Contains(out, wantErr)
	}, func() string { return "daemon output:\n" + tail(d.out.String(), 2000) })
	if p := d.status()["w"]; p.State != "RUNNING" || p.Pid != pid {
		t.Fatalf("w is %s pid %d, want RUNNING pid %d: a log error must not stop it", p.State, p.Pid, pid)
	}
	// The error was seen, so a write failed: every line from here on was never written.
	before := numbers(logFile)
	last := -1
	if len(before) > 0 {
		last = before[len(before)-1]
	}

	repair()
	repaired := time.Now()
	var after []int
	eventually(t, 10*time.Second, "new lines in the log", func() bool {
		after = numbers(logFile)
		return len(after) >= len(before)+5
	}, func() string {
		return fmt.Sprintf("%d lines before, %d now; status %v", len(before), len(after), d.status())
	})
	resumed := time.Since(repaired)
	fresh := after[len(before):]
	if fresh[0] <= last+1 {
		t.Errorf("first line after the repair is %d, last before %d: no line was dropped while the folder was broken?", fresh[0], last)
	}
	for i := 1; i < len(fresh); i++ {
		if fresh[i] != fresh[i-1]+1 {
			t.Errorf("lines after the repair skip: %v", fresh)
			break
		}
	}
	eventually(t, 5*time.Second, "the log error to leave status", func() bool {
		desc = d.status()["w"].Description
		return !strings.Contains(desc, "log: ")
	}, func() string { return "description: " + desc })
	if p := d.status()["w"]; p.State != "RUNNING" || p.Pid != pid {
		t.Errorf("w is %s pid %d after the repair, want RUNNING pid %d", p.State, p.Pid, pid)
	}
	t.Logf("error in status %s after the break; lines again %s after the repair (last line before %d, first after %d); status cleared",
		shown.Round(time.Millisecond), resumed.Round(time.Millisecond), last, fresh[0])

	d.shutdown(t, 10*time.Second)
}

var lineRE = regexp.MustCompile(`^line (\d+) x{90}$`)

// numbers returns the numbers of the whole "line N" lines of path, in file order. A line
// torn by the full disk (its rest dropped) is glued to a later one and matches nothing.
func numbers(path string) []int {
	data, _ := os.ReadFile(path)
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i] // the unfinished last line is not whole yet
	} else {
		return nil
	}
	var out []int
	for _, l := range strings.Split(string(data), "\n") {
		if m := lineRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
	}
	return out
}
