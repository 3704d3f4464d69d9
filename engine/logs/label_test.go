package logs

import (
	"strings"
	"testing"

	"github.com/matryer/is"
)

// A Labeller holds an unfinished line until its end, however many writes it takes; past
// MaxPending it writes what it holds, and the rest of that line comes marked as a
// continuation (a newline alone after the cut adds no empty line).
func TestLabellerLines(t *testing.T) {
	is := is.New(t)
	var out strings.Builder
	l := NewLabeller(&out, "x")
	l.Write([]byte("one\ntw"))
	is.Equal(out.String(), "x | one\n")
	l.Write([]byte("o"))
	l.Write([]byte(" and\nthree"))
	is.Equal(out.String(), "x | one\nx | two and\n")
	l.Flush()
	is.Equal(out.String(), "x | one\nx | two and\nx | three\n")

	out.Reset()
	long := strings.Repeat("y", MaxPending)
	l.Write([]byte(long[:10]))
	l.Write([]byte(long[10:]))
	is.Equal(out.String(), "x | "+long+"\n")
	l.Write([]byte("rest\nnext\n"))
	is.Equal(out.String(), "x | "+long+"\nx + rest\nx | next\n")

	out.Reset()
	l.Write([]byte(long))
	l.Write([]byte("\nz\n"))
	is.Equal(out.String(), "x | "+long+"\nx | z\n")
}

// A line longer than MaxPending written at once goes out in MaxPending parts too, as
// one written in pieces does (a 4 MiB line read back by logs -n went out whole).
func TestLabellerCutsALongLineWrittenAtOnce(t *testing.T) {
	is := is.New(t)
	var out strings.Builder
	l := NewLabeller(&out, "x")
	l.Write([]byte(strings.Repeat("a", 3*MaxPending+10) + "\nnext\n" + strings.Repeat("b", MaxPending) + "\n"))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	is.Equal(len(lines), 6)
	is.Equal(lines[0], "x | "+strings.Repeat("a", MaxPending))
	is.Equal(lines[1], "x + "+strings.Repeat("a", MaxPending))
	is.Equal(lines[2], "x + "+strings.Repeat("a", MaxPending))
	is.Equal(lines[3], "x + "+strings.Repeat("a", 10))
	is.Equal(lines[4], "x | next")
	is.Equal(lines[5], "x | "+strings.Repeat("b", MaxPending)) // its newline alone adds no line
}
