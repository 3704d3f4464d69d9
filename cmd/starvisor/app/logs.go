package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/starvisor/starvisor/engine/api"
	"github.com/starvisor/starvisor/engine/plan"
)

// LogsCmd prints the end of the processes' logs and, with -f, follows them across
// rotations until interrupted. From several processes each line comes after its name.
type LogsCmd struct {
	logsSocketFlag `embed:""`
	Names          []string `arg:"" optional:"" name:"name" help:"Process names, GROUP:* or all (the default); from several, each line starts with its process's name."`
	Follow         bool     `short:"f" help:"Keep printing new lines, across rotations, until interrupted."`
	Stdout         bool     `name:"stdout" help:"Read the stdout log only (else stderr too, when it has a file of its own)."`
	Stderr         bool     `name:"stderr" help:"Read the stderr log only."`
	Daemon         bool     `name:"daemon" help:"Read the detached daemon's own log (<log_dir>/starvisor.log): state changes and why, strays stopped, reloads."`
	Lines          int      `short:"n" default:"10" help:"Lines to print from the end first (0: none)."`
}

// isBundleDir says whether name is a folder holding a deploy script: given to logs -f, it
// was meant as the bundle (every other verb's -f), not as a process name.
func isBundleDir(name string) bool {
	st, err := os.Stat(filepath.Join(name, scriptName))
	return err == nil && st.Mode().IsRegular()
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
	for _, n := range c.Names {
		if c.Follow && (strings.HasSuffix(n, ".star") || isBundleDir(n)) {
			// Every other verb's -f is the script.
			return usageError(fmt.Errorf("logs: -f is --follow here; give the script with --file %s", n))
		}
	}
	names := c.Names
	if len(names) == 0 {
		names = []string{"all"} // as `pm2 logs`: every process
	}
	if c.Daemon && (len(c.Names) > 0 || c.Stderr || c.Stdout) {
		return usageError(errors.New("logs: --daemon reads the daemon's own log: give no process name, nor --stdout or --stderr"))
	}
	if c.Lines < 0 {
		return usageError(fmt.Errorf("logs: --lines %d: give 0 or more", c.Lines))
	}
	if c.Stdout && c.Stderr {
		return usageError(errors.New("logs: --stdout or --stderr, not both: without either, both are read"))
	}
	stream := api.Both
	switch {
	case c.Stdout:
		stream = api.Stdout
	case c.Stderr:
		stream = api.Stderr
	}
	cl, cerr := c.client(ctx, d)
	var body *api.LogStream
	var err error = api.ErrUnreachable // no client: a script broken since the daemon died
	read := func(cl *api.Client) (*api.LogStream, error) {
		if c.Daemon {
			return cl.DaemonLog(ctx, c.Follow, c.Lines)
		}
		return cl.Logs(ctx, names, stream, c.Follow, c.Lines)
	}
	if cerr == nil {
		body, err = read(cl)
	}
	offline := false
	if errors.Is(err, api.ErrUnreachable) {
		// The daemon died (just when its logs matter) or was never started: the files
		// are still there, and read the same way.
		if p, script := c.plan(ctx, d); p != nil {
			why := "the daemon does not answer"
			if _, none := errors.AsType[*api.NoDaemonError](err); none {
				why = "no daemon runs for this bundle" // none started, or one killed
			} else if f, ok := errors.AsType[*api.ForeignDaemonError](err); ok {
				why = "its daemon runs as " + f.Owner() + ", not you"
			}
			fmt.Fprintf(d.Stderr, "starvisor: logs: %s; reading the log files of %s\n", why, script)
			cl, offline = api.NewOfflineClient(p), true
			body, err = read(cl)
		}
	}
	if cerr != nil && !offline {
		return cerr
	}
	if err != nil {
		return clientError("logs", err)
	}
	defer body.Close()
	for _, sk := range body.Skipped {
		fmt.Fprintf(d.Stderr, "starvisor: logs: %s (left out)\n", sk)
	}
	var out io.Writer = d.Stdout
	if !c.Daemon && !(len(names) == 1 && stream != api.Both && !strings.Contains(names[0], ":") && names[0] != "all") && useColor(d.Stdout, d.LookupEnv) {
		// Lines of several logs come labelled: each label in its process's colour. One
		// stream of one process comes as it is.
		cw := &colorLines{w: d.Stdout}
		defer cw.Flush()
		out = cw
	}
	n, err := io.Copy(out, body)
	if ctx.Err() != nil || err == nil {
		if err == nil && stream == api.Stdout && !c.Follow && c.Lines > 0 {
			switch {
			case n == 0:
				c.hintStderr(ctx, d, cl, names, "nothing on stdout, but stderr has lines")
			case c.failed(ctx, cl, names):
				c.hintStderr(ctx, d, cl, names, "it failed, and stderr has lines")
			}
		}
		if len(body.Skipped) > 0 {
			return reported(ExitFailure) // the others printed; these could not be read
		}
		if offline {
			return reported(ExitUnreachable) // as any verb's without its daemon
		}
		if c.Follow && ctx.Err() == nil {
			if why := body.Ended(); why != "" {
				fmt.Fprintf(d.Stderr, "starvisor: logs: %s: nothing more to follow\n", why)
				return nil
			}
			fmt.Fprintln(d.Stderr, "starvisor: logs: the daemon stopped") // its last lines were printed
		}
		return nil // interrupted while following, or the whole tail was printed
	}
	if c.Follow && !offline && cl != nil {
		// The daemon went away mid-follow (SIGKILL, the OOM killer): it wrote the logs,
		// so nothing more will come; said plainly, with what it left running.
		msg := "starvisor: logs: the daemon went away (killed?): its programs' output is no longer written"
		if note := leftRunning(cl.Socket); note != "" {
			msg += "\n" + note
		}
		fmt.Fprintln(d.Stderr, msg)
		return reported(ExitUnreachable)
	}
	return clientError("logs", errors.Join(api.ErrUnreachable, err))
}

