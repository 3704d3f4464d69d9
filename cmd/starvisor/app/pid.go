package app

import (
	"context"
	"fmt"
)

// PidCmd prints the daemon's pid, or a process's (0 and exit 1 when it is not running),
// or with "all" every process's, one a line in start order (0 for one not running), as
// supervisorctl does.
type PidCmd struct {
	socketFlag `embed:""`
	Name       string `arg:"" optional:"" name:"name" help:"Process name, or all (default: the daemon)."`
}

func (c *PidCmd) Run(d *Deps) error {
	ctx := context.Background()
	cl, err := c.client(ctx, d)
	if err != nil {
		return err
	}
	if c.Name == "all" {
		st, err := cl.States(ctx)
		if err != nil {
			return clientError("pid", err)
		}
		for _, p := range st.Programs {
			fmt.Fprintln(d.Stdout, p.Pid)
		}
		return nil
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
