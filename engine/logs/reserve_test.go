package logs

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// allocated is how many bytes of blocks the file holds (st_blocks), and its size.
func allocated(t *testing.T, path string) (blocks, size int64) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512, st.Size
}

// A flooding writer gets its blocks allocated ahead (reserve); what is left past the
// end is given back at rotation and at close, so a log never holds more than its bytes.
func TestBigWritesReserveAheadAndGiveBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	f := open(t, plan.Log{Path: path, MaxBytes: 12 << 20, Backups: 2})
	block := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	f.Write(block)
	if f.noReserve {
		t.Skip("no fallocate on this file system")
	}
	if blocks, size := allocated(t, path); blocks < size+4<<20 {
		t.Errorf("open file: %d bytes of blocks for %d bytes: nothing reserved ahead", blocks, size)
	}
	for range 12 { // past 12 MiB: one rotation
		f.Write(block)
	}
	if f.Rotations() != 1 {
		t.Fatalf("%d rotations, want 1", f.Rotations())
	}
	if blocks, size := allocated(t, path+".1"); blocks > size+64<<10 {
		t.Errorf("rotated file: %d bytes of blocks for %d bytes", blocks, size)
	}
	f.Close()
	if blocks, size := allocated(t, path); blocks > size+64<<10 {
		t.Errorf("closed file: %d bytes of blocks for %d bytes", blocks, size)
	}
}

// Small writes (a chatty program) reserve nothing.
func TestSmallWritesReserveNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	f := open(t, plan.Log{Path: path, MaxBytes: 50 << 20, Backups: 2})
	line := bytes.Repeat([]byte("x"), 1000)
	for range 200 {
		f.Write(line)
	}
	if blocks, size := allocated(t, path); blocks > size+64<<10 {
		t.Errorf("%d bytes of blocks for %d bytes", blocks, size)
	}
}

// Someone else truncated the file (copytruncate): closing it must not grow it back.
func TestCloseLeavesAFileCutByOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	f := open(t, plan.Log{Path: path, MaxBytes: 50 << 20, Backups: 2})
	f.Write(bytes.Repeat([]byte("y"), 1<<20))
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, size := allocated(t, path); size != 0 {
		t.Errorf("size %d after close, want the 0 another process left", size)
	}
}

// A log that got one burst and then nothing (a start-up dump) gives its reserved blocks
// back once it was quiet for quietAfter: it kept 8 MB of disk while the daemon ran.
func TestQuietLogGivesReservedBlocksBack(t *testing.T) {
	quietAfter = 20 * time.Millisecond
	t.Cleanup(func() { quietAfter = time.Second })
	path := filepath.Join(t.TempDir(), "x.log")
	f := open(t, plan.Log{Path: path, MaxBytes: 50 << 20, Backups: 2})
	f.Write(bytes.Repeat([]byte("x"), 100<<10))
	if f.noReserve {
		t.Skip("no fallocate on this file system")
	}
	if blocks, size := allocated(t, path); blocks < size+4<<20 {
		t.Fatalf("%d bytes of blocks for %d bytes: nothing reserved", blocks, size)
	}
	f.Quiet()
	deadline := time.Now().Add(10 * time.Second)
	for {
		blocks, size := allocated(t, path)
		if blocks <= size+64<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d bytes of blocks for %d bytes", blocks, size)
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.Write([]byte("more\n")) // the file stays usable, its size right
	if _, size := allocated(t, path); size != 100<<10+5 {
		t.Errorf("size %d", size)
	}
}
