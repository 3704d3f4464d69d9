package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/starvisor/starvisor/engine/plan"
)

// PlanCmd evaluates the script and prints the plan. It starts nothing.
type PlanCmd struct {
	scriptFlags `embed:""`
	socketOnly  `embed:""`
	JSON        bool `name:"json" help:"Print the plan as JSON (with --diff: the difference, {\"added\", \"removed\", \"unchanged\", \"changed\", \"updated\"}, \"refused\": why apply would refuse it, and \"notes\": what it would do besides)."`
	Diff        bool `name:"diff" help:"Show what apply would change in the running daemon; applies nothing."`
	ExitCode    bool `name:"exit-code" help:"With --diff: exit 1 when apply would change something (as git diff --exit-code), 0 when not; a script that does not evaluate exits 1 too, its error on stderr."`
}

// Help is the detail "plan --help" prints under the command's line.
func (c *PlanCmd) Help() string {
	return "The table's CODE column is where a process's code comes from: its PYTHONPATH when set (which version of the code runs), else its directory (-: the bundle root). AFTER (its depends_on) and READY (its ready probe; job: done once it exited) show when some process has one; START (auto, or manual: autostart = False) when some process is started by hand; GROUP (and the group's priority, which orders starts before PRIORITY) when some program is in a group() of the script."
}

// Run prints the plan as a table, or as JSON with --json.
func (c *PlanCmd) Run(d *Deps) error {
	if c.Diff {
		return c.diff(d)
	}
	if c.ExitCode {
		return usageError(errors.New("plan: --exit-code goes with --diff"))
	}
	if c.Socket != "" {
		return usageError(errors.New("plan: --socket goes with --diff (the plan alone asks no daemon)"))
	}
	p, err := c.eval(context.Background(), d)
	if err != nil {
		return err
	}
	if c.JSON {
		b, err := p.JSON()
		if err != nil {
			return fmt.Errorf("plan: %w", err)
		}
		_, err = d.Stdout.Write(b)
		return err
	}
	return writeTable(d.Stdout, p)
}

// diff prints the difference between the script and the daemon's running plan.
func (c *PlanCmd) diff(d *Deps) error {
	_, _, r, err := showDiff(context.Background(), d, "plan", &c.scriptFlags, &c.socketOnly, c.JSON)
	if err == nil && c.ExitCode && !r.Delta.Empty() {
		// Which of many bundles still wants an apply (a shared library changed), without
		// reading the text.
		return reported(ExitFailure)
	}
	return err
}

// commandWidth caps the COMMAND column so a long argv does not push the others off screen.
const commandWidth = 72

// writeTable prints one row per process; paths near the root are shown relative to it.
// AFTER (depends_on) and READY (the ready probe) show when some process has one: the
// start graph is what a dry run of a compose-like stack is for; START when one is manual.
func writeTable(w io.Writer, p *plan.Plan) error {
	fmt.Fprintf(w, "root: %s\n", p.Root)
	after := slices.ContainsFunc(p.Programs, func(pr plan.Program) bool { return len(pr.DependsOn) > 0 })
	ready := slices.ContainsFunc(p.Programs, func(pr plan.Program) bool { return pr.Ready != nil })
	// START (auto or manual, as supervisorctl's avail) once some program is started by
	// hand: a notebook with autostart = False looked like one up would start.
	manual := slices.ContainsFunc(p.Programs, func(pr plan.Program) bool { return !pr.Autostart })
	// GROUP, with the group's priority, once there are groups: it orders starts before
	// a program's own (999 on every row read as no order at all).
	groupPrio := map[string]int{}
	for _, g := range p.Groups {
		groupPrio[g.Name] = g.Priority
	}
	grouped := slices.ContainsFunc(p.Programs, func(pr plan.Program) bool { _, ok := groupPrio[pr.Group]; return ok })
	var rows [][]string
	row := func(cells ...string) { rows = append(rows, cells) }
	head := []string{"NAME", "COMMAND", "CODE"}
	if after {
		head = append(head, "AFTER")
	}
	if ready {
		head = append(head, "READY")
	}
	if manual {
		head = append(head, "START")
	}
	if grouped {
		head = append(head, "GROUP")
	}
	row(append(head, "PRIORITY", "AUTORESTART", "LOG")...)
	for _, pr := range p.Programs {
		cells := []string{pr.ProcessName, truncate(commandCell(p.Root, pr.Command), commandWidth), codeCell(p.Root, pr)}
		if after {
			cells = append(cells, cmp.Or(strings.Join(pr.DependsOn, ","), "-"))
		}
		if ready {
			cells = append(cells, truncate(readyCell(pr.Ready), 40))
		}
		if manual {
			cells = append(cells, map[bool]string{true: "auto", false: "manual"}[pr.Autostart])
		}
		if grouped {
			g := "-" // none, or a pool's own (numprocs), which orders nothing
			if prio, ok := groupPrio[pr.Group]; ok {
				g = fmt.Sprintf("%s (priority %d)", pr.Group, prio)
			}
			cells = append(cells, g)
		}
		row(append(cells, strconv.Itoa(pr.Priority), string(pr.Autorestart), logCell(p.Root, pr))...)
	}
	if err := writeColumns(w, rows); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, counts(p))
	return err
}

