package procfs

import (
	"strings"
	"testing"

	"github.com/matryer/is"
)

func TestParseStatCountsFieldsAfterComm(t *testing.T) {
	is := is.New(t)
	line := "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 1000000 250 " +
		strings.Repeat("0 ", 30)
	p, ok := Parse(42, []byte(line))
	is.True(ok)
	is.Equal(p, Stat{Pid: 42, Ppid: 1, Pgid: 42, Sid: 42, State: 'S', CPUTicks: 10, StartTicks: 12345, RSSPages: 250})
	_, ok = Parse(42, []byte("42 (x) Z 1 2"))
	is.True(!ok) // truncated
}

// rss is the 22nd field after comm: a line that ends right there, newline and all, parses.
func TestParseStatLastFieldBeforeNewline(t *testing.T) {
	is := is.New(t)
	p, ok := Parse(7, []byte("7 (sh) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 99 4096 33\n"))
	is.True(ok)
	is.Equal(p, Stat{Pid: 7, Ppid: 1, Pgid: 7, Sid: 7, State: 'R', CPUTicks: 3, StartTicks: 99, RSSPages: 33})
	_, ok = Parse(7, []byte("7 (sh) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 99 4096\n"))
	is.True(!ok) // rss missing
}
