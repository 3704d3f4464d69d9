package fakeproc

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"
)

func TestVerbsRunInOrderAndExitCodeStops(t *testing.T) {
	is := is.New(t)
	var out, errOut bytes.Buffer
	code := run([]string{"print", "a", "stderr", "b", "write-lines", "3", "exit", "7", "print", "never"}, &out, &errOut)
	is.Equal(code, 7)
	is.Equal(out.String(), "a\nline 1\nline 2\nline 3\n")
	is.Equal(errOut.String(), "b\n")
}

func TestReadyWritesPidFile(t *testing.T) {
	is := is.New(t)
	f := filepath.Join(t.TempDir(), "web.ready")
	is.Equal(run([]string{"ready", f}, &bytes.Buffer{}, &bytes.Buffer{}), 0)
	b, err := os.ReadFile(f)
	is.NoErr(err)
	is.Equal(strings.TrimSpace(string(b)), strconv.Itoa(os.Getpid()))
}

func TestBadArgumentsExit2(t *testing.T) {
	for _, args := range [][]string{{"nope"}, {"exit"}, {"exit", "x"}, {"sleep", "forever"}, {"trap", "BOGUS"}, {"write-lines", "-1"}} {
		var errOut bytes.Buffer
		if code := run(args, &bytes.Buffer{}, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%q: code %d, stderr %q; want 2 and a message", args, code, errOut.String())
		}
	}
}

func TestPwdAndUmask(t *testing.T) {
	is := is.New(t)
	var out bytes.Buffer
	is.Equal(run([]string{"pwd", "umask"}, &out, &bytes.Buffer{}), 0)
	wd, _ := os.Getwd()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	is.Equal(len(lines), 2)
	is.Equal(lines[0], wd)
	is.True(len(lines[1]) == 4 && lines[1][0] == '0') // octal, e.g. 0022
}
