package app

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// Labels of several processes' lines are coloured on a terminal, each process its own
// colour for both streams; what is not a label is left alone.
func TestColorLines(t *testing.T) {
	is := is.New(t)
	var out bytes.Buffer
	cw := &colorLines{w: &out}
	cw.Write([]byte("web     | GET / 200\nworker_0 | tick\nweb.err | Trace"))
	cw.Write([]byte("back\nno label here | x\n|\nweb     | unfinished"))
	is.NoErr(cw.Flush())
	// Numbered as they first speak: neighbours differ; a process's stderr is its colour.
	is.Equal(out.String(), colorLabel("web    ", 0)+" | GET / 200\n"+
		colorLabel("worker_0", 1)+" | tick\n"+
		colorLabel("web.err", 0)+" | Traceback\n"+
		"no label here | x\n|\n"+
		colorLabel("web    ", 0)+" | unfinished")
	is.True(colorLabel("a", 0) != colorLabel("a", 1))
	is.True(!strings.Contains(strings.Join(labelColors, " "), "31")) // no red: it reads as an error
}

// One log as it is (its first line has no label) passes untouched and at once, an
// unfinished line (a prompt) too: it waited for a newline that may not come.
func TestColorLinesPlain(t *testing.T) {
	is := is.New(t)
	var out bytes.Buffer
	cw := &colorLines{w: &out}
	cw.Write([]byte("GET / 200\nINFO | x\nPassword: "))
	is.Equal(out.String(), "GET / 200\nINFO | x\nPassword: ")
	cw.Write([]byte("ok"))
	is.Equal(out.String(), "GET / 200\nINFO | x\nPassword: ok")
}

// Colour only on a terminal, and not when NO_COLOR or TERM=dumb says so: a pipe, a file
// or a log collector gets plain text.
func TestUseColor(t *testing.T) {
	is := is.New(t)
	env := func(vals map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
	}
	r, w, err := os.Pipe()
	is.NoErr(err)
	defer r.Close()
	defer w.Close()
	is.True(!useColor(w, env(nil)))               // a pipe
	is.True(!useColor(&bytes.Buffer{}, env(nil))) // not a file
	tty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skip("no pseudo-terminal here")
	}
	defer tty.Close()
	is.True(useColor(tty, env(map[string]string{"TERM": "xterm"})))
	is.True(!useColor(tty, env(map[string]string{"NO_COLOR": "1"})))
	is.True(!useColor(tty, env(map[string]string{"TERM": "dumb"})))
}
