package builtins

import (
	"cmp"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// versionModule provides version.parse(s) and version.latest(paths_or_names), to pick
// code versions such as your_project_v10 over your_project_v9.
type versionModule struct{}

func (versionModule) Name() string { return "version" }

func (versionModule) Members() starlark.StringDict {
	return starlark.StringDict{"version": &starlarkstruct.Module{Name: "version", Members: starlark.StringDict{
		"parse":  starlark.NewBuiltin("version.parse", versionParse),
		"latest": starlark.NewBuiltin("version.latest", versionLatest),
	}}}
}

// Version is a semantic version: it compares by major, minor, patch, then a release above
// any of its pre-releases, then pre-release identifiers (dot-separated) one by one, a run
// of digits by its number (rc.10 and rc10 above rc.9 and rc9). Build metadata
// ("+build.5") is allowed and, as semver says, does not order.
type Version struct {
	Major, Minor, Patch int
	Pre                 string
	src                 string
}

var (
	versionRE  = regexp.MustCompile(`^[vV]?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$`)
	embeddedRE = regexp.MustCompile(`(\d+)(?:\.(\d+))?(?:\.(\d+))?`)
	// preTagRE: the pre-release texts a version a pattern matches may carry: a word
	// of semver's and Python's (rc1, alpha.2, b3, dev4) or a number.
	preTagRE = regexp.MustCompile(`^(?i:a|alpha|b|beta|c|rc|pre|preview|dev)?[.-]?\d*(?:\.\d+)*$`)
	pyPreRE  = regexp.MustCompile(`^([vV]?\d+(?:\.\d+){0,2})\.?((?i:a|alpha|b|beta|c|rc|pre|preview|dev)\d*)$`)
)

// parseVersion reads "1", "1.2", "v1.2.3", "1.2.3-rc1" or "1.2.3+build.5".
func parseVersion(s string) (Version, error) {
	src := s
	if m := pyPreRE.FindStringSubmatch(s); m != nil {
		s = m[1] + "-" + m[2] // Python's 1.0rc1: versions.newest picks such folders
	}
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("got %q, want a version such as \"1.2.3\"", s)
	}
	v, err := fromParts(m[1:4])
	v.Pre, v.src = m[4], src
	return v, err
}

func fromParts(parts []string) (Version, error) {
	var n [3]int
	for i, p := range parts {
		if p == "" {
			continue
		}
		x, err := strconv.Atoi(p)
		if err != nil {
			return Version{}, fmt.Errorf("version part %q: %w", p, err)
		}
		n[i] = x
	}
	return Version{Major: n[0], Minor: n[1], Patch: n[2]}, nil
}

// embeddedVersion finds the last version-looking run of digits in a path's base name:
// "your_project_v10" -> 10.0.0, "/opt/app-1.2.3" -> 1.2.3.
func embeddedVersion(p string) (Version, bool) {
	base := path.Base(strings.TrimRight(p, "/"))
	all := embeddedRE.FindAllStringSubmatch(base, -1)
	if all == nil {
		return Version{}, false
	}
	v, err := fromParts(all[len(all)-1][1:4])
	v.src = p
	return v, err == nil
}

// tieWinner breaks a tie between two names of one version: the name that ends with it
// ("app-v2" over a backup "app-v2.bak" or "app-v2-old"), else the later name.
func tieWinner(a, b string) bool {
	if ea, eb := endsWithVersion(a), endsWithVersion(b); ea != eb {
		return ea
	}
	return a > b
}

func endsWithVersion(p string) bool {
	base := path.Base(strings.TrimRight(p, "/"))
	all := embeddedRE.FindAllStringIndex(base, -1)
	return len(all) > 0 && all[len(all)-1][1] == len(base)
}

func compareVersions(a, b Version) int {
	if c := cmp.Compare(a.Major, b.Major); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Minor, b.Minor); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Patch, b.Patch); c != 0 {
		return c
	}
	switch {
	case a.Pre == b.Pre:
		return 0
	case a.Pre == "":
		return 1
	case b.Pre == "":
		return -1
	}
	return comparePre(a.Pre, b.Pre)
}

