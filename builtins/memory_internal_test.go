package builtins

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"
)

func evalSource(t *testing.T, src string, o Options) error {
	t.Helper()
	o.File = filepath.Join(t.TempDir(), "deploy.star")
	if err := os.WriteFile(o.File, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	o.Print = io.Discard
	_, err := Eval(context.Background(), o)
	return err
}

// Builtins that allocate room for a huge range at once are refused at their call:
// the allocation's failure was the Go runtime's fatal error, a crash of the process.
func TestSizedBuiltinsRefuseHugeRanges(t *testing.T) {
	for _, call := range []string{"list", "tuple", "sorted", "reversed", "enumerate", "bytes"} {
		err := evalSource(t, "x = "+call+"(range(1 << 40))\n", Options{})
		if err == nil || !strings.Contains(err.Error(), "deploy.star:1:") ||
			!strings.Contains(err.Error(), call+": a range of 1099511627776 elements is over the memory limit (512 MiB)") {
			t.Errorf("%s: got %v", call, err)
		}
	}
	// zip is as long as its shortest argument.
	if err := evalSource(t, "x = zip(range(1 << 40), range(3))\nprogram(name = \"a\", command = \"sleep 1\")\n", Options{}); err != nil {
		t.Errorf("zip of a short range: %v", err)
	}
	if err := evalSource(t, "x = zip(range(1 << 40), range(1 << 35))\n", Options{}); err == nil || !strings.Contains(err.Error(), "zip: a range of 34359738368 elements") {
		t.Errorf("zip of two huge ranges: got %v", err)
	}
	if err := evalSource(t, "x = list(\"x\" * (1 << 28))\n", Options{}); err == nil || !strings.Contains(err.Error(), "want iterable") {
		t.Errorf("list of a long string: got %v", err)
	}
	if err := evalSource(t, "x = list(range(10))\nprogram(name = \"a\", command = \"sleep 1\")\n", Options{}); err != nil {
		t.Errorf("a small list: %v", err)
	}
}

type blockModule chan struct{}

func (blockModule) Name() string { return "block" }

func (b blockModule) Members() starlark.StringDict {
	return starlark.StringDict{
		"block": starlark.NewBuiltin("block", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			<-b
			return starlark.None, nil
		}),
		"endless": starlark.NewBuiltin("endless", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			return endless(b), nil
		}),
	}
}

// endless is a sequence of billions whose walk blocks at its first element, as a walk
// over range(1 << 40) takes hours.
type endless chan struct{}

func (endless) String() string        { return "endless" }
func (endless) Type() string          { return "endless" }
func (endless) Freeze()               {}
func (endless) Truth() starlark.Bool  { return true }
func (endless) Hash() (uint32, error) { return 0, nil }
func (endless) Len() int              { return 1 << 40 }
func (e endless) Iterate() starlark.Iterator {
	return endlessIter(e)
}

type endlessIter chan struct{}

func (it endlessIter) Next(*starlark.Value) bool { <-it; return false }
func (endlessIter) Done()                        {}

// A call that never looks at its cancellation (max over a huge range, a set of one)
// still ends the evaluation, hardStop after the timeout, with the timeout's reason.
func TestEvalReturnsFromACallThatDoesNotStop(t *testing.T) {
	shortHardStop(t)
	unblock := make(blockModule)
	t.Cleanup(func() { close(unblock) })
	done := make(chan error, 1)
	go func() {
		done <- evalSource(t, "block()\n", Options{Timeout: 50 * time.Millisecond, Modules: append(Default(), unblock)})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "deploy.star: evaluation timed out after 50ms, in a call that does not stop") {
			t.Fatalf("got %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Eval still waits for a call a minute after its timeout")
	}
}

// A looping builtin stuck on a long argument is named at its call.
func TestEvalNamesTheCallThatDoesNotStop(t *testing.T) {
	shortHardStop(t)
	unblock := make(blockModule)
	t.Cleanup(func() { close(unblock) })
	src := "def f():\n    return max(endless())\nx = f()\n"
	err := evalSource(t, src, Options{Timeout: 50 * time.Millisecond, Modules: append(Default(), unblock)})
	if err == nil || !strings.Contains(err.Error(), "deploy.star:2:15: max(): evaluation timed out after 50ms, in a call that does not stop") {
		t.Fatalf("got %v", err)
	}
}

// shortHardStop makes Eval give up on a call that does not stop 50 ms after its cancel.
func shortHardStop(t *testing.T) {
	old := hardStop
	hardStop = 50 * time.Millisecond
	t.Cleanup(func() { hardStop = old })
}
