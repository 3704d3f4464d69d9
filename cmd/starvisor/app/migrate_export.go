package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/starvisor/starvisor/engine/export"
)

// ExportCmd writes the plan in another engine's configuration format.
type ExportCmd struct {
	scriptFlags
	Format string `required:"" enum:"supervisord,systemd,nomad" help:"Target: supervisord, systemd or nomad."`
	Out    string `short:"o" type:"path" placeholder:"DIR" help:"Write the files into DIR (default: print them, each after a '# file: NAME' line)."`
	Name   string `help:"Deployment name (systemd unit prefix, Nomad job ID); default: the deploy script's folder name."`
}

// Run evaluates the script, exports, prints what the target cannot express on stderr.
func (c *ExportCmd) Run(d *Deps) error {
	p, err := c.eval(context.Background(), d)
	if err != nil {
		return err
	}
	res, err := export.Export(c.Format, p, export.Options{Name: c.Name})
	if err != nil {
		fmt.Fprintln(d.Stderr, err)
		return reported(ExitFailure)
	}
	for _, line := range export.Lines(res.Problems) {
		fmt.Fprintln(d.Stderr, line)
	}
	// Said, not made: the files may be for another machine, and a folder made here
	// outside -o's would surprise.
	var missing []string
	for _, dir := range res.Folders {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, quoteArg(dir))
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(d.Stderr, "export %s: %s refuses to start without these folders, which starvisor makes itself and which do not exist here: mkdir -p %s\n", c.Format, c.Format, strings.Join(missing, " "))
	}
	if c.Out == "" {
		return export.Print(d.Stdout, res.Files)
	}
	if err := export.Write(c.Out, res.Files); err != nil {
		return err
	}
	for _, f := range res.Files {
		fmt.Fprintf(d.Stdout, "wrote %s\n", f.Name)
	}
	return nil
}
