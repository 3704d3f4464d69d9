package builtins_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/builtins"
)

func TestLoadStar(t *testing.T) { runStar(t, "load") }

// TestLoadOnce checks that a module loaded from several files runs once per Eval, and
// again in the next Eval.
func TestLoadOnce(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- deploy.star --
load("common.star", "X")
load("svc/a.star", "A")
-- common.star --
print("common runs")
X = 1
-- svc/a.star --
load("//common.star", "X")
load("../common.star", Y = "X")
A = X + Y
`)
	for range 2 {
		var out strings.Builder
		p, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star"), Print: &out})
		is.NoErr(err)
		is.Equal(out.String(), "common.star:1: common runs\n")
		is.Equal(len(p.Inputs.Files), 3) // deploy.star, common.star, svc/a.star
		is.True(p.Inputs.Files["svc/a.star"] != "")
		is.True(p.Inputs.Files["common.star"] != "")
	}
}

// A file reached by two names, as a library root inside the bundle and by its path, or
// through a symlinked folder, is one module: it runs once, and the programs it declares
// are declared once.
func TestLoadOnceByTwoNames(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- deploy.star --
load("lib/a.star", "PORTS")
load("@mine//a.star", P2 = "PORTS")
load("liblink/a.star", P3 = "PORTS")
-- lib/a.star --
print("a runs")
program(name = "fromlib", command = "sleep 1")
PORTS = [1, 2]
`)
	is.NoErr(os.Symlink("lib", filepath.Join(dir, "liblink")))
	var out strings.Builder
	p, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star"), Print: &out,
		Libs: map[string]string{"mine": filepath.Join(dir, "lib")}})
	is.NoErr(err)
	is.Equal(out.String(), "lib/a.star:1: a runs\n")
	is.Equal(len(p.Programs), 1)
}

// TestLoadLibraries checks library resolution: "//" and relative names inside a library
// stay in it, and a symlink cannot lead out of it.
func TestLoadLibraries(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- app/deploy.star --
load("@ops//svc/web.star", "web")
web()
-- ops/svc/web.star --
load("//defaults.star", "PRIORITY")
load("../defaults.star", P2 = "PRIORITY")
def web():
    program(name = "web", command = "bin/web", priority = PRIORITY + P2, stdout = log(here("web.log")))
-- ops/defaults.star --
PRIORITY = 5
-- app/bad.star --
load("@ops//escape.star", "x")
-- outside.star --
x = 1
`)
	libs := map[string]string{"ops": filepath.Join(dir, "ops")}
	p, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "app/deploy.star"), Libs: libs})
	is.NoErr(err)
	web := p.Programs[0]
	is.Equal(web.Priority, 10)
	is.Equal(web.Command[0], dir+"/ops/svc/bin/web") // relative to the library file that called program()
	is.Equal(web.Stdout.Path, dir+"/ops/svc/web.log")
	is.Equal(web.Pos, "deploy.star:2:4") // the statement of deploy.star that declared it, through the library
	is.True(p.Inputs.Files["@ops//defaults.star"] != "")

	is.NoErr(os.Symlink("../outside.star", filepath.Join(dir, "ops/escape.star")))
	_, err = builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "app/bad.star"), Libs: libs})
	is.True(err != nil)
	is.Equal(firstLine(err), `bad.star:1:1: cannot load @ops//escape.star: load: "@ops//escape.star" resolves to "`+dir+`/outside.star", outside @ops`)
}

// TestLoadedValuesFrozen checks that a list from a loaded module cannot be changed.
func TestLoadedValuesFrozen(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- deploy.star --
load("l.star", "L")
L.append(2)
-- l.star --
L = [1]
`)
	_, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star")})
	is.True(err != nil)
	is.Equal(firstLine(err), "deploy.star:2:9: append: cannot append to frozen list")
}
