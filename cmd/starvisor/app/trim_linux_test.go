package app

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	"golang.org/x/sys/unix"
)

func TestUntouchedSpansKeepsWrittenSharedAndOtherFiles(t *testing.T) {
	is := is.New(t)
	mapping := func(head string, anon, swap int) string {
		return fmt.Sprintf("%s\nSize: 8 kB\nRss: 8 kB\nAnonymous: %d kB\nSwap: %d kB\nVmFlags: rd ex\n", head, anon, swap)
	}
	smaps := mapping("00400000-00800000 r-xp 00000000 fe:00 42 /opt/star visor/starvisor", 0, 0) + // code
		mapping("00800000-00a00000 r--p 00400000 fe:00 42 /opt/star visor/starvisor", 0, 0) + // constants
		mapping("00a00000-00a10000 rw-p 00600000 fe:00 42 /opt/star visor/starvisor", 0, 0) + // data: writable
		mapping("00a10000-00a20000 r--p 00610000 fe:00 42 /opt/star visor/starvisor", 4, 0) + // relocated, then read-only
		mapping("00a20000-00a30000 r--p 00620000 fe:00 42 /opt/star visor/starvisor", 0, 8) + // written, swapped out
		mapping("00a30000-00a40000 r--s 00630000 fe:00 42 /opt/star visor/starvisor", 0, 0) + // shared
		mapping("00b00000-00b40000 r-xp 00000000 fe:00 43 /usr/lib/libc.so.6", 0, 0) + // another file
		mapping("00c00000-00c40000 r-xp 00000000 00:2f 7 /merged/starvisor", 0, 0) + // overlay path, same file
		mapping("00d00000-00d01000 r-xp 00000000 00:00 0 [vdso]", 0, 0)
	spans := untouchedSpans([]byte(smaps), "/opt/star visor/starvisor", unix.Mkdev(0, 0x2f), 7)
	is.Equal(spans, []span{{0x400000, 0x800000}, {0x800000, 0xa00000}, {0xc00000, 0xc40000}})

	// A binary replaced while it runs: the kernel names both "... (deleted)".
	spans = untouchedSpans([]byte(mapping("00400000-00800000 r-xp 00000000 fe:00 42 /usr/bin/starvisor (deleted)", 0, 0)),
		"/usr/bin/starvisor (deleted)", 1, 1)
	is.Equal(spans, []span{{0x400000, 0x800000}})
}

// The test binary is such a binary: its code pages leave its resident memory, and it
// runs on (each page it needs again is mapped back).
func TestTrimCodeUnmapsTheBinarysPagesAndRunsOn(t *testing.T) {
	is := is.New(t)
	before := rssFileKiB(t, "/proc/self/status")
	n := trimCode()
	after := rssFileKiB(t, "/proc/self/status")
	t.Logf("unmapped %d KiB of mappings; RssFile %d -> %d KiB", n>>10, before, after)
	is.True(n > 0)
	is.True(after < before)
	// Code not run since: formatting, parsing, a map, a sort.
	m := map[string]int{}
	for i := range 1000 {
		m[strconv.Itoa(i)] = i
	}
	is.Equal(fmt.Sprintf("%d/%s", len(m), strings.Repeat("x", 3)), "1000/xxx")
}

// A daemon gives back the code pages its start ran once it has been quiet a while.
// Nobody asks it anything meanwhile: a status makes it sample for a minute, each round
// mapping some code back, and a loaded machine's test missed the moment in between.
func TestDaemonGivesBackCodePagesOnceQuiet(t *testing.T) {
	d := launchUnwatched(t, sleepers(3), 3)
	status := fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid)
	first := rssFileKiB(t, status)
	deadline := time.Now().Add(30 * time.Second)
	for {
		now := rssFileKiB(t, status)
		if now < first/2 {
			t.Logf("RssFile %d -> %d KiB", first, now)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("RssFile still %d KiB 30s after start (%d KiB once RUNNING)", now, first)
		}
		time.Sleep(pollEvery)
	}
}

func rssFileKiB(t *testing.T, status string) int {
	data, err := os.ReadFile(status)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

func BenchmarkTrimCode(b *testing.B) {
	for b.Loop() {
		trimCode()
	}
}