func commandCell(root string, argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = quoteArg(shortPath(root, a))
	}
	return strings.Join(parts, " ")
}

// codeCell is where the code comes from: PYTHONPATH when set, else the working directory.
func codeCell(root string, pr plan.Program) string {
	if pp := pr.Env["PYTHONPATH"]; pp != "" {
		dirs := filepath.SplitList(pp)
		for i, d := range dirs {
			dirs[i] = shortPath(root, d)
		}
		return strings.Join(dirs, string(filepath.ListSeparator))
	}
	if pr.Directory != "" {
		return shortPath(root, pr.Directory)
	}
	return "-"
}

// readyCell words a ready probe for the table: "tcp :8080", "http :8080/health",
// "log /Listening on/", "exec pg_isready", "job" (done once it exited).
func readyCell(pb *plan.Probe) string {
	if pb == nil {
		return "-"
	}
	switch pb.Kind {
	case plan.ProbeExited:
		return "job"
	case plan.ProbeTCP:
		if pb.Host == "" || pb.Host == "127.0.0.1" {
			return fmt.Sprintf("tcp :%d", pb.Port)
		}
		return "tcp " + net.JoinHostPort(pb.Host, strconv.Itoa(pb.Port))
	case plan.ProbeHTTP:
		u := strings.TrimPrefix(strings.TrimPrefix(plan.Redacted(pb.URL), "http://"), "https://")
		return "http " + strings.TrimPrefix(u, "127.0.0.1")
	case plan.ProbeLog:
		return "log /" + pb.Pattern + "/"
	case plan.ProbeExec:
		if len(pb.Command) > 0 {
			return "exec " + filepath.Base(pb.Command[0])
		}
	}
	return pb.Kind
}

func logCell(root string, pr plan.Program) string {
	if pr.Stdout == nil {
		if pr.Stderr != nil && !pr.RedirectStderr {
			return "stderr: " + shortPath(root, pr.Stderr.Path) // "-" read as no log at all
		}
		return "-"
	}
	s := shortPath(root, pr.Stdout.Path)
	if pr.RedirectStderr {
		s += " (+stderr)"
	}
	return s
}

// shortPath shows an absolute path relative to root when it lies under root or under its
// parent (the bundle layout keeps the script in etc/ beside the code); others stay absolute.
func shortPath(root, path string) string {
	if !filepath.IsAbs(path) || root == "" {
		return path
	}
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return path
	}
	up := strings.Count(rel+string(filepath.Separator), ".."+string(filepath.Separator))
	if !strings.HasPrefix(rel, "..") {
		up = 0
	}
	if up > 1 {
		return path
	}
	return rel
}

// quoteArg quotes an argument the way a shell would need it, so a command can be read
// (and pasted) as one line: 'single quotes', 'it'\”s' for a quote inside, and bash's
// $'...' for control characters (a newline or tab would break the table).
func quoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\"'\\$`;&|<>()*?[]{}~#!") {
		return s
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		var b strings.Builder
		b.WriteString("$'")
		for _, r := range s {
			switch {
			case r == '\\' || r == '\'':
				b.WriteByte('\\')
				b.WriteRune(r)
			case r == '\n':
				b.WriteString(`\n`)
			case r == '\t':
				b.WriteString(`\t`)
			case unicode.IsControl(r) && r < 0x80:
				fmt.Fprintf(&b, `\x%02x`, r)
			case unicode.IsControl(r):
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('\'')
		return b.String()
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// counts sums up the plan: programs, processes, and groups (explicit ones and those that
// numprocs makes implicitly).
func counts(p *plan.Plan) string {
	names, groups := map[string]bool{}, map[string]bool{}
	for _, pr := range p.Programs {
		names[pr.Name] = true
		if pr.Group != "" {
			groups[pr.Group] = true
		}
	}
	for _, g := range p.Groups {
		groups[g.Name] = true
	}
	return fmt.Sprintf("%s, %s, %s",
		plural(len(names), "program"), plural(len(p.Programs), "process"), plural(len(groups), "group"))
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "s") {
		return fmt.Sprintf("%d %ses", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
