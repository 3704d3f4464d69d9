package app

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/starvisor/starvisor/engine/launcher"
	"github.com/starvisor/starvisor/engine/plan"
)

// evalApart evaluates the script for a reload in a child process (`starvisor plan
// --json`), so a script that exhausts memory or hangs in one uninterruptible step (a
// huge list repetition, see README) takes the child down, not the daemon: its
// programs stay supervised and the reload fails like any bad script. The child's
// errors (position and stack) are passed on to the daemon's stderr.
func (c *UpCmd) evalApart(ctx context.Context, keep *plan.Inputs, say func(format string, args ...any)) (*plan.Plan, error) {
	// The running binary itself, even if an upgrade replaced or removed its file: the
	// reload is evaluated by the code that will run the plan.
	exe := "/proc/self/exe"
	if _, err := os.Stat(exe); err != nil {
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("reload: %w", err)
		}
	}
	script, err := filepath.Abs(c.File)
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	args := []string{"plan", "--json", "-f", script}
	// The library roots of the last applied plan (an apply --lib company=DIR), then the
	// daemon's own for the others.
	var kept map[string]string
	if keep != nil {
		kept = keep.Libs
	}
	for _, name := range slices.Sorted(maps.Keys(kept)) {
		args = append(args, "--lib", name+"="+kept[name])
	}
	for _, l := range c.Lib {
		if name, _, _ := strings.Cut(l, "="); kept[name] == "" {
			args = append(args, "--lib", l)
		}
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Args[0] = os.Args[0] // the name it was run by (multi-call test binaries dispatch on it)
	if st, err := os.Stat(c.startDir); err == nil && st.IsDir() {
		cmd.Dir = c.startDir // where relative --lib and STARVISOR_LIBS folders were meant
	}
	cmd.Env = keptEnv(os.Environ(), keep)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Start()
	if runErr == nil {
		done := launcher.ForkedApart(cmd.Process.Pid) // not an orphan for a namespace's init to reap
		runErr = cmd.Wait()
		done()
	}
	// The script's print()s, or its error: lines of the daemon's output like the others,
	// each with its time.
	for line := range strings.Lines(errOut.String()) {
		say("%s", strings.TrimSuffix(line, "\n")+"\n")
	}
	if runErr != nil {
		if errOut.Len() == 0 {
			say("starvisor: reload: evaluating %s: %v\n", script, runErr)
		}
		return nil, &exitError{code: ExitFailure, summary: errorLine(errOut.String())}
	}
	p, err := plan.Decode(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	if err := declaresPrograms(p); err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	return p, nil
}

// keptEnv is env with the variables keep records (a plan's inputs) as they were there:
// set to their values, or taken out when they were unset.
func keptEnv(env []string, keep *plan.Inputs) []string {
	if keep == nil || len(keep.Env) == 0 {
		return env
	}
	out := make([]string, 0, len(env)+len(keep.Env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := keep.Env[k]; !ok {
			out = append(out, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(keep.Env)) {
		if !strings.HasPrefix(k, "host.") && !slices.Contains(keep.Unset, k) {
			out = append(out, k+"="+keep.Env[k])
		}
	}
	return out
}

// errorLine picks out of a failed evaluation's stderr (the script's print()s, then its
// error, "file:line:col: message" and its stack) the error's first line.
func errorLine(stderr string) string {
	// A Go crash (its runtime out of memory): the trace's last line would name a Go file.
	for line := range strings.Lines(stderr) {
		if strings.HasPrefix(line, "fatal error: ") || strings.HasPrefix(line, "panic: ") {
			return "evaluating the script crashed: " + strings.TrimSpace(line)
		}
	}
	head, _, _ := strings.Cut(stderr, "\nTraceback (most recent call last):")
	lines := strings.Split(strings.TrimRight(head, "\n"), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
