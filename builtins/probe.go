package builtins

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/starvisor/starvisor/engine/plan"
)

// probeModule provides readiness checks for program(ready = ...):
// probe.tcp(port, host = "127.0.0.1"), probe.http(url, status = 200),
// probe.exec(command), probe.log(pattern), probe.exited() (a job: see plan.ProbeExited);
// all but probe.exited take interval = "1s" (the longest
// pause between tries: the first come at once and after 25 ms, the pause doubling up to
// interval) and timeout = "60s" (how long the process may take to become ready).
type probeModule struct{}

func (probeModule) Name() string { return "probe" }

func (probeModule) Members() starlark.StringDict {
	return starlark.StringDict{"probe": &starlarkstruct.Module{Name: "probe", Members: starlark.StringDict{
		"tcp":    starlark.NewBuiltin("probe.tcp", probeTCP),
		"http":   starlark.NewBuiltin("probe.http", probeHTTP),
		"exec":   starlark.NewBuiltin("probe.exec", probeExec),
		"log":    starlark.NewBuiltin("probe.log", probeLog),
		"exited": starlark.NewBuiltin("probe.exited", probeExited),
	}}}
}

// Probe timing defaults.
const (
	DefaultProbeInterval = time.Second
	DefaultProbeTimeout  = 60 * time.Second
)

// probeValue is what probe.* return: an immutable plan.Probe. Its URL, host and command
// may hold {num} and {process_name}, and port is probe.tcp's port as given ("8080", or
// "80{num:02}"): each process of a pool is probed on its own (instance).
type probeValue struct {
	p    plan.Probe
	port string
}

// probeArgs unpacks the kind's own parameters followed by interval and timeout.
func probeArgs(fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, p *plan.Probe, pairs ...any) error {
	interval, timeout := durationArg(DefaultProbeInterval), durationArg(DefaultProbeTimeout)
	pairs = append(pairs, "interval?", &interval, "timeout?", &timeout)
	if err := unpack(fn.Name(), args, kwargs, pairs...); err != nil {
		return err
	}
	if interval <= 0 {
		return fmt.Errorf("%s: interval: got %s, want > 0", fn.Name(), time.Duration(interval))
	}
	p.Interval, p.Timeout = plan.Duration(interval), plan.Duration(timeout)
	return nil
}

func probeTCP(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	p := plan.Probe{Kind: plan.ProbeTCP, Host: "127.0.0.1"}
	var port portArg
	if err := probeArgs(fn, args, kwargs, &p, "port", &port, "host?", &p.Host); err != nil {
		return nil, err
	}
	if p.Host == "" {
		return nil, fmt.Errorf("%s: host: empty", fn.Name())
	}
	p.Port, _ = portOf(string(port), 0, "") // a template's, per process (instance)
	return &probeValue{p, string(port)}, nil
}

// portArg is probe.tcp's port: an int, or a string that gives one for each process of a
// pool, "80{num:02}" as in its command.
type portArg string

func (a *portArg) Unpack(v starlark.Value) error {
	switch x := v.(type) {
	case starlark.Int:
		n, ok := x.Int64()
		if !ok || n < 1 || n > 65535 {
			return fmt.Errorf("got %s, want 1..65535", x)
		}
		*a = portArg(strconv.FormatInt(n, 10))
		return nil
	case starlark.String:
		// Digits alone are a port too ("8080" from host.env), checked as an int is.
		if n, err := strconv.Atoi(string(x)); err == nil {
			return a.Unpack(starlark.MakeInt(n))
		}
		if _, err := strconv.Atoi(expandInstance(string(x), 1, "")); err != nil || !strings.Contains(string(x), "{num") {
			return fmt.Errorf("got %q, want an int, or digits and {num} (\"80{num:02}\")", string(x))
		}
		*a = portArg(x)
		return nil
	}
	return fmt.Errorf("got %s, want int", v.Type())
}

// portOf is the port of process num for port (a portArg), or an error when out of range.
func portOf(port string, num int, processName string) (int, error) {
	s := expandInstance(port, num, processName)
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("probe.tcp port %q is %s for %s, want 1..65535", port, s, processName)
	}
	return n, nil
}

