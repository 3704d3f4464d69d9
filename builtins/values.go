package builtins

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"golang.org/x/sys/unix"

	"github.com/starvisor/starvisor/engine/plan"
)

// This file holds the argument types builtins share (Tilt's value/): each is a
// starlark.Unpacker that converts to Go at call time and rejects bad input with
// "got X, want Y", so nothing mutable from the script survives into the plan.

// unpack is starlark.UnpackArgs with messages shaped "fn: param: problem".
func unpack(fn string, args starlark.Tuple, kwargs []starlark.Tuple, pairs ...any) error {
	kwargs = dropNoneDefaults(kwargs, pairs)
	err := starlark.UnpackArgs(fn, args, kwargs, pairs...)
	if err != nil {
		msg := err.Error()
		if rest, ok := strings.CutPrefix(msg, fn+": for parameter "); ok {
			if param, detail, ok := strings.Cut(rest, ": "); ok {
				msg = fn + ": " + strings.Trim(param, `"`) + ": " + detail
			}
		}
		return errors.New(msg)
	}
	return nil
}

// dropNoneDefaults leaves out the keyword arguments that are None for an optional
// parameter that takes no None (see noneAsDefault); pairs as starlark.UnpackArgs takes them.
func dropNoneDefaults(kwargs []starlark.Tuple, pairs []any) []starlark.Tuple {
	var out []starlark.Tuple
	for i, kv := range kwargs {
		drop := false
		if kv[1] == starlark.None {
			name, _ := starlark.AsString(kv[0])
			optional := false
			for j := 0; j+1 < len(pairs); j += 2 {
				p, _ := pairs[j].(string)
				optional = optional || strings.HasSuffix(p, "?")
				if strings.TrimRight(p, "?") == name {
					drop = optional && noneAsDefault(kv[1], pairs[j+1])
					break
				}
			}
		}
		switch {
		case drop && out == nil:
			out = append(make([]starlark.Tuple, 0, len(kwargs)), kwargs[:i]...)
		case !drop && out != nil:
			out = append(out, kv)
		}
	}
	if out == nil {
		return kwargs
	}
	return out
}

// maxPositional rejects calls with more than max positional arguments, for builtins
// whose remaining parameters are keyword-only.
func maxPositional(fn string, args starlark.Tuple, max int) error {
	if len(args) > max {
		return fmt.Errorf("%s: got %d positional arguments, want at most %d; pass the others by keyword", fn, len(args), max)
	}
	return nil
}

// elements returns the items of a list or tuple.
func elements(v starlark.Value) ([]starlark.Value, bool) {
	switch x := v.(type) {
	case *starlark.List:
		out := make([]starlark.Value, x.Len())
		for i := range out {
			out[i] = x.Index(i)
		}
		return out, true
	case starlark.Tuple:
		return x, true
	}
	return nil, false
}

// durationArg is a duration string such as "10s", or an int of seconds; never negative.
type durationArg time.Duration

func (d *durationArg) Unpack(v starlark.Value) error {
	switch x := v.(type) {
	case starlark.String:
		dd, err := time.ParseDuration(string(x))
		if err != nil || dd < 0 {
			return fmt.Errorf("got %q, want a duration such as \"10s\"", string(x))
		}
		*d = durationArg(dd)
		return nil
	case starlark.Int:
		n, ok := x.Int64()
		if max := int64(time.Duration(1<<62) / time.Second); !ok || n < 0 || n > max {
			return fmt.Errorf("got %s, want seconds 0..%d", x, max)
		}
		*d = durationArg(time.Duration(n) * time.Second)
		return nil
	}
	return fmt.Errorf("got %s, want a duration string such as \"10s\" or an int of seconds", v.Type())
}

// sizeArg is a byte count: an int, or a string with supervisord's suffixes (KB = 1024).
type sizeArg int64

func (s *sizeArg) Unpack(v starlark.Value) error {
	switch x := v.(type) {
	case starlark.Int:
		n, ok := x.Int64()
		if !ok || n < 0 {
			return fmt.Errorf("got %s, want bytes >= 0", x)
		}
		*s = sizeArg(n)
		return nil
	case starlark.String:
		n, err := parseSize(string(x))
		if err != nil {
			return err
		}
		*s = sizeArg(n)
		return nil
	}
	return fmt.Errorf("got %s, want a size such as \"10MB\" or an int of bytes", v.Type())
}

