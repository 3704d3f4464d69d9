package builtins

import (
	"fmt"
	"math"
	"slices"
	"sync"
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
	stop        *stopper
}

func newMemoryGuard(limit uint64, stop *stopper) *memoryGuard {
	return &memoryGuard{base: memBytes(), limit: limit, last: time.Now(), stop: stop}
}

// over samples the memory and cancels th when it grew past the limit.
func (g *memoryGuard) over(th *starlark.Thread) bool {
	if grown := memBytes(); grown > g.base && grown-g.base > g.limit {
		g.stop.cancel(th, fmt.Sprintf("memory limit exceeded (the script grew memory by more than %d MiB)", g.limit>>20))
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

// sizedBuiltins are Starlark's builtins that allocate room for all their argument's
// elements at once, from its length: list(range(1 << 40)) asked the Go runtime for
// 16 TiB in one allocation, whose failure is fatal to the process (a 160-line
// runtime trace) before the memory guard can look. Each is wrapped to refuse first,
// as "x" * n is refused.
var sizedBuiltins = []string{"list", "tuple", "sorted", "reversed", "enumerate", "zip", "bytes"}

// loopingBuiltins walk their argument in Go, taking no step a cancellation could stop:
// over a range of billions one runs past the timeout (see hardStop). Each is wrapped to
// note where it was called while it walks a long argument, for that error.
var loopingBuiltins = []string{"max", "min", "set", "any", "all", "dict"}

// longWalk is how many elements make a walk long enough to note.
const longWalk = 1 << 20

// guardSized puts the wrapped sizedBuiltins and loopingBuiltins among the predeclared
// names, unless a module declares one of those names itself.
func guardSized(predeclared starlark.StringDict) {
	for _, name := range append(slices.Clone(sizedBuiltins), loopingBuiltins...) {
		inner, ok := starlark.Universe[name].(*starlark.Builtin)
		if _, taken := predeclared[name]; taken || !ok {
			continue
		}
		sized := slices.Contains(sizedBuiltins, name)
		predeclared[name] = starlark.NewBuiltin(name, func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			s, err := stateFrom(th)
			if err != nil {
				return nil, err
			}
			if sized {
				if err := fitsMemory(name, args, s.maxMem); err != nil {
					return nil, err
				}
			}
			if slices.ContainsFunc(args, func(a starlark.Value) bool { return starlark.Len(a) >= longWalk }) {
				defer s.walking(fmt.Sprintf("%s: %s()", th.CallFrame(1).Pos, name))()
			}
			return inner.CallInternal(th, args, kwargs)
		})
	}
}

// fitsMemory refuses args a sized builtin could not hold within limit.
func fitsMemory(name string, args starlark.Tuple, limit uint64) error {
	if limit == 0 {
		limit = DefaultMaxMemory
	}
	shortest := math.MaxInt // zip is as long as its shortest argument
	for _, a := range args {
		shortest = min(shortest, starlark.Len(a))
	}
	for _, a := range args {
		if _, ok := a.(starlark.Iterable); !ok {
			continue // a string: its own error says it is not iterable
		}
		n := starlark.Len(a)
		if name == "zip" {
			n = shortest
		}
		// A value is an interface: two words.
		if n > 0 && uint64(n) > limit/16 {
			return fmt.Errorf("%s: a %s of %d elements is over the memory limit (%d MiB)", name, a.Type(), n, limit>>20)
		}
	}
	return nil
}

// walking notes at (a call's position and name) as the long walk under way, until
// the returned func puts back the one it interrupted (a key function walking too).
func (s *evalState) walking(at string) (done func()) {
	prev := s.walk.Swap(&at)
	return func() { s.walk.Store(prev) }
}

// hardStop is how long a cancelled evaluation may take to stop. Starlark looks for a
// cancellation between steps, and a builtin looping in Go takes none: max(range(1 << 40))
// ran on for hours past the timeout, set(range(1 << 40)) grew memory until the kernel
// killed the process. Eval then gives up on it (see stopper).
var hardStop = 2 * time.Second

// stopper cancels a thread from outside it (the timeout, the memory guard) and
// remembers the first reason, for when the thread does not stop.
type stopper struct {
	once sync.Once
	why  string
	done chan struct{} // closed by the first cancel
}

func newStopper() *stopper { return &stopper{done: make(chan struct{})} }

func (c *stopper) cancel(th *starlark.Thread, why string) {
	th.Cancel(why)
	c.once.Do(func() { c.why = why; close(c.done) })
}

// wait returns run's result, or an error once run has not returned hardStop after a
// cancel, said at where() (the call's position and name, when known) or else entry. run then goes on in its goroutine: the process must exit soon (the CLI does
// on an error; a daemon's reload evaluates in a child process).
func (c *stopper) wait(entry string, where func() string, run func() error) error {
	res := make(chan error, 1)
	go func() { res <- run() }()
	select {
	case err := <-res:
		return err
	case <-c.done:
	}
	t := time.NewTimer(hardStop)
	defer t.Stop()
	select {
	case err := <-res:
		return err
	case <-t.C:
		if at := where(); at != "" {
			return fmt.Errorf("%s: %s, in a call that does not stop (over an argument of billions?)", at, c.why)
		}
		return fmt.Errorf("%s: %s, in a call that does not stop (a builtin such as max(), set() or list.extend() over a range of billions?)", entry, c.why)
	}
}
