package builtins_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/builtins"
)

func TestFSStar(t *testing.T) { runStar(t, "fs") }

// TestFSInputs checks that reads are recorded by path relative to the root, or
// "@NAME//path" for a library file, with the sha256 of what was read.
func TestFSInputs(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- app/deploy.star --
load("@shared//env.star", "shared_env")
motd = fs.read("etc/motd")
env = shared_env()
-- app/etc/motd --
hi
-- lib/env.star --
def shared_env():
    return fs.read_env("base.env")
-- lib/base.env --
A=1
`)
	p, err := builtins.Eval(context.Background(), builtins.Options{
		File: filepath.Join(dir, "app/deploy.star"),
		Libs: map[string]string{"shared": filepath.Join(dir, "lib")},
	})
	is.NoErr(err)
	is.Equal(len(p.Inputs.Files), 4) // two scripts, two reads
	// sha256 of "hi\n":
	is.Equal(p.Inputs.Files["etc/motd"], "sha256:98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4")
	for _, k := range []string{"deploy.star", "@shared//env.star", "@shared//base.env"} {
		is.True(strings.HasPrefix(p.Inputs.Files[k], "sha256:")) // recorded
	}
}

func TestFSReadCap(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- deploy.star --
fs.read("big.txt")
`)
	is.NoErr(os.WriteFile(filepath.Join(dir, "big.txt"), make([]byte, builtins.MaxReadBytes+1), 0o644))
	_, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star")})
	is.True(err != nil)
	is.Equal(firstLine(err), `deploy.star:1:8: fs.read: "big.txt" is larger than the 1048576-byte limit`)

	is.NoErr(os.WriteFile(filepath.Join(dir, "big.txt"), make([]byte, builtins.MaxReadBytes), 0o644))
	_, err = builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star")})
	is.NoErr(err) // exactly the limit is fine
}

// TestFSSymlinks checks that a link inside the root pointing outside cannot be read,
// while a link staying inside can.
func TestFSSymlinks(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- app/deploy.star --
assert_inside = fs.read("inside")
print(fs.glob("*"))
fs.read("escape")
-- app/real.txt --
ok
-- secret.txt --
secret
`)
	is.NoErr(os.Symlink("real.txt", filepath.Join(dir, "app/inside")))
	is.NoErr(os.Symlink("../secret.txt", filepath.Join(dir, "app/escape")))
	var out strings.Builder
	_, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "app/deploy.star"), Print: &out})
	is.True(err != nil)
	is.Equal(firstLine(err), `deploy.star:3:8: fs.read: "`+dir+`/app/escape" resolves to "`+dir+`/secret.txt", outside the bundle root and library roots`)
	is.True(!strings.Contains(out.String(), "escape")) // glob leaves out what it may not read
	is.True(strings.Contains(out.String(), "inside"))
}

// firstLine returns the "file:line:col: message" line of an evaluation error.
func firstLine(err error) string {
	var e *builtins.Error
	if errors.As(err, &e) {
		return e.Pos + ": " + e.Msg
	}
	return strings.SplitN(err.Error(), "\n", 2)[0]
}

// fs.realpath names a release through its `current` link, so a switch of the link shows in
// the plan; a link leading out of the roots is refused as fs.read refuses it.
func TestFSRealpath(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- app/deploy.star --
program(name = "web", command = ["python3", fs.realpath(here("current")) + "/app.py"])
-- app/releases/v1/app.py --
-- app/releases/v2/app.py --
-- app/bad.star --
fs.realpath("escape")
-- secret.txt --
`)
	link := filepath.Join(dir, "app/current")
	is.NoErr(os.Symlink("releases/v1", link))
	p, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "app/deploy.star")})
	is.NoErr(err)
	is.Equal(p.Programs[0].Command[1], dir+"/app/releases/v1/app.py")
	is.NoErr(os.Remove(link))
	is.NoErr(os.Symlink("releases/v2", link))
	p, err = builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "app/deploy.star")})
	is.NoErr(err)
	is.Equal(p.Programs[0].Command[1], dir+"/app/releases/v2/app.py")

	is.NoErr(os.Symlink("../secret.txt", filepath.Join(dir, "app/escape")))
	_, err = builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "app/bad.star")})
	is.True(err != nil)
	is.True(strings.Contains(firstLine(err), "fs.realpath: "))
	is.True(strings.Contains(firstLine(err), "outside the bundle root and library roots"))
}