// comparePre orders pre-release texts identifier by identifier (semver's dots); within
// one, digit runs compare as numbers and the rest as text; a text that is a prefix of
// the other's identifiers is lower (rc < rc.1).
func comparePre(a, b string) int {
	// Python's words first by their order, not their spelling: dev < a < b < rc (dev
	// sorted above beta).
	if ra, rb := preRank(a), preRank(b); ra >= 0 && rb >= 0 && ra != rb {
		return cmp.Compare(ra, rb)
	}
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range min(len(as), len(bs)) {
		if c := compareNatural(as[i], bs[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(as), len(bs))
}

// preRank is the rank of a pre-release text's leading word (dev, a, b, rc and their
// long forms); -1 for another.
func preRank(pre string) int {
	word := strings.ToLower(strings.TrimRightFunc(strings.SplitN(pre, ".", 2)[0], func(r rune) bool { return r >= '0' && r <= '9' }))
	switch word {
	case "dev":
		return 0
	case "a", "alpha":
		return 1
	case "b", "beta":
		return 2
	case "c", "rc", "pre", "preview":
		return 3
	}
	return -1
}

// compareNatural compares two identifiers by their runs: digits by value, other text
// as text; a digit run sorts below text at the same place (semver: numeric below
// alphanumeric).
func compareNatural(a, b string) int {
	for a != "" && b != "" {
		ra, rb := run(a), run(b)
		da, db := isDigit(ra[0]), isDigit(rb[0])
		var c int
		switch {
		case da && db:
			na, nb := strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
			if c = cmp.Compare(len(na), len(nb)); c == 0 {
				c = strings.Compare(na, nb)
			}
		case da != db:
			c = 1
			if da {
				c = -1
			}
		default:
			c = strings.Compare(ra, rb)
		}
		if c != 0 {
			return c
		}
		a, b = a[len(ra):], b[len(rb):]
	}
	return cmp.Compare(len(a), len(b))
}

// run is the leading run of s of one kind: digits, or not digits.
func run(s string) string {
	i := 1
	for i < len(s) && isDigit(s[i]) == isDigit(s[0]) {
		i++
	}
	return s[:i]
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func versionParse(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var s string
	if err := unpack(fn.Name(), args, kwargs, "s", &s); err != nil {
		return nil, err
	}
	v, err := parseVersion(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn.Name(), err)
	}
	return &v, nil
}

// versionLatest returns the item whose base name holds the highest version; items with
// no version are skipped; on a tie the later item in sorted order wins, so the answer
// does not depend on the order of the list. With pattern (a glob whose base name has
// one "*", as "code/app-v*"), the version is what "*" matches, whole: "app-v2.bak",
// "app-v2-old", "app-v2-py3.11" are no versions (a pre-release is one by its word: rc,
// alpha, beta, dev...), "app-v3-rc1" and Python's "app-v3rc1" are 3-rc1 (below 3), where
// the last number in the name would have made "app-v2-py3.11" version 3.11.
func versionLatest(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var items stringList
	var pattern string
	if err := unpack(fn.Name(), args, kwargs, "paths_or_names", &items, "pattern?", &pattern); err != nil {
		return nil, err
	}
	find := embeddedVersion
	if pattern != "" {
		pre, post, ok := strings.Cut(path.Base(pattern), "*")
		if !ok || strings.ContainsAny(pre+post, "*?[") {
			return nil, fmt.Errorf("%s: pattern: got %q, want one \"*\" in its base name and no other wildcard", fn.Name(), pattern)
		}
		find = func(p string) (Version, bool) {
			base := path.Base(strings.TrimRight(p, "/"))
			if len(base) < len(pre)+len(post) || !strings.HasPrefix(base, pre) || !strings.HasSuffix(base, post) {
				return Version{}, false
			}
			s := base[len(pre) : len(base)-len(post)]
			if m := pyPreRE.FindStringSubmatch(s); m != nil {
				s = m[1] + "-" + m[2] // Python's 2.0rc1, 2.0.dev1: skipped, an older one ran
			}
			v, err := parseVersion(s)
			v.src = p
			// A pre-release by its word (rc1, beta.2), not what a folder renamed aside
			// ends with (app-v2-old, app_v1.11-broken), which won over v1.9.
			return v, err == nil && (v.Pre == "" || preTagRE.MatchString(v.Pre))
		}
	}
	var best Version
	found := false
	for _, it := range items {
		v, ok := find(it)
		if !ok {
			continue
		}
		if c := compareVersions(v, best); !found || c > 0 || c == 0 && tieWinner(it, best.src) {
			best, found = v, true
		}
	}
	if !found {
		return nil, fmt.Errorf("%s: no version number in any of %d names", fn.Name(), len(items))
	}
	return starlark.String(best.src), nil
}

func (v *Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	return s
}
func (v *Version) Type() string          { return "version" }
func (v *Version) Freeze()               {} // immutable
func (v *Version) Truth() starlark.Bool  { return true }
func (v *Version) Hash() (uint32, error) { return starlark.String(v.String()).Hash() }

func (v *Version) Attr(name string) (starlark.Value, error) {
	switch name {
	case "major":
		return starlark.MakeInt(v.Major), nil
	case "minor":
		return starlark.MakeInt(v.Minor), nil
	case "patch":
		return starlark.MakeInt(v.Patch), nil
	case "pre":
		return starlark.String(v.Pre), nil
	}
	return nil, nil
}

func (v *Version) AttrNames() []string { return []string{"major", "minor", "patch", "pre"} }

// CompareSameType makes versions work with <, ==, sorted() and max().
func (v *Version) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	c := compareVersions(*v, *y.(*Version))
	switch op {
	case syntax.EQL:
		return c == 0, nil
	case syntax.NEQ:
		return c != 0, nil
	case syntax.LT:
		return c < 0, nil
	case syntax.LE:
		return c <= 0, nil
	case syntax.GT:
		return c > 0, nil
	case syntax.GE:
		return c >= 0, nil
	}
	return false, fmt.Errorf("version: unsupported comparison %s", op)
}

// Interface guards.
var (
	_ Module              = versionModule{}
	_ starlark.HasAttrs   = (*Version)(nil)
	_ starlark.Comparable = (*Version)(nil)
)
