package app

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/engine/monitor"
	"github.com/starvisor/starvisor/engine/plan"
)

// up --detach's wait line names a few processes per state past a dozen (290 made one
// 7 KB line).
func TestCondensed(t *testing.T) {
	is := is.New(t)
	is.Equal(condensed([]string{"a (STARTING)", "b (BACKOFF)"}), "a (STARTING), b (BACKOFF)")
	var many []string
	for i := range 14 {
		many = append(many, fmt.Sprintf("w%d (STARTING)", i))
	}
	many = append(many, "web (RUNNING, not ready yet)")
	is.Equal(condensed(many), "15 processes (14 STARTING: w0, w1, w2, …; 1 RUNNING, not ready yet: web)")
}

// What a killed daemon left is named up to ten, then counted: 213 made a 5 KB line.
func TestStrayNoteNamesTenThenCounts(t *testing.T) {
	is := is.New(t)
	var strays []monitor.Stray
	for i := range 13 {
		strays = append(strays, monitor.Stray{Process: fmt.Sprintf("s%d", i), Pid: 100 + i})
	}
	note := strayNote(strays, 7, func(string) time.Duration { return 10 * time.Second })
	is.True(strings.Contains(note, "s9 (pid 109), and 3 more; nothing starts before they are gone (up to 10s)"))
	is.True(!strings.Contains(note, "s10 "))
}

// up --detach relays the first ten strays' lines, then a count.
func TestWarningsCountStraysPastTen(t *testing.T) {
	is := is.New(t)
	log := filepath.Join(t.TempDir(), "starvisor.log")
	var b strings.Builder
	for i := range 12 {
		fmt.Fprintf(&b, "2026-11-27T08:00:00.000 starvisor: stopped stray process s%d left by an earlier daemon (pid %d, 1 process found running)\n", i, 100+i)
	}
	is.NoErr(os.WriteFile(log, []byte(b.String()), 0o644))
	var errOut bytes.Buffer
	strayLines(&Deps{Stderr: &errOut}, log, 0)
	is.Equal(strings.Count(errOut.String(), "stopped stray process"), 10)
	is.True(strings.HasSuffix(errOut.String(), "starvisor: and 2 more stray processes stopped (each in "+log+")\n"))
}

// up --logs keeps each process's colour from its first log on: by its place in the plan,
// an apply that added programs moved it, and two shared one.
func TestTeeColourNumbersStay(t *testing.T) {
	is := is.New(t)
	tee := &teeOpener{}
	is.Equal(tee.number("db"), 0)
	is.Equal(tee.number("web"), 1)
	is.Equal(tee.number("db"), 0) // reopened after an apply
	is.Equal(tee.number("new"), 2)
}

type discardOpener struct{}

func (discardOpener) Open(*plan.Log) (io.WriteCloser, error) { return nopCloser{io.Discard}, nil }

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// up --logs widens the labels already shown when an apply adds a longer name: the
// columns of the processes from before stayed narrow, out of line with the new ones'.
func TestTeeLabelsWidenForANewName(t *testing.T) {
	is := is.New(t)
	prog := func(name string) plan.Program {
		return plan.Program{Name: name, ProcessName: name, Stdout: &plan.Log{Path: "/l/" + name + ".log"}}
	}
	running := &plan.Plan{Programs: []plan.Program{prog("a")}}
	var out bytes.Buffer
	lw := newLineWriter(&out)
	tee := &teeOpener{LogOpener: discardOpener{}, out: lw, running: func() *plan.Plan { return running }}
	a, err := tee.Open(running.Programs[0].Stdout)
	is.NoErr(err)
	a.Write([]byte("one\n"))
	running = &plan.Plan{Programs: []plan.Program{prog("a"), prog("longer")}}
	l, err := tee.Open(running.Programs[1].Stdout)
	is.NoErr(err)
	a.Write([]byte("two\n"))
	l.Write([]byte("three\n"))
	is.NoErr(l.Close())
	lw.flush(time.Minute)
	is.Equal(out.String(), "a | one\na      | two\nlonger | three\n")
	is.Equal(len(tee.open), 1) // a closed writer is let go
}

// Once up's terminal is gone its lines go to a file: up --logs's labels lose their
// colours there (escape codes filled the daemon's log).
func TestTeeLabelsGoPlain(t *testing.T) {
	is := is.New(t)
	running := &plan.Plan{Programs: []plan.Program{{Name: "a", ProcessName: "a", Stdout: &plan.Log{Path: "/l/a.log"}}}}
	var out bytes.Buffer
	lw := newLineWriter(&out)
	tee := &teeOpener{LogOpener: discardOpener{}, out: lw, running: func() *plan.Plan { return running }, color: true}
	a, err := tee.Open(running.Programs[0].Stdout)
	is.NoErr(err)
	a.Write([]byte("one\n"))
	tee.plain()
	a.Write([]byte("two\n"))
	lw.flush(time.Minute)
	first, second, _ := strings.Cut(out.String(), "\n")
	is.True(strings.Contains(first, "\x1b[")) // coloured on the terminal
	is.Equal(second, "a | two\n")
}
