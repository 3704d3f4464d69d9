package builtins

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

var libNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

func checkLibName(name string) error {
	if !libNameRE.MatchString(name) {
		return fmt.Errorf("library name %q: want letters, digits, '_', '.' or '-'", name)
	}
	if name == "stdlib" {
		return fmt.Errorf("library name %q is reserved for the embedded library", name)
	}
	return nil
}

// ParseLibs reads library roots from "--lib NAME=DIR" flag values and the STARVISOR_LIBS
// value ("NAME=DIR:NAME2=DIR2", split on the OS path list separator). A flag overrides
// the variable for the same name; a name twice in one source is an error. Dirs are
// returned absolute and cleaned; whether they exist is checked when a script loads from them.
func ParseLibs(flags []string, envValue string) (map[string]string, error) {
	libs := map[string]string{}
	add := func(src string, entries []string) error {
		seen := map[string]bool{}
		for _, e := range entries {
			name, dir, ok := strings.Cut(e, "=")
			if !ok || dir == "" {
				return fmt.Errorf("parse libs: %s %q: want NAME=DIR", src, e)
			}
			if err := checkLibName(name); err != nil {
				return fmt.Errorf("parse libs: %s: %w", src, err)
			}
			if seen[name] {
				return fmt.Errorf("parse libs: %s: library %q given twice", src, name)
			}
			seen[name] = true
			abs, err := filepath.Abs(dir)
			if err != nil {
				return fmt.Errorf("parse libs: %s %q: %w", src, e, err)
			}
			libs[name] = abs
		}
		return nil
	}
	var fromEnv []string
	for _, e := range filepath.SplitList(envValue) {
		if e != "" { // tolerate "A=x::B=y" and a trailing separator
			fromEnv = append(fromEnv, e)
		}
	}
	if err := add("STARVISOR_LIBS", fromEnv); err != nil {
		return nil, err
	}
	if err := add("--lib", flags); err != nil {
		return nil, err
	}
	return libs, nil
}
