package builtins

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/starvisor/starvisor/engine/plan"
)

// stateKey is the thread-local key of the evaluation state (cf. lib/time's "time.now").
const stateKey = "starvisor.eval"

const (
	stdlibPrefix    = "@stdlib//"
	builtinFilename = "<builtin>"
)

// evalState is everything one Eval builds up. It lives on the thread, so builtins are
// plain functions and modules stay stateless values.
type evalState struct {
	late lateLook // the step limit's last steps (see onStepLimit)

	// calls: the Starlark stack of each program() reached through a function, by program
	// name, for the errors plan.Finish finds later (it knows only the program() call's
	// position, the same line of a helper for every program it declares).
	calls     map[string]string
	root      string            // absolute, cleaned folder of the entry script
	realRoot  string            // root with symlinks resolved, for containment checks
	entry     string            // entry script, relative to root
	libs      map[string]string // library name -> absolute dir
	realLibs  map[string]string // resolved lazily; a missing dir is reported on use
	lookupEnv func(string) (string, bool)
	print     io.Writer
	maxMem    uint64                 // heap growth allowed (see memoryGuard)
	walk      atomic.Pointer[string] // the long walk a builtin is on (see walking), read by a stopper
	said      map[string]bool        // notes said once (see once)

	predeclared starlark.StringDict
	dirs        map[string]string // display name of each file run -> its absolute folder ("" for @stdlib)
	modules     map[string]*moduleEntry
	realKeys    map[string]string // a loaded file's real path -> the name it was first loaded by
	loading     []string          // display names being loaded, outermost first (cycle detection)

	files map[string]string // inputs: display name -> "sha256:..."
	env   map[string]string // inputs: host values read
	unset map[string]bool   // inputs: the variables read that were not set

	programs   []*declared
	nprocs     int // of the programs, all their numprocs
	byName     map[string]*declared
	groups     []*plan.Group
	groupIndex map[string]*plan.Group
	sup        *supervisorDecl
}

// stateFrom returns the evaluation state of th.
// once says whether key is new to this evaluation: a note said once, not per process.
func (s *evalState) once(key string) bool {
	if s.said == nil {
		s.said = map[string]bool{}
	}
	if s.said[key] {
		return false
	}
	s.said[key] = true
	return true
}

func stateFrom(th *starlark.Thread) (*evalState, error) {
	s, ok := th.Local(stateKey).(*evalState)
	if !ok {
		return nil, errors.New("internal error: thread has no starvisor evaluation state")
	}
	return s, nil
}

// caller returns the position of the nearest Starlark frame below the running builtin
// whose file is not in @stdlib. Stdlib functions are transparent: a relative path handed
// to python.venv("venv") resolves against the folder of the script that called it.
func caller(th *starlark.Thread) syntax.Position {
	var last syntax.Position
	for d := 1; d < th.CallStackDepth(); d++ {
		pos := th.CallFrame(d).Pos
		f := pos.Filename()
		if f == builtinFilename {
			continue
		}
		if strings.HasPrefix(f, stdlibPrefix) {
			last = pos
			continue
		}
		return pos
	}
	return last
}

// declaredAt is where a program, group or supervisor() is said to be declared: the
// statement of the file being run that led to the call, as Bazel places a rule made by a
// macro at the macro's call. A helper that declares a program per service would otherwise
// put them all on its own program() line, and check could not say which call holds
// the missing command; the stack, kept for errors, still names the helper.
func declaredAt(th *starlark.Thread) syntax.Position {
	if n := th.CallStackDepth(); n > 1 {
		if pos := th.CallFrame(n - 1).Pos; pos.Filename() != builtinFilename && !strings.HasPrefix(pos.Filename(), stdlibPrefix) {
			return pos
		}
	}
	return caller(th)
}

// posString formats a position as "file:line:col".
func posString(p syntax.Position) string {
	return p.Filename() + ":" + strconv.Itoa(int(p.Line)) + ":" + strconv.Itoa(int(p.Col))
}

// dir returns the absolute folder against which relative paths given by th's caller resolve.
func (s *evalState) dir(th *starlark.Thread) string {
	if d := s.dirs[caller(th).Filename()]; d != "" {
		return d
	}
	return s.root
}

// abs resolves p against the caller's folder and cleans it.
func (s *evalState) abs(th *starlark.Thread, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(s.dir(th), p)
}

// realLib returns the resolved folder of library name.
func (s *evalState) realLib(name string) (string, error) {
	if r, ok := s.realLibs[name]; ok {
		return r, nil
	}
	dir, ok := s.libs[name]
	if !ok {
		return "", fmt.Errorf("unknown library @%s (declare it with --lib %s=DIR or STARVISOR_LIBS)", name, name)
	}
	r, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("library @%s: %w", name, err)
	}
	s.realLibs[name] = r
	return r, nil
}

// sandbox checks that the absolute path p, with symlinks resolved, lies under the bundle
// root or a library root, and returns the key under which a read of it is recorded.
func (s *evalState) sandbox(p string) (key string, err error) {
	real, err := realpath(p)
	if err != nil {
		return "", err
	}
	if rel, ok := within(s.realRoot, real); ok {
		return rel, nil
	}
	for _, name := range sortedKeys(s.libs) {
		r, err := s.realLib(name)
		if err != nil {
			continue // an unusable library holds nothing
		}
		if rel, ok := within(r, real); ok {
			return "@" + name + "//" + rel, nil
		}
	}
	if real != p {
		return "", fmt.Errorf("%q resolves to %q, outside the bundle root and library roots", p, real)
	}
	return "", fmt.Errorf("%q is outside the bundle root and library roots", p)
}

// within reports whether p is dir or under it, and p relative to dir (slash-separated).
func within(dir, p string) (string, bool) {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// realpath resolves the symlinks of p; components that do not exist yet are kept as they are.
func realpath(p string) (string, error) {
	r, err := filepath.EvalSymlinks(p)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	parent := filepath.Dir(p)
	if parent == p {
		return p, nil
	}
	rp, err := realpath(parent)
	if err != nil {
		return "", err
	}
	return filepath.Join(rp, filepath.Base(p)), nil
}

// recordFile notes that the file known as key was read with content data.
func (s *evalState) recordFile(key string, data []byte) {
	sum := sha256.Sum256(data)
	s.files[key] = "sha256:" + hex.EncodeToString(sum[:])
}

// readEnv looks a variable up for the script and records it in the plan's inputs: its
// value, and whether it was unset (a reload then evaluates with it unset, not empty).
func (s *evalState) readEnv(name string) (string, bool) {
	v, ok := s.lookupEnv(name)
	s.env[name] = v
	if !ok {
		if s.unset == nil {
			s.unset = map[string]bool{}
		}
		s.unset[name] = true
	}
	return v, ok
}
