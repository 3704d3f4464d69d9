package logs

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/starvisor/starvisor/engine/plan"
)

// TestRandomWritesRotateExactly: writes of random sizes (a byte to 300 KiB, so both
// the chatty path and the reserving one), lines of random lengths (some longer than
// max_bytes), random max_bytes and backups. Whatever was kept is exactly the tail of
// what was written, starting at a file boundary; no file is over max_bytes or ends
// mid-line unless the line alone was too long; and after Close no file holds blocks
// reserved past its end.
func TestRandomWritesRotateExactly(t *testing.T) {
	for seed := range 12 {
		rng := rand.New(rand.NewPCG(uint64(seed), 5))
		limit := int64([]int{4 << 10, 100 << 10, 1 << 20}[rng.IntN(3)])
		backupsN := rng.IntN(4)
		path := filepath.Join(t.TempDir(), "r.log")
		f := open(t, plan.Log{Path: path, MaxBytes: limit, Backups: backupsN})
		var stream bytes.Buffer
		for i := 0; stream.Len() < 2<<20; i++ {
			n := 1 + rng.IntN(80)
			if rng.IntN(50) == 0 {
				n = int(limit) + rng.IntN(1000) // longer than a whole file
			}
			line := append(bytes.Repeat([]byte{byte('a' + i%26)}, n-1), '\n')
			stream.Write(line)
		}
		all := stream.Bytes()
		for p := all; len(p) > 0; {
			n := 1 + rng.IntN(300<<10)
			if rng.IntN(3) == 0 {
				n = 1 + rng.IntN(200)
			}
			n = min(n, len(p))
			if _, err := f.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		files := backups(t, path)
		if len(files) > backupsN+1 {
			t.Fatalf("seed %d: %d files for %d backups", seed, len(files), backupsN)
		}
		kept := []byte{}
		for _, c := range files {
			kept = append(kept, c...)
		}
		if !bytes.HasSuffix(all, kept) {
			t.Fatalf("seed %d (max %d, backups %d): the %d bytes kept are not the tail of the %d written", seed, limit, backupsN, len(kept), len(all))
		}
		for i, c := range files {
			if int64(len(c)) > limit {
				t.Errorf("seed %d: file %d of %d: %d bytes > max %d", seed, i, len(files), len(c), limit)
			}
			if i < len(files)-1 && len(c) > 0 && c[len(c)-1] != '\n' && int64(len(c)) < limit {
				t.Errorf("seed %d: file %d of %d ends mid-line at %d bytes", seed, i, len(files), len(c))
			}
			name := path
			if back := len(files) - 1 - i; back > 0 {
				name = fmt.Sprintf("%s.%d", path, back)
			}
			if blocks, size := allocated(t, name); blocks > size+64<<10 {
				t.Errorf("seed %d: %s: %d bytes of blocks for %d bytes after close", seed, filepath.Base(name), blocks, size)
			}
		}
	}
}
