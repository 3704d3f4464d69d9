package builtins

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// fsModule provides read-only, sandboxed file access: fs.exists, fs.is_dir, fs.glob,
// fs.read, fs.read_env and fs.realpath. Paths resolve against the calling file's folder and must stay,
// symlinks resolved, under the bundle root or a library root. Every file read is recorded
// in the plan's inputs.files.
type fsModule struct{}

func (fsModule) Name() string { return "fs" }

func (fsModule) Members() starlark.StringDict {
	return starlark.StringDict{"fs": &starlarkstruct.Module{Name: "fs", Members: starlark.StringDict{
		"exists":   starlark.NewBuiltin("fs.exists", fsExists),
		"is_dir":   starlark.NewBuiltin("fs.is_dir", fsIsDir),
		"glob":     starlark.NewBuiltin("fs.glob", fsGlob),
		"read":     starlark.NewBuiltin("fs.read", fsRead),
		"read_env": starlark.NewBuiltin("fs.read_env", fsReadEnv),
		"realpath": starlark.NewBuiltin("fs.realpath", fsRealpath),
	}}}
}

// MaxReadBytes caps fs.read and fs.read_env: scripts read small config files, not data.
const MaxReadBytes = 1 << 20

// pathArg unpacks the single path argument of an fs builtin and makes it absolute.
func pathArg(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (*evalState, string, error) {
	s, err := stateFrom(th)
	if err != nil {
		return nil, "", err
	}
	var p string
	if err := unpack(fn.Name(), args, kwargs, "path", &p); err != nil {
		return nil, "", err
	}
	if p == "" {
		return nil, "", fmt.Errorf("%s: path: empty", fn.Name())
	}
	return s, s.abs(th, p), nil
}

// sandboxedPath unpacks the single path argument of an fs builtin, resolves it and checks it.
func sandboxedPath(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (s *evalState, abs, key string, err error) {
	if s, abs, err = pathArg(th, fn, args, kwargs); err != nil {
		return nil, "", "", err
	}
	if key, err = s.sandbox(abs); err != nil {
		return nil, "", "", fmt.Errorf("%s: %w", fn.Name(), err)
	}
	return s, abs, key, nil
}

// statLeaf stats the path argument of fs.exists and fs.is_dir. Its folder must be in
// the sandbox; the last component may be a symlink leading out of it (a virtualenv's
// bin/python links to the system's interpreter): only its existence is told.
func statLeaf(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (os.FileInfo, error) {
	s, abs, err := pathArg(th, fn, args, kwargs)
	if err != nil {
		return nil, err
	}
	if _, err := s.sandbox(abs); err != nil {
		if _, perr := s.sandbox(filepath.Dir(abs)); perr != nil || abs == filepath.Dir(abs) {
			return nil, fmt.Errorf("%s: %w", fn.Name(), err)
		}
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, nil
	}
	return fi, nil
}

func fsExists(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	fi, err := statLeaf(th, fn, args, kwargs)
	if err != nil {
		return nil, err
	}
	return starlark.Bool(fi != nil), nil
}

func fsIsDir(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	fi, err := statLeaf(th, fn, args, kwargs)
	if err != nil {
		return nil, err
	}
	return starlark.Bool(fi != nil && fi.IsDir()), nil
}

// fsGlob returns the sorted absolute paths matching pattern (Go's filepath.Match syntax;
// no "**"). Matches that resolve outside the sandbox are left out.
func fsGlob(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, err := stateFrom(th)
	if err != nil {
		return nil, err
	}
	var pattern string
	if err := unpack(fn.Name(), args, kwargs, "pattern", &pattern); err != nil {
		return nil, err
	}
	abs := s.abs(th, pattern)
	if _, err := s.sandbox(staticPrefix(abs)); err != nil {
		return nil, fmt.Errorf("%s: %w", fn.Name(), err)
	}
	matches, err := filepath.Glob(abs)
	if err != nil {
		return nil, fmt.Errorf("%s: pattern %q: %w", fn.Name(), pattern, err)
	}
	out := make([]starlark.Value, 0, len(matches))
	for _, m := range matches { // filepath.Glob returns them sorted
		if _, err := s.sandbox(m); err == nil {
			out = append(out, starlark.String(m))
		}
	}
	return starlark.NewList(out), nil
}

// fsRealpath returns the path with every symlink resolved. A command or PYTHONPATH given
// through a `current -> releases/v7` link names the release itself: switching the link
// then changes the plan, and apply restarts what runs the old release, where the link's
// own path, followed only at exec, would look unchanged.
func fsRealpath(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	_, abs, _, err := sandboxedPath(th, fn, args, kwargs)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn.Name(), err)
	}
	return starlark.String(real), nil
}

// staticPrefix is the folder part of an absolute pattern before its first meta character.
func staticPrefix(pattern string) string {
	i := strings.IndexAny(pattern, `*?[\`)
	if i < 0 {
		return pattern
	}
	return filepath.Dir(pattern[:i])
}

// readUnderRoots reads real (symlinks resolved), which lies in the bundle root or a
// library root, opened beneath that root.
func (s *evalState) readUnderRoots(real string, limit int64) ([]byte, error) {
	roots := []string{s.realRoot}
	for _, name := range sortedKeys(s.libs) {
		if r, err := s.realLib(name); err == nil {
			roots = append(roots, r)
		}
	}
	for _, root := range roots {
		if rel, ok := within(root, real); ok {
			return readBeneath(root, rel, real, limit)
		}
	}
	return nil, fmt.Errorf("%q is outside the bundle root and library roots", real)
}

// readSandboxed reads abs, which the sandbox accepted as key, opened beneath the root it
// lies in.
func (s *evalState) readSandboxed(abs, key string, limit int64) ([]byte, error) {
	root, rel := s.realRoot, key
	if lib, ok := strings.CutPrefix(key, "@"); ok {
		name, r, _ := strings.Cut(lib, "//")
		dir, err := s.realLib(name)
		if err != nil {
			return nil, err
		}
		root, rel = dir, r
	}
	return readBeneath(root, rel, abs, limit)
}

// readBeneath reads rel (slash-separated) under root, opened beneath it (openBeneath): a
// symlink swapped in since the sandbox checked the path cannot lead out of it. shown
// names the file in an error.
func readBeneath(root, rel, shown string, limit int64) ([]byte, error) {
	f, err := openBeneath(root, filepath.FromSlash(cmp.Or(rel, ".")))
	if errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%q leads outside the bundle root and library roots now", shown)
	}
	if err != nil {
		return nil, err
	}
	return readOpen(f, limit)
}

// readCapped reads a sandboxed file, at most MaxReadBytes, and records it in the inputs.
func readCapped(s *evalState, name, abs, key string) ([]byte, error) {
	data, err := s.readSandboxed(abs, key, MaxReadBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no file %q", name, key)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %q: %w", name, key, err)
	}
	if len(data) > MaxReadBytes {
		return nil, fmt.Errorf("%s: %q is larger than the %d-byte limit", name, key, MaxReadBytes)
	}
	s.recordFile(key, data)
	return data, nil
}

func fsRead(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, abs, key, err := sandboxedPath(th, fn, args, kwargs)
	if err != nil {
		return nil, err
	}
	data, err := readCapped(s, fn.Name(), abs, key)
	if err != nil {
		return nil, err
	}
	return starlark.String(data), nil
}

// fsReadEnv reads a .env file into a dict: KEY=VALUE lines, "export " allowed, blank lines
// and # comments skipped, values optionally quoted ('raw', "with \" \\ \n escapes").
func fsReadEnv(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, abs, key, err := sandboxedPath(th, fn, args, kwargs)
	if err != nil {
		return nil, err
	}
	data, err := readCapped(s, fn.Name(), abs, key)
	if err != nil {
		return nil, err
	}
	vars, err := parseEnvFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %s:%w", fn.Name(), key, err)
	}
	d := starlark.NewDict(len(vars))
	for _, kv := range vars {
		if err := d.SetKey(starlark.String(kv[0]), starlark.String(kv[1])); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// parseEnvFile returns the variables of a .env file in file order; errors start with the
// line number (":3: ..."). As python-dotenv reads it: a quoted value may span lines (a PEM
// key), and a line that is a bare KEY sets nothing (load_dotenv leaves it out; compose
// files list such keys to pass a variable through).
func parseEnvFile(data []byte) ([][2]string, error) {
	var out [][2]string
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		n := i + 1
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			k, _, _ = strings.Cut(k, " #") // a bare KEY, then a comment
		}
		k = strings.TrimSpace(k)
		if k == "" || strings.ContainsAny(k, " \t\"'") {
			return nil, fmt.Errorf("%d: got %q, want KEY=VALUE", n, line)
		}
		if !ok {
			continue // a bare KEY
		}
		v = strings.TrimSpace(v)
		if v != "" && (v[0] == '\'' || v[0] == '"') {
			// Up to the closing quote (in double quotes, not an escaped one), on this line
			// or a later one, then at most a comment, as python-dotenv and compose read it.
			end := closingQuote(v)
			for end < 0 && i+1 < len(lines) {
				i++
				v += "\n" + strings.TrimRight(lines[i], " \t")
				end = closingQuote(v)
			}
			if end < 0 {
				return nil, fmt.Errorf("%d: unterminated quote in %q (no closing %c down to the file's end)", n, line, v[0])
			}
			if rest := strings.TrimSpace(v[end+1:]); rest != "" && !strings.HasPrefix(rest, "#") {
				return nil, fmt.Errorf("%d: %q after the closing quote in %q", n, rest, line)
			}
			if v[0] == '"' {
				v = strings.NewReplacer(`\n`, "\n", `\"`, `"`, `\\`, `\`).Replace(v[1:end])
			} else {
				v = v[1:end]
			}
		} else if i := strings.Index(v, " #"); i >= 0 { // trailing comment after an unquoted value
			v = strings.TrimSpace(v[:i])
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// closingQuote is the index in v of the quote closing the one v starts with (in double
// quotes, not an escaped one), or -1.
func closingQuote(v string) int {
	for end := 1; end < len(v); end++ {
		switch {
		case v[0] == '"' && v[end] == '\\':
			end++
		case v[end] == v[0]:
			return end
		}
	}
	return -1
}

// Interface guards.
var _ Module = fsModule{}
