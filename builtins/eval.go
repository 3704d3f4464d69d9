package builtins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/starvisor/starvisor/engine/plan"
)

// Options says what to evaluate and within which limits.
type Options struct {
	File      string                      // entry script path (relative to the working directory is fine)
	Libs      map[string]string           // @NAME -> absolute dir
	Modules   []Module                    // nil means Default()
	MaxSteps  uint64                      // 0 means 1e8
	Timeout   time.Duration               // 0 means 10s
	LookupEnv func(string) (string, bool) // nil means os.LookupEnv
	Print     io.Writer                   // print() output; nil means os.Stderr
	MaxMemory uint64                      // heap growth allowed; 0 means DefaultMaxMemory
}

// Limits applied when Options leaves them zero.
const (
	DefaultMaxSteps = 100_000_000
	DefaultTimeout  = 10 * time.Second
)

// fileOptions is the dialect, set explicitly rather than inherited from go.starlark.net's
// legacy globals. Deploy scripts loop over services at top level, so TopLevelControl;
// while, recursion, set and global reassignment are allowed because the step limit and
// the timeout, not the dialect, keep a script finite (DESIGN.md "The script").
var fileOptions = &syntax.FileOptions{
	Set:             true,
	While:           true,
	TopLevelControl: true,
	GlobalReassign:  true,
	Recursion:       true,
}

var errTimeout = errors.New("timeout")

