package builtins

import (
	"reflect"
	"strings"
	"testing"

	"github.com/matryer/is"
	"go.starlark.net/starlark"
)

func TestINIParse(t *testing.T) {
	is := is.New(t)
	c := newINIConfig()
	src := "; full-line comment\n# another\n[program:a]\nCommand = /bin/a ; inline\n  --flag\n\n  last\nenv=x;y # z\nkey: colon\nkey=again\n[program:b]\nx=1\n[program:a]\npriority=2\n"
	is.NoErr(c.parse("/c/a.conf", []byte(src)))
	is.Equal(len(c.sections), 2)
	a := c.byName["program:a"]
	is.Equal(a.keys, []string{"command", "env", "key", "priority"})
	is.Equal(a.values["command"], "/bin/a\n--flag\n\nlast") // continuation lines, an empty line kept inside
	is.Equal(a.values["env"], "x;y")                        // ; without whitespace before it is text
	is.Equal(a.values["key"], "again")                      // last value wins
	is.Equal(a.values["priority"], "2")                     // a section repeated later merges

	err := newINIConfig().parse("/c/b.conf", []byte("x=1\n"))
	is.True(err != nil && strings.Contains(err.Error(), "/c/b.conf:1: "))
	err = newINIConfig().parse("/c/b.conf", []byte("[s]\nnovalue\n"))
	is.True(err != nil && strings.Contains(err.Error(), "not a key = value line"))
	err = newINIConfig().parse("/c/b.conf", []byte("[program:x\ncommand=y\n"))
	is.True(err != nil && strings.Contains(err.Error(), `/c/b.conf:1: "[program:x": a section header without its closing ]`))
}

// %(here)s is replaced in the values of each file by that file's folder only in a
// config with [include] (supervisord's expand_here); elsewhere it stays for the
// expansions, so %%(here)s is a literal %(here)s.
func TestINIHere(t *testing.T) {
	is := is.New(t)
	c := newINIConfig()
	is.NoErr(c.parse("/c/a.conf", []byte("[p]\nd=%(here)s/x\n")))
	is.Equal(c.byName["p"].values["d"], "%(here)s/x")
	c.expandHere("/c/a.conf", "/c")
	is.NoErr(c.parse("/c/inc/b.conf", []byte("[p]\ne=%(here)s/y\n")))
	c.expandHere("/c/inc/b.conf", "/c/inc")
	is.Equal(c.byName["p"].values["d"], "/c/x")
	is.Equal(c.byName["p"].values["e"], "/c/inc/y")
	is.Equal(c.byName["p"].files["e"], "/c/inc/b.conf")
}

func TestPyFormat(t *testing.T) {
	vars := map[string]any{"program_name": "web", "process_num": 7, "s": "x"}
	none := func(string) (any, bool) { return nil, false }
	for _, tc := range []struct{ in, want, err string }{
		{"%(program_name)s_%(process_num)02d", "web_07", ""},
		{"%(process_num)d %(process_num)3d|%(s)-3s|", "7   7|x  |", ""},
		{"100%% %%(x)s", "100% %(x)s", ""},
		{"%(nope)s", "", `contains names ("nope") which cannot be expanded`},
		{"50%", "", "badly formatted"},
		{"%(s)d", "", "a number is required"},
	} {
		got, err := pyFormat(tc.in, vars, none)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("pyFormat(%q): error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("pyFormat(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestShlexSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{`a "b c" 'd e'`, []string{"a", "b c", "d e"}, ""},
		{`"x \$y \" \\"`, []string{`x \$y " \`}, ""},
		{`one\ two 'a\b'`, []string{"one two", `a\b`}, ""},
		{`''`, []string{""}, ""},
		{`sh -c 'echo A`, nil, "No closing quotation"},
	} {
		got, err := shlexSplit(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("shlexSplit(%q): error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("shlexSplit(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// The values as written (one pair of quotes off), and as supervisord reads them: it
// strips every quote at either end (checked against supervisord 4.2.5's own parser).
func TestParseKeyValuePairs(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   [][2]string
		theirs []string
		err    bool
	}{
		{`KEY="a,b c",K2=v`, [][2]string{{"KEY", "a,b c"}, {"K2", "v"}}, []string{"a,b c", "v"}, false},
		{`A='x y', B=/p:/q, A=z`, [][2]string{{"A", "z"}, {"B", "/p:/q"}}, []string{"z", "/p:/q"}, false},
		{`TAG=a#b,X=1`, [][2]string{{"TAG", "a"}}, []string{"a"}, false}, // # starts a shlex comment
		{`J='-Dg="hi"',Q="'",P='"$ "',E=""`, [][2]string{{"J", `-Dg="hi"`}, {"Q", "'"}, {"P", `"$ "`}, {"E", ""}},
			[]string{`-Dg="hi`, "", "$ ", ""}, false},
		{`B="hello, 'world'",Z="a'b'c"`, [][2]string{{"B", "hello, 'world'"}, {"Z", "a'b'c"}}, []string{"hello, 'world", "a'b'c"}, false},
		{`K=`, nil, nil, true},
		{``, nil, nil, false},
	} {
		got, theirs, err := parseKeyValuePairs(tc.in)
		if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(theirs, tc.theirs) {
			t.Errorf("parseKeyValuePairs(%q) = %q, %q, %v; want %q, %q (error %v)", tc.in, got, theirs, err, tc.want, tc.theirs, tc.err)
		}
	}
}

// Comments are kept for import, where they stand: above the file's first section
// (apart from it), above a header or key, after a value, and blocks inside a section
// that stand above nothing (commented-out keys).
func TestINIComments(t *testing.T) {
	is := is.New(t)
	c := newINIConfig()
	src := "; about this file\n#  indented text\n\n; the web server\n[program:web] ; header note\n" +
		"; why this command\ncommand=/bin/web ; inline\n  --flag ; on a continuation\n" +
		";\n;autostart=false\n\n; loose, then the next key\n\npriority=5\n\n" +
		"[group:g]\nprograms=web\n;trailing at the end"
	is.NoErr(c.parse("/c/a.conf", []byte(src)))
	is.Equal(c.top, []fileComments{{"/c/a.conf", []string{"about this file", " indented text"}, "program:web", []string{"the web server"}}})
	web := c.byName["program:web"]
	is.Equal(web.header, []string{"the web server", "header note"})
	is.Equal(web.keyComments, map[string][]string{"command": {"why this command"}, "priority": {"loose, then the next key"}})
	is.Equal(web.inline, map[string][]string{"command": {"inline", "on a continuation"}})
	is.Equal(web.tail, []string{"", "autostart=false"})
	is.Equal(web.values["command"], "/bin/web\n--flag") // values as before
	is.Equal(c.byName["group:g"].tail, []string{"trailing at the end"})

	// Without comments=True, read's value is what it was: no comments key.
	sec := c.value().(*starlark.List).Index(0).(*starlark.Dict)
	_, found, _ := sec.Get(starlark.String("comments"))
	is.True(!found)
	with := c.commentedValue().(*starlark.Dict)
	files, _, _ := with.Get(starlark.String("files"))
	is.Equal(files.String(), `[("/c/a.conf", ["about this file", " indented text"], "program:web", ["the web server"])]`)
}
