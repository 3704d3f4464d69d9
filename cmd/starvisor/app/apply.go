package app

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/starvisor/starvisor/engine/api"
	"github.com/starvisor/starvisor/engine/plan"
)

// ApplyCmd evaluates the script here, asks the daemon what would change, prints it and
// applies it: removed processes stop, added ones start, changed ones restart, the others
// are not touched. A script that fails evaluation or validation changes nothing.
type ApplyCmd struct {
	scriptFlags `embed:""`
	socketFlag  `embed:""`
	DryRun      bool `name:"dry-run" help:"Show the difference only."`
}

func (c *ApplyCmd) Run(d *Deps) error {
	ctx := context.Background()
	p, cl, delta, err := showDiff(ctx, d, "apply", &c.scriptFlags, &c.socketFlag)
	if err != nil {
		return err
	}
	if c.DryRun || delta.Empty() {
		return nil
	}
	got, err := cl.Apply(ctx, p, false)
	if err != nil {
		return clientError("apply", err)
	}
	fmt.Fprintf(d.Stdout, "applied: %d stopped, %d restarted, %d started\n",
		len(got.Removed), len(got.Changed), len(got.Added))
	return nil
}

// showDiff evaluates the script, asks the daemon what applying it would change, and prints
// that; it changes nothing.
func showDiff(ctx context.Context, d *Deps, verb string, sf *scriptFlags, sock *socketFlag) (*plan.Plan, *api.Client, plan.Delta, error) {
	p, cl, err := evalForDaemon(ctx, d, sf, sock)
	if err != nil {
		return nil, nil, plan.Delta{}, err
	}
	delta, err := cl.Apply(ctx, p, true)
	if err != nil {
		return nil, nil, plan.Delta{}, clientError(verb, err)
	}
	writeDelta(d.Stdout, delta)
	return p, cl, delta, nil
}

// evalForDaemon evaluates the script (printing its error, if any) and finds the daemon:
// --socket, STARVISOR_SOCKET, else the socket the script itself names.
func evalForDaemon(ctx context.Context, d *Deps, sf *scriptFlags, sock *socketFlag) (*plan.Plan, *api.Client, error) {
	p, err := sf.eval(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	if sock.Socket == "" {
		if s, ok := d.LookupEnv("STARVISOR_SOCKET"); !ok || s == "" {
			return p, api.NewClient(p.Supervisor.Socket), nil
		}
	}
	cl, err := sock.client(ctx, d)
	return p, cl, err
}

// writeDelta prints what apply does: a summary, then one line per touched process, "+"
// added, "~" changed (with the JSON fields that differ), "-" removed.
func writeDelta(w io.Writer, d plan.Delta) {
	if d.Empty() {
		fmt.Fprintf(w, "no changes (%d unchanged)\n", len(d.Unchanged))
		return
	}
	fmt.Fprintf(w, "%d added, %d changed, %d removed, %d unchanged\n",
		len(d.Added), len(d.Changed), len(d.Removed), len(d.Unchanged))
	for _, n := range d.Added {
		fmt.Fprintf(w, "  + %s\n", n)
	}
	for _, c := range d.Changed {
		fmt.Fprintf(w, "  ~ %s: %s\n", c.Name, strings.Join(c.Fields, ", "))
	}
	for _, n := range d.Removed {
		fmt.Fprintf(w, "  - %s\n", n)
	}
}
