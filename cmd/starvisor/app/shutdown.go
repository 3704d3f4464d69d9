package app

import (
	"context"
	"fmt"
	"time"

	"github.com/starvisor/starvisor/engine/api"
)

// ShutdownCmd stops every process, then the daemon, and returns once the daemon no
// longer answers.
type ShutdownCmd struct {
	socketFlag `embed:""`
	Timeout    time.Duration `default:"60s" help:"How long to wait for the daemon to go away after its processes stopped."`
}

// pollEvery is how often the CLI looks at a daemon it waits for.
const pollEvery = 10 * time.Millisecond

func (c *ShutdownCmd) Run(d *Deps) error {
	ctx := context.Background()
	cl, err := c.client(ctx, d)
	if err != nil {
		return err
	}
	// The answer comes once every process has stopped; the daemon then closes its socket.
	var serr error
	telling(ctx, d, cl, "shutdown", nil, nil, func() { serr = cl.Shutdown(ctx) }) // a slow stop says what it waits for
	if serr != nil {
		return clientError("shutdown", serr)
	}
	deadline := time.Now().Add(c.Timeout)
	for api.Answers(cl.Socket) {
		if time.Now().After(deadline) {
			return fmt.Errorf("shutdown: processes stopped, but the daemon still answers on %s after %s", cl.Socket, c.Timeout)
		}
		time.Sleep(pollEvery)
	}
	fmt.Fprintln(d.Stdout, "Shut down")
	return nil
}
