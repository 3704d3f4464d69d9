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

// Why two watchers: a goroutine samples memory every memoryCheckEvery and cancels the
// thread, but while the script copies a large string (one step, not preemptible) a
// garbage collection waiting to stop the world holds that goroutine too, and once the
// copy ends the script's next step (the next doubling) usually starts before the
// goroutine runs: CI saw the step after 1 GiB fail with the runtime's fatal "out of
// memory". So the evaluating goroutine also looks itself, between steps: every
// memoryCheckSteps steps it reads the clock, and once memoryCheckEvery has passed, the
// memory. A doubling that takes longer than that is followed by a look before the next.
const (
	memoryCheckEvery = 5 * time.Millisecond
	memoryCheckSteps = 4
)

// memoryGuard cancels a thread once the process's memory has grown by more than limit
// since the guard was made. The memory is the process's, so concurrent evaluations
// share the budget: a guard against runaway scripts, not an accounting of each one.
type memoryGuard struct {
	base, limit uint64
	last        time.Time // the evaluating goroutine's last look (check)
}

func newMemoryGuard(limit uint64) *memoryGuard {
	return &memoryGuard{base: memBytes(), limit: limit, last: time.Now()}
}

// over samples the memory and cancels th when it grew past the limit.
func (g *memoryGuard) over(th *starlark.Thread) bool {
	if grown := memBytes(); grown > g.base && grown-g.base > g.limit {
		th.Cancel(fmt.Sprintf("memory limit exceeded (the script grew memory by more than %d MiB)", g.limit>>20))
		return true
	}
	return false
}

// check is the evaluating goroutine's look, between steps; it reads the memory at most
// once per memoryCheckEvery.
func (g *memoryGuard) check(th *starlark.Thread) {
	if now := time.Now(); now.Sub(g.last) >= memoryCheckEvery {
		g.last = now
		g.over(th)
	}
}

// watch samples the memory from a goroutine until the returned stop is called.
func (g *memoryGuard) watch(th *starlark.Thread) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(memoryCheckEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if g.over(th) {
					return
				}
			}
		}
	}()
	return func() { close(done) }
}
