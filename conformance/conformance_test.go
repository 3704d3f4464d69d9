// Package conformance is the behavioural suite: txtar scenarios under testdata/ run the
// real CLI (in-process via testscript) against fakeproc children.
package conformance

import (
	"fmt"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/starvisor/starvisor/cmd/starvisor/app"
	"github.com/starvisor/starvisor/conformance/fakeproc"
	"github.com/starvisor/starvisor/engine/launcher"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"starvisor": func() { os.Exit(app.Main(os.Args[1:])) },
		"fakeproc":  func() { os.Exit(fakeproc.Main(os.Args[1:])) },
	})
}

// TestConformance runs every testdata/*.txtar. UPDATE_GOLDEN=1 rewrites cmp targets.
func TestConformance(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       os.Getenv("UPDATE_GOLDEN") != "",
		Cmds:                merge(commands, stateCommands),
		Condition:           condition,
	})
}

func merge(maps ...map[string]func(*testscript.TestScript, bool, []string)) map[string]func(*testscript.TestScript, bool, []string) {
	out := map[string]func(*testscript.TestScript, bool, []string){}
	for _, m := range maps {
		for k, v := range m {
			if _, dup := out[k]; dup {
				panic("conformance: command defined twice: " + k)
			}
			out[k] = v
		}
	}
	return out
}

// condition answers [cgroups]: the daemons the scenarios start put each process in a
// cgroup of its own (root on cgroup v2), so a program's leftovers die with it.
func condition(cond string) (bool, error) {
	if cond == "cgroups" {
		return launcher.Cgroups() == nil, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}
