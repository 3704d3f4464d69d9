package builtins

import (
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
	for _, p := range []*string{&d.socket, &d.pidfile, &d.logDir, &d.stateDir} {
		if *p != "" {
			*p = s.abs(th, *p)
		}
	}
	d.pos = posString(declaredAt(th))
	s.sup = &d
	return starlark.None, nil
}

// settings returns the final daemon settings: the given ones, else defaults under the root.
func (s *evalState) settings() (socket, pidfile, logDir, stateDir string) {
	run := filepath.Join(s.root, "run")
	socket, pidfile = filepath.Join(run, "starvisor.sock"), filepath.Join(run, "starvisor.pid")
	logDir, stateDir = filepath.Join(s.root, "log"), run
	if d := s.sup; d != nil {
		pick := func(given, def string) string {
			if given != "" {
				return given
			}
			return def
		}
		socket, pidfile = pick(d.socket, socket), pick(d.pidfile, pidfile)
		logDir, stateDir = pick(d.logDir, logDir), pick(d.stateDir, stateDir)
	}
	return socket, pidfile, logDir, stateDir
}

// maxMinFDs is Linux's default ceiling for open files per process (fs.nr_open).
const maxMinFDs = 1 << 20

// Interface guards.
var _ Module = supervisorModule{}