// parseSize reads digits and an optional B, KB, MB or GB (any case, blanks allowed), all
// of 1024 as supervisord's; pm2's K, M and G, and KiB, MiB and GiB (as status prints
// sizes) mean the same.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	digits := strings.TrimRightFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToUpper(strings.TrimSpace(t[len(digits):]))
	mult := map[string]int64{"": 1, "B": 1,
		"K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10,
		"M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20,
		"G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30}[unit]
	n, err := strconv.ParseInt(digits, 10, 64)
	if mult == 0 || err != nil || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, fmt.Errorf("got %q, want a size such as \"10MB\" or an int of bytes", s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("got %q, size too large", s)
	}
	return n * mult, nil
}

// signalArg is a signal name, with or without "SIG", in any case; it holds "TERM".
type signalArg string

func (s *signalArg) Unpack(v starlark.Value) error {
	str, ok := starlark.AsString(v)
	if i, isInt := v.(starlark.Int); isInt {
		str, ok = i.String(), true // stop_signal = 9, as stopsignal=9: read as its name
	}
	if !ok {
		return fmt.Errorf("got %s, want a signal name such as \"TERM\"", v.Type())
	}
	name := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(str)), "SIG")
	if n, err := strconv.Atoi(name); err == nil && n > 0 {
		// A number, as supervisord takes it (stopsignal=9): the plan holds its name.
		if full := unix.SignalName(syscall.Signal(n)); full != "" {
			name = strings.TrimPrefix(full, "SIG")
		}
	}
	if err := plan.StopSignalError(name); err != nil {
		return fmt.Errorf("got %s: %v", v.String(), err) // 99, "PWRR": as written
	}
	*s = signalArg(name)
	return nil
}

// restartArg is autorestart: True, False or "unexpected", held as plan spells it.
type restartArg string

func (r *restartArg) Unpack(v starlark.Value) error {
	switch x := v.(type) {
	case starlark.Bool:
		*r = restartArg(strconv.FormatBool(bool(x)))
		return nil
	case starlark.String:
		if x == "unexpected" {
			*r = "unexpected"
			return nil
		}
	}
	return fmt.Errorf("got %s, want True, False or \"unexpected\"", v.String())
}

// oneOf is a string from a fixed set.
type oneOf struct {
	v    string
	want []string
}

func (o *oneOf) Unpack(v starlark.Value) error {
	s, ok := starlark.AsString(v)
	if ok {
		for _, w := range o.want {
			if s == w {
				o.v = s
				return nil
			}
		}
	}
	return fmt.Errorf("got %s, want %s", v.String(), quoteJoin(o.want))
}