// Eval runs the entry script o.File and the files it loads, and returns the Finish()ed plan.
// Evaluation errors are *Error values (position, message, Starlark stack); an error from
// plan validation is returned as plan.Finish gave it.
func Eval(ctx context.Context, o Options) (*plan.Plan, error) {
	s, mods, err := newState(o)
	if err != nil {
		return nil, err
	}
	maxSteps := o.MaxSteps
	if maxSteps == 0 {
		maxSteps = DefaultMaxSteps
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}

	th := &starlark.Thread{Name: s.entry, Load: s.load, Print: s.printLine}
	th.SetLocal(stateKey, s)
	maxMem := o.MaxMemory
	if maxMem == 0 {
		maxMem = DefaultMaxMemory
	}
	stopper := newStopper()
	mem := newMemoryGuard(maxMem, stopper)
	s.maxMem = maxMem
	// The step limit doubles as the memory guard's clock: the thread stops every few
	// steps to let it look (see memoryGuard).
	th.SetMaxExecutionSteps(min(memoryCheckSteps, maxSteps))
	th.OnMaxSteps = func(th *starlark.Thread) {
		if th.Steps >= maxSteps {
			s.onStepLimit(th, maxSteps)
			return
		}
		mem.check(th)
		th.SetMaxExecutionSteps(min(th.Steps+memoryCheckSteps, maxSteps))
	}
	for _, m := range mods {
		if st, ok := m.(Stater); ok {
			st.NewState(th)
		}
	}

	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(context.Cause(ctx), errTimeout) {
			stopper.cancel(th, fmt.Sprintf("evaluation timed out after %s", timeout))
			return
		}
		stopper.cancel(th, context.Cause(ctx).Error())
	})
	defer stop()
	defer mem.watch(th)()
	where := func() string {
		if at := s.walk.Load(); at != nil {
			return *at
		}
		return ""
	}
	if err := stopper.wait(s.entry, where, func() error {
		_, err := s.exec(th, s.entry, filepath.Join(s.root, s.entry), "")
		return err
	}); err != nil {
		return nil, newError(err, s)
	}
	p, err := s.build()
	if err != nil {
		return nil, err
	}
	if err := p.Finish(); err != nil {
		return nil, s.withCalls(s.onArguments(err))
	}
	var errs []error
	for _, m := range mods {
		if v, ok := m.(Validator); ok {
			if err := v.Validate(p); err != nil {
				errs = append(errs, fmt.Errorf("module %s: %w", m.Name(), err))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// newState checks the options and prepares an evaluation.
func newState(o Options) (*evalState, []Module, error) {
	mods := o.Modules
	if mods == nil {
		mods = Default()
	}
	predeclared, err := Predeclared(mods...)
	if err != nil {
		return nil, nil, err
	}
	guardSized(predeclared)
	if o.File == "" {
		return nil, nil, errors.New("eval: no script file given")
	}
	abs, err := filepath.Abs(o.File)
	if err != nil {
		return nil, nil, fmt.Errorf("eval: %w", err)
	}
	root := filepath.Dir(abs)
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, nil, fmt.Errorf("eval: bundle root: %w", err)
	}
	libs := make(map[string]string, len(o.Libs))
	for name, dir := range o.Libs {
		if err := checkLibName(name); err != nil {
			return nil, nil, fmt.Errorf("eval: %w", err)
		}
		if libs[name], err = filepath.Abs(dir); err != nil {
			return nil, nil, fmt.Errorf("eval: library @%s: %w", name, err)
		}
	}
	s := &evalState{
		root:        root,
		realRoot:    realRoot,
		entry:       filepath.Base(abs),
		libs:        libs,
		realLibs:    map[string]string{},
		lookupEnv:   o.LookupEnv,
		print:       o.Print,
		predeclared: predeclared,
		dirs:        map[string]string{},
		modules:     map[string]*moduleEntry{},
		realKeys:    map[string]string{},
		files:       map[string]string{},
		env:         map[string]string{},
		groupIndex:  map[string]*plan.Group{},
		byName:      map[string]*declared{},
	}
	if s.lookupEnv == nil {
		s.lookupEnv = os.LookupEnv
	}
	if s.print == nil {
		s.print = os.Stderr
	}
	return s, mods, nil
}

// printLine implements print(): one line to Options.Print, prefixed with "file:line: ".
func (s *evalState) printLine(th *starlark.Thread, msg string) {
	pos := th.CallFrame(1).Pos
	if strings.HasPrefix(pos.Filename(), stdlibPrefix) {
		pos = caller(th) // a library's note, at the user's call (load_conf), not inside it
	}
	fmt.Fprintf(s.print, "%s:%d: %s\n", pos.Filename(), pos.Line, msg)
}

// withCalls adds to each of plan.Finish's errors about a program declared through a
// function the Starlark stack of that declaration: the position alone names the helper's
// program() line, the same for every program the helper makes.
// problemAt reads a validation problem: "file:line:col: program "x": field: ...".
var problemAt = regexp.MustCompile(`^([^:\n]+):(\d+):(\d+): (?:program|group) "[^"]*": ([a-z_]+): `)

// onArguments places each validation problem about a keyword argument on that argument,
// as an evaluation error about one is (the README says so): they stood on the call's
// parenthesis, line 1 of a call written over ten.
func (s *evalState) onArguments(err error) error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return err
	}
	var out []error
	for _, e := range j.Unwrap() {
		msg := e.Error()
		if m := problemAt.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[2])
			col, _ := strconv.Atoi(m[3])
			file := m[1]
			if at := s.argAt(syntax.MakePosition(&file, int32(line), int32(col)), m[4]); at != "" {
				msg = at + msg[len(m[1])+len(m[2])+len(m[3])+2:]
			}
		}
		out = append(out, errors.New(msg))
	}
	return errors.Join(out...)
}

func (s *evalState) withCalls(err error) error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok || len(s.calls) == 0 {
		return err
	}
	calls := make(map[string]string, len(s.calls)) // by the name as messages print it
	for name, stack := range s.calls {
		calls[plan.Short(name)] = stack
	}
	var out []error
	for _, e := range j.Unwrap() {
		msg := e.Error()
		if _, rest, ok := strings.Cut(msg, ": program \""); ok {
			if name, _, ok := strings.Cut(rest, "\""); ok && calls[name] != "" {
				msg += "\n" + strings.TrimRight(calls[name], "\n")
			}
		}
		out = append(out, errors.New(msg))
	}
	return errors.Join(out...)
}
