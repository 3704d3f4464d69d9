package builtins

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// A template is a process_name or log path with placeholders: {name}, {num}, {num:02}
// ({num:0N} and {num:N} both zero-pad to N digits) and, in log paths, {process_name}.
type template struct {
	src   string
	parts []tmplPart
}

type tmplPart struct {
	lit   string // literal text, when key is ""
	key   string // "name", "num", "process_name"
	width int    // zero-pad width for num
}

// parseTemplate parses src, allowing the placeholders in keys.
func parseTemplate(src string, keys ...string) (*template, error) {
	t := &template{src: src}
	rest := src
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			t.parts = append(t.parts, tmplPart{lit: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unclosed { in %q", src)
		}
		inner := rest[i+1 : i+j]
		if strings.ContainsRune(inner, '{') {
			return nil, fmt.Errorf("unclosed { in %q", src)
		}
		key, spec, hasSpec := strings.Cut(inner, ":")
		p := tmplPart{key: key}
		known := false
		for _, k := range keys {
			known = known || k == key
		}
		if !known {
			return nil, fmt.Errorf("unknown placeholder {%s} in %q, want %s", inner, src, placeholders(keys))
		}
		if hasSpec {
			w, err := strconv.Atoi(strings.TrimPrefix(spec, "0"))
			if key != "num" || err != nil || w < 1 || w > 9 {
				return nil, fmt.Errorf("bad placeholder {%s} in %q, want {num:02} style padding", inner, src)
			}
			p.width = w
		}
		t.parts = append(t.parts, p)
		rest = rest[i+j+1:]
	}
	return t, nil
}

func placeholders(keys []string) string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = "{" + k + "}"
	}
	return strings.Join(out, ", ")
}

// uses reports whether t has a placeholder for key.
func (t *template) uses(key string) bool {
	for _, p := range t.parts {
		if p.key == key {
			return true
		}
	}
	return false
}

// expand fills in the placeholders.
func (t *template) expand(name string, num int, processName string) string {
	if len(t.parts) == 1 && t.parts[0].key == "" {
		return t.parts[0].lit
	}
	var b strings.Builder
	for _, p := range t.parts {
		switch p.key {
		case "":
			b.WriteString(p.lit)
		case "name":
			b.WriteString(name)
		case "process_name":
			b.WriteString(processName)
		case "num":
			fmt.Fprintf(&b, "%0*d", p.width, num)
		}
	}
	return b.String()
}

// instanceToken is a placeholder in a command argument or an env value: {num} (with
// padding, {num:02}) and {process_name}; any other brace is the program's own ("{}" of
// find -exec, JSON).
var instanceToken = regexp.MustCompile(`\{(num(?::0?[1-9])?|process_name)\}`)

// expandInstance puts each process's own number and name in s, as supervisord expands
// %(process_num)d and %(process_name)s in command= and environment=: numprocs workers on
// ports "80{num}".
func expandInstance(s string, num int, processName string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	return instanceToken.ReplaceAllStringFunc(s, func(tok string) string {
		if tok == "{process_name}" {
			return processName
		}
		w := 0
		if _, spec, ok := strings.Cut(tok[1:len(tok)-1], ":"); ok {
			w, _ = strconv.Atoi(strings.TrimPrefix(spec, "0"))
		}
		return fmt.Sprintf("%0*d", w, num)
	})
}
