package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/starvisor/starvisor/engine/api"
	"github.com/starvisor/starvisor/engine/logs"
)

// StatusCmd prints process states like supervisorctl, plus CPU and memory.
type StatusCmd struct {
	socketFlag `embed:""`
	JSON       bool     `name:"json" help:"Print the API's JSON ({\"programs\": [...]})."`
	Names      []string `arg:"" optional:"" name:"name" help:"NAME, GROUP:*, GROUP:NAME or all (default: every process)."`
}

// Run prints the table and sets the exit code: see statusOK.
// Validate refuses an empty name, as the action verbs do.
func (c *StatusCmd) Validate() error { return noEmptyName(c.Names) }

func (c *StatusCmd) Run(d *Deps) error {
	ctx := context.Background()
	cl, err := c.client(ctx, d)
	if err != nil {
		return err
	}
	st, err := cl.Status(ctx, c.Names...)
	if err != nil {
		return clientError("status", err)
	}
	if c.JSON {
		b, err := json.MarshalIndent(st, "", "  ") // unknown names too: "unknown": [...]
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		fmt.Fprintf(d.Stdout, "%s\n", b)
		for _, n := range st.Unknown {
			fmt.Fprintf(d.Stderr, "%s: ERROR (%s)\n", n, api.NotFound(n))
		}
	} else {
		if err := writeStatus(d.Stdout, st); err != nil {
			return err
		}
	}
	if st.ReloadError != "" {
		// Not a program's failure (the exit code stays theirs), but the plan running is
		// not the script's.
		fmt.Fprintf(d.Stderr, "starvisor: the last reload failed (%s); the programs run the plan from before\n", st.ReloadError)
	}
	if st.StateError != "" {
		fmt.Fprintf(d.Stderr, "starvisor: warning: the daemon cannot record its processes (%s): should it be killed, the next one finds them only by their environment (and, in cgroup mode, their cgroup)\n", st.StateError)
	}
	// `all` is no name, as supervisorctl's `status all` is its `status`: a program
	// stopped by hand does not fail it.
	named := len(c.Names) > 0 && !slices.Equal(c.Names, []string{"all"})
	if named && !c.JSON {
		failureHints(ctx, d, cl, st)
	}
	if !statusOK(st, named) {
		if !c.JSON && len(st.Programs) > failingSaidOver {
			sayFailing(d, st)
		}
		return reported(ExitFailure)
	}
	return nil
}

// failingSaidOver is how many rows a table has before its exit 1 is explained on stderr:
// two FATAL rows among 500 sat at row 390, with nothing saying why status failed.
const failingSaidOver = 20

// sayFailing names on stderr the processes that make status fail (see statusOK).
func sayFailing(d *Deps, st api.StatusResponse) {
	var bad []string
	for _, p := range st.Programs {
		if !failing(p) {
			continue
		}
		why := p.State // FATAL, BACKOFF, UNKNOWN; else blocked, and why
		if p.State != "FATAL" && p.State != "BACKOFF" && p.State != "UNKNOWN" {
			why = p.Blocked
		}
		bad = append(bad, namespec(p)+" ("+why+")")
	}
	if len(bad) > 0 {
		fmt.Fprintf(d.Stderr, "starvisor: status: %s of %d failing: %s\n", plural(len(bad), "process"), len(st.Programs), strings.Join(capped(bad, 10), ", "))
	}
}

// failureHints says, of the named processes that failed by themselves (or crash and are
// restarted: up, with automatic restarts after exits not expected), where to look:
// their log's last line (stderr's first), and when it was written ("process log may
// have details" names no file). Of one restarted, only a line its last run wrote before
// it exited: the new run's (an access log line) said nothing of the crash.
func failureHints(ctx context.Context, d *Deps, cl *api.Client, st api.StatusResponse) {
	var look *readiness
	for _, ps := range st.Programs {
		var before time.Time
		if ps.State != "FATAL" && ps.State != "BACKOFF" && ps.State != "EXITED" {
			if ps.Restarts == 0 || strings.HasSuffix(ps.LastRestartReason, "; expected") {
				continue // up, and not a crash loop (a periodic job exits 0 each time)
			}
			if ps.LastWords != "" {
				// The daemon kept the crashed run's last line as it ended: the new run's
				// first lines (a start-up banner) hide it in the file.
				at, _ := time.Parse(time.RFC3339Nano, ps.LastWordsAt)
				if look == nil {
					look = lookNow(ctx, cl)
				}
				fmt.Fprintf(d.Stderr, "starvisor: %s: last line of %s before its last restart (%s ago): %s\n",
					namespec(ps), look.shownPath(ps.LastWordsLog), roundAgo(time.Since(at)), printable(ps.LastWords))
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, ps.LastRestartAt)
			if err != nil {
				continue
			}
			// The crash's last bytes reach the log as its exit is handled; the new run
			// writes no sooner than its exec (a tick of the file clock, ~4 ms, to spare).
			before = at.Add(5 * time.Millisecond)
		}
		if look == nil {
			look = lookNow(ctx, cl)
		}
		if ps.State == "EXITED" && look.done(ps.Name) {
			continue // an expected exit (a periodic job between two runs): nothing failed
		}
		if shown, line, at := look.lastLogLine(ps.Name, 0, before); line != "" {
			fmt.Fprintf(d.Stderr, "starvisor: %s: last line of %s (written %s ago): %s\n", namespec(ps), shown, roundAgo(time.Since(at)), line)
		}
	}
}

