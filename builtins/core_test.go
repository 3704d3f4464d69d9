package builtins_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/builtins"
)

func TestCoreStar(t *testing.T) { runStar(t, "core") }

func TestPrint(t *testing.T) {
	is := is.New(t)
	dir := writeTxtar(t, `
-- deploy.star --
load("lib/say.star", "say")
print("top", 1)
say()
-- lib/say.star --
def say():
    print("from lib")
`)
	var out strings.Builder
	_, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star"), Print: &out})
	is.NoErr(err)
	is.Equal(out.String(), "deploy.star:2: top 1\nlib/say.star:2: from lib\n")
}