func quoteJoin(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// intMin is an int no smaller than min.
type intMin struct {
	v, min int
	max    int // 0: none
}

func (i *intMin) Unpack(v starlark.Value) error {
	if _, ok := v.(starlark.Int); !ok {
		return fmt.Errorf("got %s, want int", v.Type())
	}
	var n int
	if err := starlark.AsInt(v, &n); err != nil {
		return err
	}
	if n < i.min {
		return fmt.Errorf("got %d, want >= %d", n, i.min)
	}
	if i.max > 0 && n > i.max {
		return fmt.Errorf("got %d, want at most %d", n, i.max)
	}
	i.v = n
	return nil
}

// secondsArg is whole seconds (start_secs): an int, or a duration string of whole
// seconds ("2s", "1m"), as the other durations are written.
type secondsArg struct{ intMin }

func (s *secondsArg) Unpack(v starlark.Value) error {
	str, ok := starlark.AsString(v)
	if !ok {
		return s.intMin.Unpack(v)
	}
	d, err := time.ParseDuration(str)
	if err != nil || d < 0 || d%time.Second != 0 {
		return fmt.Errorf("got %q, want whole seconds: an int or a duration such as \"2s\"", str)
	}
	s.v = int(d / time.Second)
	return nil
}

// stringList is a list or tuple of strings.
type stringList []string

func (l *stringList) Unpack(v starlark.Value) error {
	items, ok := elements(v)
	if !ok {
		return fmt.Errorf("got %s, want list of strings", v.Type())
	}
	out := make([]string, len(items))
	for i, it := range items {
		s, ok := starlark.AsString(it)
		if !ok {
			return fmt.Errorf("got %s %s at index %d, want string", it.Type(), shortRepr(it), i)
		}
		out[i] = s
	}
	*l = out
	return nil
}

// commandArg is an argv: a list of strings, or one string split like a POSIX shell.
type commandArg []string

func (c *commandArg) Unpack(v starlark.Value) error {
	var argv []string
	if s, ok := v.(starlark.String); ok {
		var err error
		if argv, err = splitCommand(string(s)); err != nil {
			return err
		}
	} else {
		if _, ok := elements(v); !ok {
			return fmt.Errorf("got %s, want a list of strings or a command string", v.Type())
		}
		var l stringList
		if err := l.Unpack(v); err != nil {
			return err // names the element: a port given as 8080, not "8080"
		}
		argv = l
	}
	if len(argv) == 0 || argv[0] == "" {
		return fmt.Errorf("empty command")
	}
	*c = argv
	return nil
}

// envArg is a dict of variable names to string values.
type envArg map[string]string

func (e *envArg) Unpack(v starlark.Value) error {
	d, ok := v.(*starlark.Dict)
	if !ok {
		return fmt.Errorf("got %s, want dict", v.Type())
	}
	out := make(map[string]string, d.Len())
	for _, it := range d.Items() {
		k, ok := starlark.AsString(it[0])
		if !ok {
			return fmt.Errorf("got key %s, want a variable name", it[0].String())
		}
		if msg := plan.EnvNameProblem(k); msg != "" {
			return errors.New(msg)
		}
		val, ok := starlark.AsString(it[1])
		if !ok {
			return fmt.Errorf("%s: got %s, want string", k, it[1].Type())
		}
		out[k] = val
	}
	*e = out
	return nil
}

// exitCodesArg is a list of exit codes 0..255.
type exitCodesArg []int

func (e *exitCodesArg) Unpack(v starlark.Value) error {
	items, ok := elements(v)
	if !ok {
		return fmt.Errorf("got %s, want list of ints", v.Type())
	}
	out := make([]int, len(items))
	for i, it := range items {
		var n int
		if _, isInt := it.(starlark.Int); !isInt || starlark.AsInt(it, &n) != nil || n < 0 || n > 255 {
			return fmt.Errorf("got %s at index %d, want an exit code 0..255", it.String(), i)
		}
		out[i] = n
	}
	*e = out
	return nil
}

// umaskArg is an octal umask given as a string ("022") or an int (0o022); it holds "022".
type umaskArg string

func (u *umaskArg) Unpack(v starlark.Value) error {
	var n uint64
	switch x := v.(type) {
	case starlark.String:
		s := strings.TrimPrefix(strings.TrimPrefix(string(x), "0o"), "0O")
		var err error
		if n, err = strconv.ParseUint(s, 8, 32); err != nil || s == "" {
			return fmt.Errorf("got %q, want an octal umask such as \"022\"", string(x))
		}
	case starlark.Int:
		i, ok := x.Uint64()
		if !ok {
			return fmt.Errorf("got %s, want an umask 0o000..0o777", x)
		}
		n = i
	default:
		return fmt.Errorf("got %s, want an octal umask string such as \"022\"", v.Type())
	}
	if n > 0o777 {
		return fmt.Errorf("got %s, want an umask 0o000..0o777", v.String())
	}
	*u = umaskArg(fmt.Sprintf("%03o", n))
	return nil
}

// programTag marks the struct program() returns, so depends_on can accept it.
const programTag = starlark.String("program")

// namesArg is a list of program names, each a string or a value program() returned.
type namesArg []string

func (n *namesArg) Unpack(v starlark.Value) error {
	items, ok := elements(v)
	if !ok {
		return fmt.Errorf("got %s, want list of program names or program values", v.Type())
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		name, err := programName(it)
		if err != nil {
			return fmt.Errorf("%s at index %d", err, i)
		}
		out = append(out, name)
	}
	*n = out
	return nil
}

// programName returns the name of a program given as a string or a program() value.
func programName(v starlark.Value) (string, error) {
	if s, ok := starlark.AsString(v); ok && s != "" {
		return s, nil
	}
	if st, ok := v.(*starlarkstruct.Struct); ok && st.Constructor() == programTag {
		name, err := st.Attr("name")
		if err == nil {
			if s, ok := starlark.AsString(name); ok {
				return s, nil
			}
		}
	}
	return "", fmt.Errorf("got %s, want a program name or a program value", v.String())
}

// Interface guards.
var (
	_ starlark.Unpacker = (*durationArg)(nil)
	_ starlark.Unpacker = (*sizeArg)(nil)
	_ starlark.Unpacker = (*signalArg)(nil)
	_ starlark.Unpacker = (*restartArg)(nil)
	_ starlark.Unpacker = (*oneOf)(nil)
	_ starlark.Unpacker = (*intMin)(nil)
	_ starlark.Unpacker = (*stringList)(nil)
	_ starlark.Unpacker = (*commandArg)(nil)
	_ starlark.Unpacker = (*envArg)(nil)
	_ starlark.Unpacker = (*exitCodesArg)(nil)
	_ starlark.Unpacker = (*umaskArg)(nil)
	_ starlark.Unpacker = (*namesArg)(nil)
)

// shortRepr is v as Starlark writes it, cut short: enough to find it in the script.
func shortRepr(v starlark.Value) string {
	r := v.String()
	if len(r) > 40 {
		r = r[:37] + "..."
	}
	return r
}