// roundAgo is d for a person: 42s, 3m, 2h.
func roundAgo(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmt.Sprintf("%dh", int(d.Hours()))
}

// statusOK is the exit rule: named processes must be RUNNING, or a job done (EXITED and
// ready), and exist; unnamed ones must not be in a failure state, nor blocked (waiting
// for a dependency that failed, or a ready probe that gave up).
func statusOK(st api.StatusResponse, named bool) bool {
	if len(st.Unknown) > 0 {
		return false
	}
	for _, p := range st.Programs {
		switch {
		case named && p.State != "RUNNING" && !(p.State == "EXITED" && p.Ready):
			return false
		case failing(p):
			return false
		}
	}
	return true
}

// capped is names up to n of them, then "and K more": a list of hundreds made one line
// of kilobytes.
func capped(names []string, n int) []string {
	if len(names) <= n {
		return names
	}
	return append(names[:n:n], fmt.Sprintf("and %d more", len(names)-n))
}

// failing says whether p fails status with no names: FATAL, BACKOFF or UNKNOWN, or
// blocked (waiting for a dependency that failed, or its probe gave up).
func failing(p api.ProgramStatus) bool {
	return p.State == "FATAL" || p.State == "BACKOFF" || p.State == "UNKNOWN" || p.Blocked != ""
}

// writeStatus prints one row per process, then a line per unknown name, in columns two
// spaces apart (as text/tabwriter would, at a third of its cost: this runs on every
// `status`).
func writeStatus(out io.Writer, st api.StatusResponse) error {
	rows := make([][5]string, 0, len(st.Programs)+1)
	rows = append(rows, [5]string{"NAME", "STATE", "CPU", "MEM", "DESCRIPTION"})
	for _, p := range st.Programs {
		cpu, mem := "-", "-"
		if p.Pid > 0 {
			// Of the process with what it spawned, as memory_max judges it: a shell
			// wrapper showed 1.5M while its worker was restarted at 175M (--json has both).
			cpu, mem = percentCell(max(p.TreeCPU, p.CPUPercent)), bytesCell(max(p.TreeRSS, p.RSSBytes))
		}
		desc := p.Description
		if p.Restarts > 0 { // a crash loop, which a fresh uptime alone hides
			if desc != "" {
				desc += "; "
			}
			desc += plural(p.Restarts, "automatic restart")
			why := p.LastRestart[:max(strings.LastIndex(p.LastRestart, ", "), 0)] // less its age
			if p.LastRestart != "" && !strings.Contains(p.Description, why) {
				desc += ", the last after " + p.LastRestart // why, in status: a crash loop's cause
			}
		}
		rows = append(rows, [5]string{namespec(p), p.State, cpu, mem, desc})
	}
	var width [4]int
	for _, r := range rows {
		for i := range width {
			width[i] = max(width[i], logs.Width(r[i]))
		}
	}
	b := make([]byte, 0, 64*len(rows))
	if len(rows) == 1 {
		rows = nil // no process: no header above the errors alone
	}
	for _, r := range rows {
		for i := range width {
			b = append(b, r[i]...)
			for n := logs.Width(r[i]); n < width[i]+2; n++ {
				b = append(b, ' ')
			}
		}
		b = append(b, r[4]...)
		b = append(b, '\n')
	}
	for _, n := range st.Unknown {
		b = append(b, n...)
		b = append(b, ": ERROR ("+api.NotFound(n)+")\n"...)
	}
	_, err := out.Write(b)
	return err
}

// percentCell prints a CPU share with one decimal, like top.
func percentCell(v float64) string {
	return strconv.FormatFloat(v, 'f', 1, 64) + "%"
}

// namespec is supervisorctl's name for a process: "group:name" when they differ.
func namespec(p api.ProgramStatus) string {
	if p.Group != "" && p.Group != p.Name {
		return p.Group + ":" + p.Name
	}
	return p.Name
}

// bytesCell prints a size the way top does: 812K, 12.3M, 1.2G.
func bytesCell(n uint64) string {
	const k = 1024
	switch {
	case n == 0:
		return "-" // not sampled yet
	case n < k*k:
		return fmt.Sprintf("%dK", (n+k-1)/k)
	case n < k*k*k:
		return fmt.Sprintf("%.1fM", float64(n)/(k*k))
	}
	return fmt.Sprintf("%.1fG", float64(n)/(k*k*k))
}
