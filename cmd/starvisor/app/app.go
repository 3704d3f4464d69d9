// Package app is the starvisor command line: kong parses the flags, one struct per verb
// calls into builtins and engine, and prints. It holds no logic beyond presentation.
package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// Exit codes (DESIGN.md "The control API and CLI").
const (
	ExitOK          = 0
	ExitFailure     = 1 // script or validation error, check problems, failed action
	ExitUsage       = 2
	ExitUnreachable = 3 // cannot reach the daemon
)

// CLI is the whole command line: one field per verb.
type CLI struct {
	Plan  PlanCmd  `cmd:"" help:"Evaluate the deploy script and print the plan; starts nothing."`
	Check CheckCmd `cmd:"" help:"Evaluate, validate and check the plan against this machine."`
	Up    UpCmd    `cmd:"" help:"Run the programs of the deploy script in the foreground."`

	ControlVerbs `embed:""` // control.go: the daemon's client verbs
	MigrateVerbs `embed:""` // migrate.go: import, export, service

	Version VersionCmd `cmd:"" help:"Print the version (also --version)."`
}

// Deps is what the verbs need from the outside world, so tests can run them in-process.
type Deps struct {
	Stdout, Stderr io.Writer
	LookupEnv      func(string) (string, bool)
	// Signals delivers the given signals until stop is called.
	Signals func(sigs ...os.Signal) (c <-chan os.Signal, stop func())
	// Began is when this command started: a failure it reports quotes only log lines
	// written since (zero: any), not an earlier run's.
	Began time.Time
}

// Main runs the CLI with the process's streams, environment and signals, and returns the
// exit code.
func Main(args []string) int {
	return Run(args, &Deps{
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		LookupEnv: os.LookupEnv,
		Signals:   notify,
		Began:     time.Now(),
	})
}

func notify(sigs ...os.Signal) (<-chan os.Signal, func()) {
	c := make(chan os.Signal, 8)
	signal.Notify(c, sigs...)
	return c, func() { signal.Stop(c) }
}

// supervisorctlWords are supervisorctl's (and pm2's) verbs that starvisor names
// otherwise: a hint for the hands that type them.
var supervisorctlWords = map[string]string{
	"list":     "starvisor status (the processes; starvisor ls lists the bundles whose daemons run)",
	"jlist":    "starvisor status --json",
	"kill":     "starvisor shutdown",
	"delete":   "take it out of the script, then starvisor apply",
	"tail":     "starvisor logs [-f] [--stdout | --stderr] NAME",
	"fg":       "starvisor logs -f NAME",
	"maintail": "starvisor logs --daemon [-f] (the detached daemon's own log, <log_dir>/starvisor.log), or up's output",
	"avail":    "starvisor plan (what the script declares), starvisor status (what runs)",
	"reread":   "starvisor plan --diff",
	"update":   "starvisor apply, which " + applyTakesNoNames,
	"add":      "starvisor apply (the script adds and removes programs)",
	"remove":   "starvisor apply (the script adds and removes programs)",
	"reload":   "starvisor apply, or SIGHUP to the daemon (systemctl reload)",
	"clear":    "truncate the log file (: > log/NAME.log): the daemon writes on at its end",
	"help":     "starvisor --help, starvisor VERB --help",
}

// applyTakesNoNames is what apply NAME (supervisorctl's update NAME) is told.
const applyTakesNoNames = "takes no names: it applies the whole script; starvisor plan --diff shows what it would change"

// kongExit carries an exit requested by kong (after --help) out of the parser.
type kongExit int

// Run parses args, runs the chosen verb with d, and returns the exit code.
func Run(args []string, d *Deps) (code int) {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-V") {
		args = []string{"version"} // as most tools take it
	}
	if c, ok := quickStatus(args); ok {
		return exitCode(c.Run(d), d.Stderr)
	}
	var cli any = leanCLI(args)
	if cli == nil {
		cli = &CLI{}
	}
	k, err := kong.New(cli,
		kong.Name("starvisor"),
		kong.Description("Run and watch services described by a Starlark deploy script."),
		kong.Writers(d.Stdout, d.Stderr),
		kong.Exit(func(c int) { panic(kongExit(c)) }),
	)
	if err != nil {
		fmt.Fprintf(d.Stderr, "starvisor: %v\n", err)
		return ExitFailure
	}
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(kongExit)
			if !ok {
				panic(r)
			}
			code = int(c)
			if code != ExitOK {
				code = ExitUsage
			}
		}
	}()
	ctx, err := k.Parse(args)
	if err != nil {
		msg := parseWords(err.Error())
		hint := ""
		if len(args) > 0 {
			hint = supervisorctlWords[args[0]]
		}
		if hint != "" {
			// kong's guess at a verb of a similar spelling ("add, did you mean pid?")
			// points away from the one that does it.
			msg, _, _ = strings.Cut(msg, ", did you mean")
		}
		fmt.Fprintf(d.Stderr, "starvisor: %s\n", msg)
		switch {
		case hint != "":
			fmt.Fprintf(d.Stderr, "%s here is: %s\n", args[0], hint)
		case len(args) > 0 && args[0] == "apply" && strings.HasPrefix(msg, "unexpected argument "):
			fmt.Fprintln(d.Stderr, "apply "+applyTakesNoNames) // supervisorctl's update NAME
		}
		help := "starvisor --help"
		if len(args) > 0 {
			if _, ok := verbField(reflect.TypeFor[CLI](), args[0]); ok {
				help = "starvisor " + args[0] + " --help" // the page that lists the verb's flags
			}
		}
		fmt.Fprintf(d.Stderr, "run '%s' for usage\n", help)
		return ExitUsage
	}
	for _, f := range ctx.Flags() {
		// Every duration flag is a wait or a timeout: a negative one is a slip, which
		// start and apply read as no wait, and restart --rolling as the default.
		if f.Target.Type() == reflect.TypeFor[time.Duration]() && f.Target.Int() < 0 {
			verb, _, _ := strings.Cut(ctx.Command(), " ")
			fmt.Fprintf(d.Stderr, "starvisor: --%s %s: give 0 or more\nrun 'starvisor %s --help' for usage\n", f.Name, time.Duration(f.Target.Int()), verb)
			return ExitUsage
		}
	}
	return exitCode(ctx.Run(d), d.Stderr)
}

// parseWords rewords the parser's errors for a flag given no value and a duration given
// no unit ("expected string value but got \"EOL\" (<EOL>)", Go's "time: missing unit").
func parseWords(msg string) string {
	if flag, _, ok := strings.Cut(msg, ": expected "); ok && strings.HasSuffix(msg, `but got "EOL" (<EOL>)`) {
		return flag + ": needs a value"
	}
	if flag, rest, ok := strings.Cut(msg, ": expected duration but got "); ok {
		got, _, _ := strings.Cut(rest, ": ")
		return flag + ": " + got + " is not a duration: give it a unit, such as 30s, 5m or 1h"
	}
	return msg
}

// exitError is an error with its exit code. A nil err means the verb already printed
// everything the user needs to see.
type exitError struct {
	code int
	err  error
	// summary, of a failure already on the screen: its first line, for where it is
	// repeated later (status after a failed reload).
	summary string
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// reported is the error for a failure whose details are already on the screen.
func reported(code int) error { return &exitError{code: code} }

func usageError(err error) error { return &exitError{code: ExitUsage, err: err} }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	code := ExitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code
		}
		err = ee.err
	}
	fmt.Fprintf(stderr, "starvisor: %v\n", err)
	return code
}
