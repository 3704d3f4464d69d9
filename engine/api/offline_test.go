package api

import (
	"bufio"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// With no daemon, the offline client reads the plan's log files as a daemon would: the
// tail of several, prefixed, and a follow that keeps up with new lines until cancelled.
// Actions fail, and status lists nothing.
func TestOfflineClientReadsTheLogs(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	p := testPlan(t, dir, "a", "bb")
	appendTo(t, p.Programs[0].Stdout.Path, "a1\na2\n")
	appendTo(t, p.Programs[1].Stdout.Path, "b1\n")
	c := NewOfflineClient(p)

	is.Equal(tail(t, c, []string{"a"}, 1), "a2\n")
	is.Equal(tail(t, c, []string{"all"}, 5), "a  | a1\na  | a2\nbb | b1\n")
	_, err := c.Logs(t.Context(), []string{"nosuch"}, Stdout, false, 1)
	is.True(err != nil) // no such process

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	rc, err := c.Logs(ctx, []string{"a"}, Stdout, true, 1)
	is.NoErr(err)
	r := bufio.NewReader(rc)
	next := func() string { l, err := r.ReadString('\n'); is.NoErr(err); return l }
	is.Equal(next(), "a2\n")
	appendTo(t, p.Programs[0].Stdout.Path, "a3\n")
	is.Equal(next(), "a3\n")
	cancel()
	rc.Close()

	_, err = c.Action(t.Context(), "start", []string{"a"})
	is.True(err != nil && strings.Contains(err.Error(), ErrNoDaemon.Error())) // got err
	st, err := c.Status(t.Context())
	is.NoErr(err)
	is.Equal(len(st.Programs), 0)
}
