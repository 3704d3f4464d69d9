package builtins

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"

	"github.com/starvisor/starvisor/stdlib"
)

// moduleEntry caches one module: evaluated once per Eval, frozen by ExecFileOptions.
type moduleEntry struct {
	globals starlark.StringDict
	err     error
	loading bool
	src     []byte // for the errors that look into the source (stuckLoop, argAt)
}

// load implements thread.Load. Frame 0 is the toplevel of the file holding the load
// statement, so relative names resolve against that file.
func (s *evalState) load(th *starlark.Thread, module string) (starlark.StringDict, error) {
	from := th.CallFrame(0).Pos.Filename()
	key, abs, real, err := s.resolveLoad(from, module)
	if err != nil {
		return nil, err
	}
	return s.exec(th, key, abs, real)
}

// exec evaluates the file known as key (abs is its path on disk, "" for @stdlib; real
// that path with symlinks resolved, "" when not known) once.
func (s *evalState) exec(th *starlark.Thread, key, abs, real string) (starlark.StringDict, error) {
	if e, ok := s.modules[key]; ok {
		if e.loading {
			return nil, s.cycle(key)
		}
		return e.globals, e.err
	}
	if real != "" {
		// One file reached by two names (a library root inside the bundle, a symlinked
		// folder) is one module: a second run declared its programs again.
		if first, ok := s.realKeys[real]; ok {
			e := s.modules[first]
			s.modules[key] = e
			if e.loading {
				return nil, s.cycle(first)
			}
			return e.globals, e.err
		}
		s.realKeys[real] = key
	}
	e := &moduleEntry{loading: true}
	s.modules[key] = e
	s.loading = append(s.loading, key)
	defer func() {
		e.loading = false
		s.loading = s.loading[:len(s.loading)-1]
	}()

	var src []byte
	var err error
	const maxScriptBytes = 16 << 20
	if abs == "" {
		src, err = fs.ReadFile(stdlib.FS, strings.TrimPrefix(key, stdlibPrefix))
	} else {
		if real != "" {
			// A loaded file, checked to lie in a root: opened beneath it, so a symlink
			// swapped in since (another user's, in a folder they may write) cannot lead a
			// root evaluation to a file outside (it ran a root-only .star).
			src, err = s.readUnderRoots(real, maxScriptBytes)
		} else {
			src, err = readRegular(abs, maxScriptBytes)
		}
		if err == nil && len(src) > maxScriptBytes {
			err = fmt.Errorf("%q is larger than the %d-byte limit", key, maxScriptBytes)
		}
		s.dirs[key] = filepath.Dir(abs)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			e.err = fmt.Errorf("load: no file %q", key)
		} else {
			e.err = fmt.Errorf("load: %w", err)
		}
		return nil, e.err
	}
	s.recordFile(key, src)
	e.src = src
	e.globals, e.err = starlark.ExecFileOptions(fileOptions, th, key, src, s.predeclared)
	return e.globals, e.err
}

// cycle describes the load cycle closing at key: "a.star -> b.star -> a.star".
func (s *evalState) cycle(key string) error {
	i := 0
	for j, k := range s.loading {
		if k == key {
			i = j
			break
		}
	}
	chain := append(append([]string{}, s.loading[i:]...), key)
	return fmt.Errorf("load cycle: %s", strings.Join(chain, " -> "))
}

// resolveLoad maps a load() name, seen in the file known as from, to the display key of
// the module (a path relative to the bundle root, "@NAME//path" or "@stdlib//path") and
// its absolute path on disk ("" for @stdlib).
//
//	"@stdlib//x.star"  embedded stdlib
//	"@NAME//x.star"    library root NAME
//	"//x.star"         root of the repository of from (bundle, library or stdlib)
//	"x.star", "./x"    folder of from
func (s *evalState) resolveLoad(from, module string) (key, abs, real string, err error) {
	if module == "" {
		return "", "", "", errors.New("load: empty module name")
	}
	repo, dir := splitKey(from)
	var rel string
	switch {
	case strings.HasPrefix(module, "@"):
		name, p, ok := strings.Cut(module[1:], "//")
		if !ok || name == "" {
			return "", "", "", fmt.Errorf("load: %q: want \"@NAME//path.star\"", module)
		}
		repo, rel = "@"+name+"//", p
	case strings.HasPrefix(module, "//"):
		rel = module[2:]
	case path.IsAbs(module) || filepath.IsAbs(module):
		return "", "", "", fmt.Errorf("load: %q: absolute paths are not allowed; use \"//path\" from the bundle root", module)
	default:
		rel = path.Join(dir, module)
	}
	clean := path.Clean(rel)
	if rel == "" || clean == "." {
		return "", "", "", fmt.Errorf("load: %q names no file", module)
	}
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", "", "", fmt.Errorf("load: %q is outside %s", module, repoName(repo))
	}
	key = repo + clean
	switch repo {
	case stdlibPrefix:
		// Its tests ride along in the binary (stdlib.FS) but are not part of it.
		if _, err := fs.Stat(stdlib.FS, clean); err != nil || strings.HasSuffix(clean, "_test.star") {
			return "", "", "", fmt.Errorf("load: no file %q in @stdlib", clean)
		}
		return key, "", "", nil
	case "":
		abs, real, err = s.inRoot(module, s.root, s.realRoot, clean, repo)
		return key, abs, real, err
	default:
		name := strings.TrimSuffix(strings.TrimPrefix(repo, "@"), "//")
		if _, ok := s.libs[name]; !ok {
			return "", "", "", fmt.Errorf("load: unknown library @%s (declare it with --lib %s=DIR or STARVISOR_LIBS)", name, name)
		}
		realDir, err := s.realLib(name)
		if err != nil {
			return "", "", "", fmt.Errorf("load: %w", err)
		}
		abs, real, err = s.inRoot(module, s.libs[name], realDir, clean, repo)
		return key, abs, real, err
	}
}

// inRoot joins clean to dir and checks that, with symlinks resolved (real), it stays under
// realDir, so a symlink cannot smuggle a file from elsewhere into the evaluation.
func (s *evalState) inRoot(module, dir, realDir, clean, repo string) (abs, real string, err error) {
	abs = filepath.Join(dir, filepath.FromSlash(clean))
	if real, err = realpath(abs); err != nil {
		return "", "", fmt.Errorf("load: %w", err)
	}
	if _, ok := within(realDir, real); !ok {
		if repo == "" {
			// A library shared by bundles, linked into this one: it is named by a root.
			return "", "", fmt.Errorf("load: %q resolves to %q, outside the bundle root (a library shared between bundles is loaded as @NAME//%s, with --lib NAME=%s or STARVISOR_LIBS)", module, real, filepath.Base(real), filepath.Dir(real))
		}
		return "", "", fmt.Errorf("load: %q resolves to %q, outside %s", module, real, repoName(repo))
	}
	return abs, real, nil
}

// splitKey splits a display key into its repository prefix ("", "@NAME//", "@stdlib//")
// and the slash-separated folder of the file inside it.
func splitKey(key string) (repo, dir string) {
	rest := key
	if strings.HasPrefix(key, "@") {
		if i := strings.Index(key, "//"); i >= 0 {
			repo, rest = key[:i+2], key[i+2:]
		}
	}
	return repo, path.Dir(rest)
}

func repoName(repo string) string {
	if repo == "" {
		return "the bundle root"
	}
	return strings.TrimSuffix(repo, "//")
}
