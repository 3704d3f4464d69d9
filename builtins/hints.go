package builtins

import (
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/starvisor/starvisor/stdlib"
)

// The parser's and resolver's messages name tokens, not mistakes ("got identifier, want
// ','"). A hint, added in parentheses, names the likely mistake where one is likely.

// wantCloser: a token that can begin an expression where a ',' or a closing bracket was
// due, after a complete argument or item: a ',' is probably missing before it.
var (
	wantCloser  = regexp.MustCompile(`^got (identifier|int literal|float literal|string literal|bytes literal|'\('|'\['|'\{'), want (','|'\)'|'\]'|'\}')$`)
	eofInside   = regexp.MustCompile(`^got end of file, want `)
	wantIndent  = regexp.MustCompile(`^got .*, want indent$`)
	wrongCloser = regexp.MustCompile(`^got ('\)'|'\]'|'\}'), want ('\)'|'\]'|'\}')$`)
)

// syntaxHint explains a parse error at pos of src: the likely mistake, and where the
// offending token starts (the parser places its error just past that token).
func syntaxHint(src []byte, pos syntax.Position, msg string) (string, syntax.Position) {
	bs := brackets(src)
	if strings.HasPrefix(msg, "got string literal,") {
		if at, token := tokenBefore(src, pos, "string literal"); token != "it" {
			if off := offsetOf(src, at); off > 0 && (src[off-1] == 'f' || src[off-1] == 'F') && (off == 1 || !isWordByte(src[off-2])) {
				at.Col--
				return `Starlark has no f-strings: "port {}".format(port), or "port %d" % port`, at
			}
		}
	}
	if msg == "not an identifier" {
		// supervisord.load(...): load is a keyword, even after a dot. The error stands
		// just past it.
		if off := offsetOf(src, pos); off >= 5 && string(src[off-5:off]) == ".load" {
			at := pos
			at.Col -= 4
			return "load is a Starlark keyword, even after a dot: supervisord.load_conf(path)", at
		}
	}
	if strings.HasPrefix(msg, "got import,") {
		return `Starlark has no import: load("lib.star", "name") takes a file's names`, pos
	}
	switch m := wantCloser.FindStringSubmatch(msg); {
	case m != nil:
		at, token := tokenBefore(src, pos, m[1])
		if b, ok := openAt(bs, at); ok && !b.closed && b.line < int(at.Line) {
			return fmt.Sprintf("a ',' missing before %s, or the '%c' of line %d never closed?", token, b.c, b.line), at
		}
		return "a ',' missing before " + token + "?", at
	case eofInside.MatchString(msg):
		if b, ok := openAt(bs, pos); ok {
			return fmt.Sprintf("the '%c' at %d:%d is never closed", b.c, b.line, b.col), pos
		}
	case wrongCloser.MatchString(msg):
		at := pos
		at.Col-- // the closing bracket's own column
		if b, ok := openAt(bs, at); ok {
			return fmt.Sprintf("the '%c' at %d:%d is closed by '%c'", b.c, b.line, b.col, msg[5]), at
		}
	case wantIndent.MatchString(msg):
		return "the lines after a ':' are indented", pos
	}
	return "", pos
}

// A bracket is an opening bracket of a script: where it is, and where the bracket that
// closes it is, if any.
type bracket struct {
	c                   rune
	line, col           int
	closed              bool
	closeLine, closeCol int
}

