package builtins_test

import (
	"context"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/builtins"
)

func TestHostStar(t *testing.T) { runStar(t, "host") }

// TestHostInputs checks that every host value read is recorded, and nothing else.
func TestHostInputs(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- deploy.star --
home = host.env("HOME")
missing = host.env("MISSING", "x")
program(name = "a", command = "a", env = {"N": str(host.cpus()), "OS": host.os()})
`)
	p, err := builtins.Eval(context.Background(), builtins.Options{
		File: filepath.Join(dir, "deploy.star"),
		LookupEnv: func(k string) (string, bool) {
			if k == "HOME" {
				return "/home/x", true
			}
			return "", false
		},
	})
	is.NoErr(err)
	is.Equal(p.Inputs.Env, map[string]string{
		"HOME":      "/home/x",
		"MISSING":   "", // read but unset
		"host.cpus": strconv.Itoa(runtime.NumCPU()),
		"host.os":   runtime.GOOS,
	})
}
