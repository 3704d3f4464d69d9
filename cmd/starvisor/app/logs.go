package app

import (
	"context"
	"errors"
	"io"
	"syscall"

	"github.com/starvisor/starvisor/engine/api"
)

// LogsCmd prints the end of the processes' logs and, with -f, follows them across
// rotations until interrupted. From several processes each line comes after its name.
type LogsCmd struct {
	logsSocketFlag `embed:""`
	Names          []string `arg:"" optional:"" name:"name" help:"Process names, GROUP:* or all (the default); from several, each line starts with its process's name."`
	Follow         bool     `short:"f" help:"Keep printing new lines, across rotations, until interrupted."`
	Stderr         bool     `name:"stderr" help:"Read the stderr log instead of stdout."`
	Lines          int      `short:"n" default:"10" help:"Lines to print from the end first (0: none)."`
}

func (c *LogsCmd) Run(d *Deps) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if c.Follow {
		sigs, stop := d.Signals(syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		go func() {
			select {
			case <-sigs:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	cl, err := c.client(ctx, d)
	if err != nil {
		return err
	}
	names := c.Names
	if len(names) == 0 {
		names = []string{"all"} // as `pm2 logs`: every process
	}
	body, err := cl.Logs(ctx, names, c.Stderr, c.Follow, c.Lines)
	if err != nil {
		return clientError("logs", err)
	}
	defer body.Close()
	_, err = io.Copy(d.Stdout, body)
	if ctx.Err() != nil || err == nil {
		return nil // interrupted while following, or the whole tail was printed
	}
	return clientError("logs", errors.Join(api.ErrUnreachable, err))
}
