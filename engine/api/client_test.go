package api

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// A daemon that accepts connections but never answers (hung, SIGSTOPped: the kernel still
// queues connections) is unreachable after AnswerWithin, for a question and for an action;
// an action is never sent to it, so it cannot run once the daemon resumes.
func TestHungDaemonIsUnreachable(t *testing.T) {
	is := is.New(t)
	defer func(d time.Duration) { AnswerWithin = d }(AnswerWithin)
	AnswerWithin = 100 * time.Millisecond
	sock := filepath.Join(t.TempDir(), "hung.sock")
	l, err := net.Listen("unix", sock)
	is.NoErr(err)
	defer l.Close()
	lines := make(chan string, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { // reads the request line, answers nothing
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				lines <- strings.TrimSpace(line)
				time.Sleep(time.Second)
			}()
		}
	}()
	next := func() string { // a regression fails here, not at the suite's timeout
		select {
		case l := <-lines:
			return l
		case <-time.After(time.Minute):
			t.Fatal("no connection came in a minute")
			return ""
		}
	}
	c := NewClient(sock)
	ctx := context.Background()
	_, err = c.Status(ctx)
	is.True(errors.Is(err, ErrUnreachable))
	is.True(strings.Contains(err.Error(), "the daemon does not answer"))
	is.Equal(next(), "GET /v1/status HTTP/1.1")

	_, err = c.Action(ctx, "stop", []string{"all"})
	is.True(errors.Is(err, ErrUnreachable))
	is.True(strings.Contains(err.Error(), "the daemon does not answer"))
	// One connection, the question's: the action's is made only once it is answered.
	is.Equal(next(), "GET /v1/pid HTTP/1.1")
	is.Equal(len(lines), 0)
}