// plan evaluates the script for its log files, when the daemon does not answer; nil
// when it cannot.
func (c *LogsCmd) plan(ctx context.Context, d *Deps) (*plan.Plan, string) {
	script := c.File
	if script == "" {
		var err error
		if script, err = findScript(); err != nil {
			return nil, ""
		}
	}
	sf := scriptFlags{File: script, Lib: c.Lib}
	stateDir := filepath.Join(filepath.Dir(script), "run") // the default, for a script broken since
	p, err := sf.eval(ctx, &Deps{Stdout: io.Discard, Stderr: io.Discard, LookupEnv: d.LookupEnv, Signals: d.Signals})
	if err == nil {
		stateDir = p.Supervisor.StateDir
	}
	// The plan the daemon last ran, as it recorded it: its log paths, whatever the script
	// (or this shell's environment, which host.env reads) says now.
	if ran, rerr := recordedPlan(stateDir); rerr == nil && (p == nil || api.OtherBundle(ran, p) == "") {
		// Its logs where the bundle is now: moved since (mv), the daemon wrote them there.
		if abs, err := filepath.Abs(script); err == nil && strings.HasSuffix(abs, string(filepath.Separator)+ran.Entry) {
			ran = ran.LogsMoved(strings.TrimSuffix(abs, string(filepath.Separator)+ran.Entry), api.Gone)
		}
		if p != nil {
			// And those the script names that the record lacks: applied after it was
			// written (a full disk kept it old), or never applied; their logs are where
			// the script puts them ("no such process" of a program the script names).
			for _, pr := range p.Programs {
				if _, ok := ran.Lookup(pr.ProcessName); !ok {
					ran.Programs = append(ran.Programs, pr)
				}
			}
		}
		return ran, script
	}
	if err != nil {
		return nil, ""
	}
	return p, script
}

// failed says whether one of the processes names selects has failed (FATAL, BACKOFF,
// EXITED with an unexpected code): its traceback is on stderr, whatever stdout shows.
func (c *LogsCmd) failed(ctx context.Context, cl *api.Client, names []string) bool {
	st, err := cl.States(ctx, names...)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(st.Programs, func(p api.ProgramStatus) bool {
		return p.State == "FATAL" || p.State == "BACKOFF" || p.State == "EXITED" && strings.Contains(p.Description, "not expected")
	})
}

// hintStderr says, when stdout had nothing to show, that stderr has: a program that
// fails at start (a Python traceback) writes only there, and an empty answer read as
// "no clue".
func (c *LogsCmd) hintStderr(ctx context.Context, d *Deps, cl *api.Client, names []string, why string) {
	body, err := cl.Logs(ctx, names, api.Stderr, false, 1)
	if err != nil {
		return
	}
	defer body.Close()
	if n, _ := io.Copy(io.Discard, body); n > 0 {
		args := make([]string, len(names))
		for i, n := range names {
			args[i] = quoteArg(n)
		}
		fmt.Fprintf(d.Stderr, "starvisor: %s: starvisor logs %s shows both\n", why, strings.Join(args, " "))
	}
}
