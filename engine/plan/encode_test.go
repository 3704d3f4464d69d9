package plan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/matryer/is"
)

// referenceJSON is what JSON must produce, via encoding/json.
func referenceJSON(t testing.TB, p *Plan) []byte {
	c := *p
	c.normaliseCopy()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&c); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fill sets every field reachable from v to a non-zero value, so a field the
// hand-written encoder forgets shows up as a difference.
func fill(v reflect.Value, s string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(len(s)) + 7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(v.Index(0), s+"0")
		fill(v.Index(1), s+"1")
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for _, k := range []string{s + "b", s + "a"} {
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e, k)
			m.SetMapIndex(reflect.ValueOf(k), e)
		}
		v.Set(m)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), s)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), s+v.Type().Field(i).Name)
		}
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

func TestEncoderMatchesEncodingJSON(t *testing.T) {
	full := &Plan{}
	fill(reflect.ValueOf(full).Elem(), "x")
	tests := []struct {
		name string
		plan *Plan
	}{
		{"empty", &Plan{}},
		{"every field set", full},
		{"golden", goldenPlan(t)},
		{"big", bigPlan(300)},
		{"probes without optional fields", planOf(prog("a", func(pr *Program) { pr.Ready = &Probe{Kind: ProbeExec, Command: []string{}} }))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			got, err := tt.plan.JSON()
			is.NoErr(err)
			is.Equal(string(got), string(referenceJSON(t, tt.plan)))
		})
	}
}

func TestEncoderStrings(t *testing.T) {
	cases := []string{
		"", "plain", `quote " and \ backslash`, "\b\f\n\r\t", "\x00\x01\x1f\x7f",
		"<html> & 'single'", "héllo wörld ✓ 😀", "bad \xff utf8 \xc3", "sep \u2028 \u2029",
	}
	for c := range 0x80 {
		cases = append(cases, string(rune(c)))
	}
	for _, s := range cases {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := appendString(nil, s)
		if want := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzEncoderString(f *testing.F) {
	for _, s := range []string{"a", "\x00", "\xff", "\u2028", `"\`, "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := appendString(nil, s)
		if want := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s (valid utf8: %v)", s, got, want, utf8.ValidString(s))
		}
	})
}
