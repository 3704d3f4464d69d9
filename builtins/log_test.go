package builtins_test

import (
	"testing"

	"github.com/matryer/is"
)

func TestLogStar(t *testing.T) { runStar(t, "log") }

// TestLogTemplates checks per-process expansion of {name}, {num} and {process_name}.
func TestLogTemplates(t *testing.T) {
	is := is.New(t)
	p, root := evalTxtar(t, `
-- deploy.star --
program(name = "w", command = "x", numprocs = 2, numprocs_start = 8, process_name = "{name}{num:02}",
        stdout = log("log/{name}/{num}.out"), stderr = log("log/{process_name}.err"))
`)
	w9, ok := p.Lookup("w09")
	is.True(ok)
	is.Equal(w9.Stdout.Path, root+"/log/w/9.out")
	is.Equal(w9.Stderr.Path, root+"/log/w09.err")
}
