package builtins_test

import (
	"path/filepath"
	"testing"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/engine/plan"
)

func TestSupervisorStar(t *testing.T) { runStar(t, "supervisor") }

func TestSupervisorSettings(t *testing.T) {
	is := is.New(t)
	p, root := evalTxtar(t, `
-- deploy.star --
supervisor(socket = "run/s.sock", log_dir = "../logs")
`)
	is.Equal(p.Supervisor, plan.Supervisor{
		Socket:   root + "/run/s.sock",
		Pidfile:  root + "/run/starvisor.pid", // defaults for what is not given
		LogDir:   filepath.Join(filepath.Dir(root), "logs"),
		StateDir: root + "/run",
		Pos:      "deploy.star:1:11", // the call, for check's messages
	})

	p, root = evalTxtar(t, `
-- deploy.star --
`)
	is.Equal(p.Supervisor, plan.Supervisor{
		Socket: root + "/run/starvisor.sock", Pidfile: root + "/run/starvisor.pid",
		LogDir: root + "/log", StateDir: root + "/run",
	})
	is.Equal(p.Entry, "deploy.star")
	is.Equal(p.Root, root)
	is.Equal(len(p.Programs), 0)

	// The socket and pidfile follow a state_dir given: a second script in a folder,
	// given one of its own, wrote its pid into the first one's run/starvisor.pid.
	p, root = evalTxtar(t, `
-- deploy.star --
supervisor(state_dir = "runb")
`)
	is.Equal(p.Supervisor.Socket, root+"/runb/starvisor.sock")
	is.Equal(p.Supervisor.Pidfile, root+"/runb/starvisor.pid")
}
