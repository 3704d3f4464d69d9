package fakeproc

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
	for _, args := range [][]string{{"nope"}, {"exit"}, {"exit", "x"}, {"sleep", "forever"}, {"trap", "BOGUS"}, {"write-lines", "-1"}, {"catch", "BOGUS", "f"}, {"exit-on", "TERM", "x"}} {
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

func TestArgvPrintsTheRestAndEnds(t *testing.T) {
	is := is.New(t)
	var out bytes.Buffer
	is.Equal(run([]string{"print", "x", "argv", "a b", "&&", "exit", "3"}, &out, &bytes.Buffer{}), 0)
	is.Equal(out.String(), "x\na b\n&&\nexit\n3\n") // argv consumed "exit 3" as text
}

func TestAppendAndStamp(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	f, st := filepath.Join(dir, "runs"), filepath.Join(dir, "t")
	is.Equal(run([]string{"append", f, "run", "append", f, "run", "stamp", st}, &bytes.Buffer{}, &bytes.Buffer{}), 0)
	b, err := os.ReadFile(f)
	is.NoErr(err)
	is.Equal(string(b), "run\nrun\n")
	b, err = os.ReadFile(st)
	is.NoErr(err)
	_, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	is.NoErr(err) // stamp writes an RFC 3339 time
}

func TestCatchRecordsEachSignal(t *testing.T) {
	is := is.New(t)
	f := filepath.Join(t.TempDir(), "sig")
	is.Equal(run([]string{"catch", "USR2", f}, &bytes.Buffer{}, &bytes.Buffer{}), 0)
	is.NoErr(syscall.Kill(os.Getpid(), syscall.SIGUSR2))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, _ := os.ReadFile(f); string(b) == "USR2\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("USR2 was not recorded")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
