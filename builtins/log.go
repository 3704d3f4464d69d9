package builtins

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"
)

// logModule provides log(path, max_bytes = "50MB", backups = 10, timestamps = False).
type logModule struct{}

func (logModule) Name() string { return "log" }

func (logModule) Members() starlark.StringDict {
	return starlark.StringDict{"log": starlark.NewBuiltin("log", logFn)}
}

// logValue is what log() returns: an immutable log spec. Its absolute path may still
// hold {name}, {num} and {process_name}, filled in per process by program().
type logValue struct {
	path       string
	tmpl       *template
	maxBytes   int64
	backups    int
	timestamps bool
}

// rotates reports whether the log is a file that rotates: only then may no two processes
// write it (a stream, /dev/stdout, or a file with max_bytes = 0 takes whole appends).
func (l *logValue) rotates() bool {
	return l.maxBytes > 0 && !strings.HasPrefix(l.path, "/dev/")
}

func logFn(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, err := stateFrom(th)
	if err != nil {
		return nil, err
	}
	var (
		p          string
		maxBytes   = sizeArg(50 << 20)
		backups    = intMin{v: 10, min: 0}
		timestamps bool
	)
	if err := unpack(fn.Name(), args, kwargs, "path", &p, "max_bytes?", &maxBytes, "backups?", &backups, "timestamps?", &timestamps); err != nil {
		return nil, err
	}
	if p == "" {
		return nil, fmt.Errorf("%s: path: empty", fn.Name())
	}
	if err := noShell(fn.Name(), "path", p); err != nil {
		return nil, err
	}
	if strings.HasSuffix(p, "/") { // cleaning would make the folder a file
		return nil, fmt.Errorf("%s: path: %q names a folder; give a file in it, such as %q", fn.Name(), p, p+"{name}.log")
	}
	abs := s.abs(th, p)
	t, err := parseTemplate(abs, "name", "num", "process_name")
	if err != nil {
		return nil, fmt.Errorf("%s: path: %w", fn.Name(), err)
	}
	return &logValue{path: abs, tmpl: t, maxBytes: int64(maxBytes), backups: backups.v, timestamps: timestamps}, nil
}

func (l *logValue) String() string {
	return fmt.Sprintf("log(%q, max_bytes = %d, backups = %d, timestamps = %s)",
		l.path, l.maxBytes, l.backups, starlark.Bool(l.timestamps))
}
func (l *logValue) Type() string          { return "log" }
func (l *logValue) Freeze()               {} // immutable
func (l *logValue) Truth() starlark.Bool  { return true }
func (l *logValue) Hash() (uint32, error) { return starlark.String(l.String()).Hash() }

func (l *logValue) Attr(name string) (starlark.Value, error) {
	switch name {
	case "path":
		return starlark.String(l.path), nil
	case "max_bytes":
		return starlark.MakeInt64(l.maxBytes), nil
	case "backups":
		return starlark.MakeInt(l.backups), nil
	case "timestamps":
		return starlark.Bool(l.timestamps), nil
	}
	return nil, nil
}

func (l *logValue) AttrNames() []string {
	return []string{"backups", "max_bytes", "path", "timestamps"}
}

// logArg is a program's stdout or stderr: a log() value, or None to discard the stream.
type logArg struct {
	set bool      // given by the script; otherwise the default log applies
	log *logValue // nil with set: discard
}

func (a *logArg) Unpack(v starlark.Value) error {
	switch x := v.(type) {
	case starlark.NoneType:
		*a = logArg{set: true}
		return nil
	case *logValue:
		*a = logArg{set: true, log: x}
		return nil
	}
	return fmt.Errorf("got %s, want log(...) or None", v.Type())
}

// Interface guards.
var (
	_ Module            = logModule{}
	_ starlark.HasAttrs = (*logValue)(nil)
	_ starlark.Unpacker = (*logArg)(nil)
)
