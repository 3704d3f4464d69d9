package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// startingHeader marks Hold's answers: the daemon is there, not ready yet.
const startingHeader = "Starvisor-Starting"

// Hold answers every request on l, until the returned release, with 503 and why the
// daemon does not serve yet (say()): it stops what a killed daemon left before anything
// else, up to their stop_timeout, and a client meanwhile sat in the listen backlog with
// no word, then called the daemon hung. release stops answering and leaves l open, for
// Serve.
func Hold(l net.Listener, say func() string) (release func()) {
	dl, ok := l.(interface{ SetDeadline(time.Time) error })
	if !ok {
		return func() {}
	}
	var wg sync.WaitGroup
	var released atomic.Bool
	var mu sync.Mutex
	open := map[net.Conn]bool{} // being answered
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				if released.Load() || errors.Is(err, net.ErrClosed) {
					return
				}
				time.Sleep(10 * time.Millisecond) // out of descriptors: as net/http does
				continue
			}
			mu.Lock()
			open[c] = true
			mu.Unlock()
			wg.Go(func() {
				answerStarting(c, say())
				mu.Lock()
				delete(open, c)
				mu.Unlock()
			})
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			released.Store(true)
			dl.SetDeadline(time.Now()) // ends the Accept
			<-done
			mu.Lock()
			for c := range open {
				// One still sending its request is answered (and asks again, of the server);
				// one that stalls does not keep the daemon from serving.
				c.SetDeadline(time.Now().Add(time.Second))
			}
			mu.Unlock()
			wg.Wait()
			dl.SetDeadline(time.Time{})
		})
	}
}

// answerStarting reads one request from c and answers it with msg. The request may take
// as long as the server gives one (a loaded machine); release cuts that short.
func answerStarting(c net.Conn, msg string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	req.Body.Close()
	body, _ := json.Marshal(ErrorResponse{Error: msg})
	fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n%s: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		startingHeader, len(body), body)
}
