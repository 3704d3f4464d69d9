package builtins

import (
	"fmt"
	"time"

	"go.starlark.net/starlark"
)

// DefaultMaxMemory bounds how much a script may grow the heap. Starlark counts steps, not
// bytes: `s = s + s` forty times is a few dozen steps and a terabyte, and an out-of-memory
// error is fatal to the whole process (the daemon re-evaluates on reload).
const DefaultMaxMemory = 512 << 20

// memoryCheckEvery is how often memory is sampled; one doubling of a large value takes
// longer than this, so a runaway script overshoots the limit by about one doubling.
const memoryCheckEvery = 5 * time.Millisecond

// watchMemory cancels th once the process's memory has grown by more than limit since the
// call, until the returned stop is called. The memory is the process's, so concurrent
// evaluations share the budget: a guard against runaway scripts, not an accounting of
// each one.
func watchMemory(th *starlark.Thread, limit uint64) (stop func()) {
	base := memBytes()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(memoryCheckEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if grown := memBytes(); grown > base && grown-base > limit {
					th.Cancel(fmt.Sprintf("memory limit exceeded (the script grew memory by more than %d MiB)", limit>>20))
					return
				}
			}
		}
	}()
	return func() { close(done) }
}
