package plan

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// The plan's JSON is written by hand rather than with json.MarshalIndent:
// reflection plus re-indenting took ~25 ms for a 1,000-process plan, and
// `starvisor plan --json` should stay under 5 ms. The output is byte-for-byte
// what encoding/json gives with SetIndent("", "  ") and SetEscapeHTML(false);
// TestEncoderMatchesEncodingJSON holds it to that, for every field of a fully
// populated plan too, so a field added to the types but not here fails the
// tests. The helpers append to and return a []byte, strconv style: a buffer
// kept behind a pointer would pay a GC write barrier on every append.

// object tracks one JSON object being written: its depth and member count.
type object struct{ depth, n int }

// open starts an object at depth.
func open(b []byte, depth int) ([]byte, object) {
	return append(b, '{'), object{depth: depth}
}

// key starts the next member, named k (escaped as any string).
func (o *object) key(b []byte, k string) []byte {
	b = o.next(b)
	b = appendString(b, k)
	return append(b, ':', ' ')
}

// field is key for the plan's own field names, which need no escaping.
func (o *object) field(b []byte, name string) []byte {
	b = append(o.next(b), '"')
	b = append(b, name...)
	return append(b, '"', ':', ' ')
}

func (o *object) next(b []byte) []byte {
	if o.n > 0 {
		b = append(b, ',')
	}
	o.n++
	return newline(b, o.depth+1)
}

func (o *object) close(b []byte) []byte {
	if o.n > 0 {
		b = newline(b, o.depth)
	}
	return append(b, '}')
}

const indent = "\n                                "

func newline(b []byte, depth int) []byte {
	if n := 1 + 2*depth; n <= len(indent) {
		return append(b, indent[:n]...)
	}
	b = append(b, '\n')
	for range depth {
		b = append(b, ' ', ' ')
	}
	return b
}

// item starts element i of an array at depth.
func item(b []byte, i, depth int) []byte {
	if i > 0 {
		b = append(b, ',')
	}
	return newline(b, depth+1)
}

// closeList ends an array of n elements at depth.
func closeList(b []byte, n, depth int) []byte {
	if n > 0 {
		b = newline(b, depth)
	}
	return append(b, ']')
}

func appendInt(b []byte, v int) []byte { return strconv.AppendInt(b, int64(v), 10) }

func appendDuration(b []byte, d Duration) []byte { return appendString(b, d.String()) }

func appendStrings(b []byte, vs []string, depth int) []byte {
	b = append(b, '[')
	for i, v := range vs {
		b = appendString(item(b, i, depth), v)
	}
	return closeList(b, len(vs), depth)
}

func appendInts(b []byte, vs []int, depth int) []byte {
	b = append(b, '[')
	for i, v := range vs {
		b = appendInt(item(b, i, depth), v)
	}
	return closeList(b, len(vs), depth)
}

// appendStringMap writes m with its keys sorted, as encoding/json does.
func appendStringMap(b []byte, m map[string]string, depth int) []byte {
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b, o := open(b, depth)
	for _, k := range keys {
		b = appendString(o.key(b, k), m[k])
	}
	return o.close(b)
}

const hexDigits = "0123456789abcdef"

// plain marks the bytes a JSON string holds as they are: printable ASCII except quote and backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString writes s as a JSON string the way encoding/json does without
// HTML escaping: short escapes for \" \\ \b \f \n \r \t, \u00XX for other
// control bytes, \ufffd for invalid UTF-8, and \u2028 and \u2029 escaped.
func appendString(b []byte, s string) []byte { return appendEscaped(b, s, &plain) }

// appendEscaped writes s as a JSON string, copying the bytes keep marks as they are
// and escaping every other one.
func appendEscaped(b []byte, s string, keep *[256]bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if keep[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendJSONString appends s as encoding/json writes it with HTML escaping off. The
// control API's status encoder shares it.
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }
