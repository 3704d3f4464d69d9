package api

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
)

// While the daemon holds its socket (it stops a killed daemon's leftovers first), a
// client hears why, once, and gets its answer when the daemon serves: it sat silent in
// the listen backlog, then said the daemon was hung.
func TestClientWaitsForAHoldingDaemon(t *testing.T) {
	is := is.New(t)
	sock, l := listenShort(t)
	var asked atomic.Int32
	release := Hold(l, func() string {
		asked.Add(1)
		return "the daemon (pid 7) is starting: stopping what an earlier daemon left running"
	})
	cl := NewClient(sock)
	told := make(chan string, 4)
	cl.Starting = func(msg string) { told <- msg }
	got := make(chan error, 2)
	go func() {
		_, err := cl.Status(t.Context())
		got <- err
	}()
	go func() { // a request with a body asks first whether the daemon serves
		_, err := NewClient(sock).Signal(t.Context(), "HUP", []string{"a"})
		got <- err
	}()
	is.Equal(<-told, "the daemon (pid 7) is starting: stopping what an earlier daemon left running")
	for deadline := time.Now().Add(time.Minute); asked.Load() < 3; { // it asks again, and says it once
		if time.Now().After(deadline) {
			t.Fatal("the client asked only once")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-got:
		t.Fatalf("the client returned while the daemon held: %v", err)
	default:
	}
	release()
	fb := &fakeBackend{}
	fb.p = testPlan(t, t.TempDir(), "a")
	s := NewServer(fb, t.Logf)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	is.NoErr(<-got)
	is.NoErr(<-got)
	is.Equal(len(told), 0)

}

// A client with a deadline gives up waiting for a holding daemon at it.
func TestClientGivesUpOnAHoldingDaemonAtItsDeadline(t *testing.T) {
	is := is.New(t)
	sock, l := listenShort(t)
	t.Cleanup(func() { l.Close() })
	release := Hold(l, func() string { return "starting" })
	t.Cleanup(release)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := NewClient(sock).Status(ctx)
	is.True(err != nil)
}

// listenShort listens on a fresh socket whose path is short enough for any temp folder.
func listenShort(t *testing.T) (string, net.Listener) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	return sock, l
}