// brackets lists the opening brackets of src in order, skipping strings and comments.
// Any closing bracket closes the innermost open one: the point is where each ends, not
// whether they match. Columns count runes, as the parser's do.
func brackets(src []byte) []bracket {
	var all []bracket
	var open []int // indexes into all
	line, col := 1, 1
	var quote string // the open string's delimiter: a quote, or three
	comment := false
	for i := 0; i < len(src); {
		r, n := utf8.DecodeRune(src[i:])
		rest := string(src[i:min(len(src), i+3)])
		switch {
		case r == '\n':
			comment = false
			if len(quote) == 1 { // a one-line string ends with its line (the parser's error)
				quote = ""
			}
		case comment:
		case quote != "":
			if r == '\\' && i+1 < len(src) && src[i+1] != '\n' {
				n = 2 // an escaped quote does not end the string
				col++
			} else if strings.HasPrefix(rest, quote) {
				n = len(quote)
				col += n - 1
				quote = ""
			}
		case r == '#':
			comment = true
		case r == '\'' || r == '"':
			quote = string(r)
			if rest == strings.Repeat(quote, 3) {
				quote = rest
				n, col = 3, col+2
			}
		case r == '(' || r == '[' || r == '{':
			open = append(open, len(all))
			all = append(all, bracket{c: r, line: line, col: col})
		case r == ')' || r == ']' || r == '}':
			if len(open) > 0 {
				b := &all[open[len(open)-1]]
				b.closed, b.closeLine, b.closeCol = true, line, col
				open = open[:len(open)-1]
			}
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += n
	}
	return all
}

// openAt is the innermost bracket open at pos: opened before it, not closed before it.
func openAt(bs []bracket, pos syntax.Position) (bracket, bool) {
	before := func(l, c int) bool { return l < int(pos.Line) || l == int(pos.Line) && c < int(pos.Col) }
	for i := len(bs) - 1; i >= 0; i-- {
		b := bs[i]
		if before(b.line, b.col) && (!b.closed || !before(b.closeLine, b.closeCol)) {
			return b, true
		}
	}
	return bracket{}, false
}

// tokenBefore finds the token of the given kind ending at pos: where it starts and how to
// name it (command, "b"); or pos and "it" when the text there is no such token.
func tokenBefore(src []byte, pos syntax.Position, kind string) (syntax.Position, string) {
	end := offsetOf(src, pos)
	if end <= 0 || end > len(src) {
		return pos, "it"
	}
	start := -1
	switch kind {
	case "identifier", "int literal", "float literal":
		start = end
		for start > 0 && (isWordByte(src[start-1]) || src[start-1] == '.' && kind != "identifier") {
			start--
		}
	case "string literal", "bytes literal":
		q := src[end-1]
		if q != '"' && q != '\'' {
			break
		}
		for j := end - 2; j >= 0 && src[j] != '\n'; j-- {
			if src[j] == q && (j == 0 || src[j-1] != '\\') {
				start = j
				for start > 0 && strings.IndexByte("rRbB", src[start-1]) >= 0 {
					start--
				}
				break
			}
		}
	default: // '(', '[' or '{'
		start = end - 1
	}
	if start < 0 || start >= end {
		return pos, "it"
	}
	at := pos
	at.Col -= int32(utf8.RuneCount(src[start:end]))
	token := string(src[start:end])
	if utf8.RuneCountInString(token) > 30 {
		token = "the string"
	}
	return at, token
}

func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// offsetOf is the byte offset of pos (1-based line, column in runes) in src.
func offsetOf(src []byte, pos syntax.Position) int {
	line, col := 1, 1
	for i := 0; i < len(src); {
		if line == int(pos.Line) && col == int(pos.Col) {
			return i
		}
		r, n := utf8.DecodeRune(src[i:])
		if r == '\n' {
			if line == int(pos.Line) {
				return i // a column past the line's end: its newline
			}
			line, col = line+1, 1
		} else {
			col++
		}
		i += n
	}
	return len(src)
}

// undefinedHint explains "undefined: name" in file: a stdlib module not loaded, another
// language's spelling of a constant, or the nearest name that is defined.
func (s *evalState) undefinedHint(file, name string) string {
	switch strings.ToLower(name) {
	case "true", "false", "none", "null", "nil":
		return "Starlark's constants are True, False and None"
	case "os", "sys", "subprocess", "pathlib", "shutil":
		return `Starlark has no Python modules: host.env("NAME") reads the environment, fs.read() and fs.glob() files, path.join() paths`
	}
	if lib := stdlibExporting(name); lib != "" {
		return fmt.Sprintf(`load it first: load("@stdlib//%s", %q)`, lib, name)
	}
	var names []string
	for n := range s.predeclared {
		names = append(names, n)
	}
	for n := range starlark.Universe {
		names = append(names, n)
	}
	if f := s.parsed(file); f != nil {
		for _, st := range f.Stmts {
			switch st := st.(type) {
			case *syntax.DefStmt:
				names = append(names, st.Name.Name)
			case *syntax.AssignStmt:
				if id, ok := st.LHS.(*syntax.Ident); ok {
					names = append(names, id.Name)
				}
			case *syntax.LoadStmt:
				for _, id := range st.To {
					names = append(names, id.Name)
				}
			}
		}
	}
	// Sorted, so a tie gives the same hint every run; a private name is not offered.
	sort.Strings(names)
	names = slices.DeleteFunc(names, func(n string) bool { return strings.HasPrefix(n, "_") })
	// Closer than nearest asks of a keyword: a short name is near many ("nope", None).
	if near := nearest(name, names); near != "" && editDistance(name, near) <= max(1, len(name)/3) {
		return "did you mean " + near + "?"
	}
	return ""
}

// stdlibExporting is the stdlib file that defines name at its top level, or "".
func stdlibExporting(name string) string {
	files, _ := fs.Glob(stdlib.FS, "*.star")
	for _, file := range files {
		if strings.HasSuffix(file, "_test.star") || strings.HasPrefix(name, "_") {
			continue
		}
		src, err := fs.ReadFile(stdlib.FS, file)
		if err != nil {
			continue
		}
		f, err := fileOptions.Parse(file, src, 0)
		if err != nil {
			continue
		}
		for _, st := range f.Stmts {
			if a, ok := st.(*syntax.AssignStmt); ok {
				if id, ok := a.LHS.(*syntax.Ident); ok && id.Name == name {
					return file
				}
			}
		}
	}
	return ""
}
