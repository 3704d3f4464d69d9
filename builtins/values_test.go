package builtins

import (
	"testing"
	"time"

	"github.com/matryer/is"
	"go.starlark.net/starlark"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "10": 10, "10B": 10, "10KB": 10 << 10, "10mb": 10 << 20, " 1 GB ": 1 << 30,
		// pm2's spellings (max_memory_restart: "200M"), and the unit status prints sizes in
		"200M": 200 << 20, "1G": 1 << 30, "512K": 512 << 10, "200MiB": 200 << 20, "2gib": 2 << 30} {
		is := is.New(t)
		got, err := parseSize(in)
		is.NoErr(err)
		is.Equal(got, want)
	}
	for _, in := range []string{"", "10XB", "-1", "1.5MB", "MB", "99999999999999999999", "10MIBB", "10T"} {
		_, err := parseSize(in)
		is.New(t).True(err != nil) // rejected
	}
}

func TestUnpackers(t *testing.T) {
	is := is.New(t)
	var d durationArg
	is.NoErr(d.Unpack(starlark.String("1m30s")))
	is.Equal(time.Duration(d), 90*time.Second)
	is.NoErr(d.Unpack(starlark.MakeInt(7)))
	is.Equal(time.Duration(d), 7*time.Second)
	is.Equal(d.Unpack(starlark.String("-1s")).Error(), `got "-1s", want a duration such as "10s"`)
	is.Equal(d.Unpack(starlark.MakeInt(-1)).Error(), `got -1, want seconds 0..4611686018`)
	is.Equal(d.Unpack(starlark.MakeInt(1<<33)).Error(), `got 8589934592, want seconds 0..4611686018`)

	var sig signalArg
	for _, in := range []string{"term", "SIGTERM", "SigTerm", " TERM "} {
		is.NoErr(sig.Unpack(starlark.String(in)))
		is.Equal(string(sig), "TERM")
	}
	is.True(sig.Unpack(starlark.String("SIGSTOP")) != nil)
	is.NoErr(sig.Unpack(starlark.MakeInt(15))) // a number, as stopsignal=15
	is.Equal(string(sig), "TERM")
	is.True(sig.Unpack(starlark.Float(1.5)) != nil)

	var r restartArg
	is.NoErr(r.Unpack(starlark.True))
	is.Equal(string(r), "true")
	is.NoErr(r.Unpack(starlark.False))
	is.Equal(string(r), "false")
	is.NoErr(r.Unpack(starlark.String("unexpected")))
	is.Equal(string(r), "unexpected")
	is.Equal(r.Unpack(starlark.String("true")).Error(), `got "true", want True, False or "unexpected"`)

	var u umaskArg
	is.NoErr(u.Unpack(starlark.String("22")))
	is.Equal(string(u), "022")
	is.NoErr(u.Unpack(starlark.MakeInt(0o027)))
	is.Equal(string(u), "027")
	is.NoErr(u.Unpack(starlark.String("0o7")))
	is.Equal(string(u), "007")
	is.True(u.Unpack(starlark.String("1000")) != nil)
	is.True(u.Unpack(starlark.MakeInt(512)) != nil)

	m := intMin{v: 3, min: -1}
	is.Equal(m.Unpack(starlark.True).Error(), "got bool, want int")
	is.Equal(m.v, 3) // untouched on error
}

func TestTemplate(t *testing.T) {
	is := is.New(t)
	tm, err := parseTemplate("/log/{name}-{num:03}-{num}/{process_name}.log", "name", "num", "process_name")
	is.NoErr(err)
	is.Equal(tm.expand("web", 7, "web_7"), "/log/web-007-7/web_7.log")
	is.True(tm.uses("num"))
	plain, err := parseTemplate("/log/a.log", "name", "num")
	is.NoErr(err)
	is.Equal(plain.expand("x", 1, ""), "/log/a.log")
	is.True(!plain.uses("num"))

	for src, msg := range map[string]string{
		"{process_name}": `unknown placeholder {process_name} in "{process_name}", want {name}, {num}`,
		"{name":          `unclosed { in "{name"`,
		"{num:x}":        `bad placeholder {num:x} in "{num:x}", want {num:02} style padding`,
		"{name:02}":      `bad placeholder {name:02} in "{name:02}", want {num:02} style padding`,
	} {
		_, err := parseTemplate(src, "name", "num")
		is.True(err != nil)
		is.Equal(err.Error(), msg)
	}
}