func probeHTTP(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	p := plan.Probe{Kind: plan.ProbeHTTP, Status: 200}
	if err := probeArgs(fn, args, kwargs, &p, "url", &p.URL, "status?", &p.Status); err != nil {
		return nil, err
	}
	// As one process would have it: {num} in a pool's port is no URL until then.
	u, err := url.Parse(expandInstance(p.URL, 1, "p"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s: url: got %q, want an http:// or https:// URL", fn.Name(), p.URL)
	}
	if p.Status < 100 || p.Status > 599 {
		return nil, fmt.Errorf("%s: status: got %d, want 100..599", fn.Name(), p.Status)
	}
	return &probeValue{p: p}, nil
}

func probeExec(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, err := stateFrom(th)
	if err != nil {
		return nil, err
	}
	p := plan.Probe{Kind: plan.ProbeExec}
	var command commandArg
	if err := probeArgs(fn, args, kwargs, &p, "command", &command); err != nil {
		return nil, err
	}
	p.Command = command
	if err := noShell(fn.Name(), "command", p.Command[0]); err != nil {
		return nil, err
	}
	if strings.Contains(p.Command[0], "/") && !filepath.IsAbs(p.Command[0]) {
		p.Command[0] = s.abs(th, p.Command[0])
	}
	return &probeValue{p: p}, nil
}

func probeLog(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	p := plan.Probe{Kind: plan.ProbeLog}
	if err := probeArgs(fn, args, kwargs, &p, "pattern", &p.Pattern); err != nil {
		return nil, err
	}
	if p.Pattern == "" {
		return nil, fmt.Errorf("%s: pattern: empty", fn.Name())
	}
	if _, err := regexp.Compile(p.Pattern); err != nil {
		return nil, fmt.Errorf("%s: pattern: %w", fn.Name(), err)
	}
	return &probeValue{p: p}, nil
}

// probeExited makes the program a job: ready once it exited with one of its exit_codes.
func probeExited(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := unpack(fn.Name(), args, kwargs); err != nil {
		return nil, err
	}
	return &probeValue{p: plan.Probe{Kind: plan.ProbeExited}}, nil
}

func (v *probeValue) String() string {
	var arg string
	switch v.p.Kind {
	case plan.ProbeTCP:
		arg = v.port
		if strings.Contains(v.port, "{") {
			arg = strconv.Quote(v.port)
		}
		arg += fmt.Sprintf(", host = %q", v.p.Host)
	case plan.ProbeHTTP:
		arg = fmt.Sprintf("%q, status = %d", v.p.URL, v.p.Status)
	case plan.ProbeExec:
		arg = fmt.Sprintf("%q", v.p.Command)
	case plan.ProbeLog:
		arg = fmt.Sprintf("%q", v.p.Pattern)
	}
	if v.p.Kind == plan.ProbeExited {
		return "probe.exited()"
	}
	return fmt.Sprintf("probe.%s(%s, interval = %q, timeout = %q)", v.p.Kind, arg, v.p.Interval, v.p.Timeout)
}
func (v *probeValue) Type() string          { return "probe" }
func (v *probeValue) Freeze()               {} // immutable
func (v *probeValue) Truth() starlark.Bool  { return true }
func (v *probeValue) Hash() (uint32, error) { return starlark.String(v.String()).Hash() }

func (v *probeValue) Attr(name string) (starlark.Value, error) {
	switch name {
	case "kind":
		return starlark.String(v.p.Kind), nil
	case "interval":
		return starlark.String(v.p.Interval.String()), nil
	case "timeout":
		return starlark.String(v.p.Timeout.String()), nil
	}
	return nil, nil
}

func (v *probeValue) AttrNames() []string { return []string{"interval", "kind", "timeout"} }

// probeArg is program(ready = ...): a probe value or None.
type probeArg struct {
	p    *plan.Probe
	port string // probe.tcp's, as given
}

func (a *probeArg) Unpack(v starlark.Value) error {
	switch x := v.(type) {
	case starlark.NoneType:
		a.p = nil
		return nil
	case *probeValue:
		p := x.p
		a.p, a.port = &p, x.port
		return nil
	}
	if b, ok := v.(*starlark.Builtin); ok && strings.HasPrefix(b.Name(), "probe.") {
		return fmt.Errorf("got the function %s, want its result: %s(...)", b.Name(), b.Name())
	}
	return fmt.Errorf("got %s, want probe.tcp(...), probe.http(...), probe.exec(...), probe.log(...), probe.exited() or None", v.Type())
}

// instance returns a copy for process num, with its number and name where the probe's
// URL, host, port and command say {num} and {process_name}, as its command does: each
// process of a pool is probed on its own port. Processes share nothing mutable.
func (a probeArg) instance(num int, processName string) (*plan.Probe, error) {
	if a.p == nil {
		return nil, nil
	}
	p := *a.p
	p.URL = expandInstance(p.URL, num, processName)
	if p.Kind == plan.ProbeHTTP {
		// A port made of {num} ("99{num}99") is checked here, as probe.tcp's is.
		port := ""
		u, err := url.Parse(p.URL)
		if err == nil {
			port = u.Port()
		}
		if n, perr := strconv.Atoi(port); err != nil || port != "" && (perr != nil || n < 1 || n > 65535) {
			return nil, fmt.Errorf("probe.http url %q is %q for %s, want a port from 1 to 65535", a.p.URL, p.URL, processName)
		}
	}
	p.Host = expandInstance(p.Host, num, processName)
	if a.port != "" {
		var err error
		if p.Port, err = portOf(a.port, num, processName); err != nil {
			return nil, err
		}
	}
	p.Command = nil
	for _, arg := range a.p.Command {
		p.Command = append(p.Command, expandInstance(arg, num, processName))
	}
	return &p, nil
}

// Interface guards.
var (
	_ Module            = probeModule{}
	_ starlark.HasAttrs = (*probeValue)(nil)
	_ starlark.Unpacker = (*probeArg)(nil)
)
