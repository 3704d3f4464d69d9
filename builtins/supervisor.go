package builtins

import (
	"cmp"
	"fmt"
	"path/filepath"

	"go.starlark.net/starlark"
)

// supervisorModule provides supervisor(socket, pidfile, log_dir, state_dir, minfds):
// daemon-wide settings, at most once per evaluation.
type supervisorModule struct{}

func (supervisorModule) Name() string { return "supervisor" }

func (supervisorModule) Members() starlark.StringDict {
	return starlark.StringDict{"supervisor": starlark.NewBuiltin("supervisor", supervisorFn)}
}

// supervisorDecl holds the settings given; empty ones take their default in build.
type supervisorDecl struct {
	socket, pidfile, logDir, stateDir string
	minFDs                            int
	pos                               string
}

func supervisorFn(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, err := stateFrom(th)
	if err != nil {
		return nil, err
	}
	if err := maxPositional(fn.Name(), args, 0); err != nil {
		return nil, err
	}
	var d supervisorDecl
	if err := unpack(fn.Name(), args, kwargs, "socket?", &d.socket, "pidfile?", &d.pidfile, "log_dir?", &d.logDir, "state_dir?", &d.stateDir,
		"minfds?", &d.minFDs); err != nil {
		return nil, err
	}
	if d.minFDs < 0 || d.minFDs > maxMinFDs {
		return nil, fmt.Errorf("%s: minfds: got %d, want 0 to %d", fn.Name(), d.minFDs, maxMinFDs)
	}
	if s.sup != nil {
		return nil, fmt.Errorf("%s: already called at %s", fn.Name(), s.sup.pos)
	}
	for _, kw := range []struct {
		name string
		p    *string
	}{{"socket", &d.socket}, {"pidfile", &d.pidfile}, {"log_dir", &d.logDir}, {"state_dir", &d.stateDir}} {
		if err := noShell(fn.Name(), kw.name, *kw.p); err != nil {
			return nil, err
		}
		if *kw.p != "" {
			*kw.p = s.abs(th, *kw.p)
		}
	}
	d.pos = posString(declaredAt(th))
	s.sup = &d
	return starlark.None, nil
}

// settings returns the final daemon settings: the given ones, else defaults under the root.
// The socket and the pidfile follow state_dir: a second script in a folder given a
// state_dir of its own wrote its pid into the first one's run/starvisor.pid.
func (s *evalState) settings() (socket, pidfile, logDir, stateDir string) {
	logDir, stateDir = filepath.Join(s.root, "log"), filepath.Join(s.root, "run")
	var d supervisorDecl
	if s.sup != nil {
		d = *s.sup
	}
	stateDir = cmp.Or(d.stateDir, stateDir)
	socket = cmp.Or(d.socket, filepath.Join(stateDir, "starvisor.sock"))
	pidfile = cmp.Or(d.pidfile, filepath.Join(stateDir, "starvisor.pid"))
	return socket, pidfile, cmp.Or(d.logDir, logDir), stateDir
}

// maxMinFDs is Linux's default ceiling for open files per process (fs.nr_open).
const maxMinFDs = 1 << 20

// Interface guards.
var _ Module = supervisorModule{}
