package procfs

import (
	"os/exec"
	"testing"

	"github.com/matryer/is"
)

// The start time computed from the clock around a spawn is the one /proc shows, and a
// spawn that straddles a tick is not guessed.
func TestStartTicksBetweenMatchesProc(t *testing.T) {
	is := is.New(t)
	known := 0
	for range 20 {
		before := BootNanos()
		cmd := exec.Command("sleep", "60")
		is.NoErr(cmd.Start())
		after := BootNanos()
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		var buf [BufSize]byte
		st, ok := Read(cmd.Process.Pid, buf[:])
		is.True(ok)
		if ticks, ok := StartTicksBetween(before, after); ok {
			known++
			is.Equal(ticks, st.StartTicks)
		}
	}
	is.True(known > 0) // 20 spawns of a few ms each cannot all straddle a 10 ms tick
}

func TestStartTicksBetweenBoundaries(t *testing.T) {
	is := is.New(t)
	const ms = 1_000_000
	got, ok := StartTicksBetween(1000*ms+2*ms, 1000*ms+5*ms)
	is.True(ok)
	is.Equal(got, uint64(100))
	_, ok = StartTicksBetween(1009*ms, 1011*ms) // across a tick
	is.True(!ok)
	_, ok = StartTicksBetween(1000*ms+tickSlack/2, 1000*ms+5*ms) // too near the edge
	is.True(!ok)
	_, ok = StartTicksBetween(1009*ms+tickSlack, 1010*ms-tickSlack/2)
	is.True(!ok)
	_, ok = StartTicksBetween(0, 5*ms) // the clock could not be read
	is.True(!ok)
	_, ok = StartTicksBetween(5*ms, 4*ms)
	is.True(!ok)
}
