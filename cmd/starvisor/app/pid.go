package app

import (
	"context"
	"fmt"
)

// PidCmd prints the daemon's pid, or a process's (0 and exit 1 when it is not running).
type PidCmd struct {
	socketFlag `embed:""`
	Name       string `arg:"" optional:"" name:"name" help:"Process name (default: the daemon)."`
}

func (c *PidCmd) Run(d *Deps) error {
	ctx := context.Background()
	cl, err := c.client(ctx, d)
	if err != nil {
		return err
	}
	pid, err := cl.Pid(ctx, c.Name)
	if err != nil {
		return clientError("pid", err)
	}
	fmt.Fprintln(d.Stdout, pid)
	if pid == 0 {
		return reported(ExitFailure)
	}
	return nil
}
