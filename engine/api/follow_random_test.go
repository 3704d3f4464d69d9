package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/plan"
)

// syncBuffer is a bytes.Buffer safe to read while a copy writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFollowRandomWrites: `logs -f` on a log the daemon's writer rotates often, in
// writes that split lines anywhere, yields exactly the bytes written, in order: none
// lost when several rotations fall between two looks, none repeated when a rotation
// carries a partial line over to the new file. Between two points where the test
// waits for the follower to catch up, fewer rotations happen than there are backups
// (more, and lines are gone from disk before anyone could read them).
func TestFollowRandomWrites(t *testing.T) {
	old := followEvery
	followEvery = time.Millisecond
	t.Cleanup(func() { followEvery = old })
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			followRandom(t, seed)
		})
	}
}

func followRandom(t *testing.T, seed uint64) {

	rng := rand.New(rand.NewPCG(seed, 7))
	dir := t.TempDir()
	fb := &fakeBackend{p: testPlan(t, dir, "a")}
	const maxBytes, backups = 200, 6
	spec := plan.Log{Path: filepath.Join(dir, "a.log"), MaxBytes: maxBytes, Backups: backups}
	fb.p.Programs[0].Stdout = &spec
	f, err := logs.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want strings.Builder
	f.Write([]byte("start\n")) // the follower starts at this line
	want.WriteString("start\n")
	c, _, _ := serve(t, fb)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, err := c.Logs(ctx, []string{"a"}, Stdout, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got syncBuffer
	copied := make(chan struct{})
	go func() { io.Copy(&got, rc); close(copied) }()

	caughtUp := func() {
		deadline := time.Now().Add(10 * time.Second)
		for got.String() != want.String() {
			if time.Now().After(deadline) || !strings.HasPrefix(want.String(), got.String()) {
				g, w := got.String(), want.String()
				i := 0
				for i < len(g) && i < len(w) && g[i] == w[i] {
					i++
				}
				from := max(0, i-80)
				t.Fatalf("seed %d: the follower's %d bytes part from the %d written at %d:\ngot  %q\nwant %q",
					seed, len(g), len(w), i, g[from:min(len(g), i+80)], w[from:min(len(w), i+80)])
			}
			time.Sleep(time.Millisecond) // polling the follower's output
		}
	}
	line := 0
	for range 40 {
		// Up to two files' worth of bytes, in random pieces: a new file starts with up
		// to a line carried over, so that is at most four rotations.
		rotated := f.Rotations()
		budget := rng.IntN(2 * maxBytes)
		var burst []byte
		for len(burst) < budget {
			line++
			burst = fmt.Appendf(burst, "%d %s\n", line, strings.Repeat("x", rng.IntN(60)))
		}
		for len(burst) > 0 {
			n := min(len(burst), 1+rng.IntN(90))
			f.Write(burst[:n])
			want.Write(burst[:n])
			burst = burst[n:]
			if rng.IntN(8) == 0 {
				pause(rng)
			}
		}
		if err := f.Err(); err != nil {
			t.Fatal(err)
		}
		if n := f.Rotations() - rotated; n >= backups {
			t.Fatalf("%d rotations in one burst: lines fall off the backups before the follower can read them", n)
		}
		caughtUp()
	}
	cancel()
	<-copied
}

// pause lets the follower look in the middle of a burst, for up to 3 ms: timing
// variety, not a wait for anything.
func pause(rng *rand.Rand) {
	time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
}
