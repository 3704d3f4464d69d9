package builtins_test

import (
	"testing"

	"github.com/matryer/is"
)

func TestPathsStar(t *testing.T) { runStar(t, "paths") }

// TestPathsInPlan checks that the plan holds only absolute, cleaned paths, each resolved
// against the folder of the file that made the call.
func TestPathsInPlan(t *testing.T) {
	is := is.New(t)
	p, root := evalTxtar(t, `
-- deploy.star --
load("svc/defs.star", "declare")
declare()
-- svc/defs.star --
def declare():
    program(name = "a", command = "./bin/../bin/a", directory = "..", stdout = log("logs//a.log"))
`)
	a := p.Programs[0]
	is.Equal(a.Command[0], root+"/svc/bin/a")
	is.Equal(a.Directory, root)
	is.Equal(a.Stdout.Path, root+"/svc/logs/a.log")
	is.Equal(a.Pos, "deploy.star:2:8") // the call in deploy.star that led to program()
}
