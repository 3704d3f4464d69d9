// Package export turns a plan into the configuration of another process manager
// (supervisord, systemd, Nomad). It maps every plan field it can and reports each one it
// cannot, so a user knows exactly what the other engine will do differently.
package export

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/natefinch/atomic"

	"github.com/starvisor/starvisor/engine/plan"
)

// File is one generated file; Name is a base name.
type File struct {
	Name string
	Data []byte
}

// Problem is a plan field the target cannot express.
type Problem struct {
	Format  string
	Program string // program name; "" for a group or the whole plan
	Group   string // group name when the problem is about a group
	Field   string
	Why     string
}

func (p Problem) String() string {
	var who string
	switch {
	case p.Program != "":
		who = fmt.Sprintf("program %q: ", p.Program)
	case p.Group != "":
		who = fmt.Sprintf("group %q: ", p.Group)
	}
	field := ""
	if p.Field != "" {
		field = p.Field + ": "
	}
	return fmt.Sprintf("export %s: %s%s%s", p.Format, who, field, p.Why)
}

// Lines words problems for a person: those of several programs that say the same are one
// line naming them all (four programs were 32 lines, most of them one sentence each
// four times), in the order of their first.
func Lines(problems []Problem) []string {
	type key struct{ format, group, field, why string }
	var order []key
	who := map[key][]string{}
	for _, p := range problems {
		k := key{p.Format, p.Group, p.Field, p.Why}
		if _, ok := who[k]; !ok {
			order = append(order, k)
		}
		who[k] = append(who[k], p.Program)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		p := Problem{Format: k.format, Group: k.group, Field: k.field, Why: k.why, Program: who[k][0]}
		line := p.String()
		if names := who[k]; len(names) > 1 {
			quoted := make([]string, len(names))
			for i, n := range names {
				quoted[i] = fmt.Sprintf("%q", n)
			}
			line = strings.Replace(line, fmt.Sprintf("program %q", names[0]), "programs "+strings.Join(quoted, ", "), 1)
		}
		out = append(out, line)
	}
	return out
}

// Result is an export: the files and what they leave out.
type Result struct {
	Files    []File
	Problems []Problem
	// Folders must exist before the target starts (supervisord refuses to start without
	// its log and pid folders, where starvisor makes them), sorted.
	Folders []string
}

// Options tune an export.
type Options struct {
	// Name of the deployment (systemd unit prefix, Nomad job ID); "" means the base name
	// of the plan's root folder.
	Name string
	// LookPath resolves a bare command name (systemd wants absolute paths); nil means
	// exec.LookPath.
	LookPath func(string) (string, error)
}

// Formats are the names Export accepts.
var Formats = []string{"supervisord", "systemd", "nomad"}

// Export renders p in the named format.
func Export(format string, p *plan.Plan, o Options) (Result, error) {
	switch format {
	case "supervisord":
		return Supervisord(p, o)
	case "systemd":
		return Systemd(p, o)
	case "nomad":
		return Nomad(p, o)
	}
	return Result{}, fmt.Errorf("export: unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// Print writes the files to w, each after a "# file: NAME" line.
func Print(w io.Writer, files []File) error {
	for _, f := range files {
		if _, err := fmt.Fprintf(w, "# file: %s\n%s", f.Name, f.Data); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	return nil
}

// Write writes each file into dir atomically, creating dir when needed.
func Write(dir string, files []File) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	for _, f := range files {
		if err := WriteFile(filepath.Join(dir, f.Name), f.Data); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	return nil
}

// WriteFile writes data at path atomically, mode 0600 whatever was there: these files
// hold the programs' environment. Written over by rename, never through: a file or a
// symlink another user planted at the name (in a shared folder) gave root's export
// its mode, 0666, secrets and all, and a config that user could edit before root
// installed it.
func WriteFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*") // 0600
	if err != nil {
		return fmt.Errorf("%s: %w", path, errors.Unwrap(err))
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = atomic.ReplaceFile(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// deployName is o.Name or the plan root's base name.
func deployName(p *plan.Plan, o Options) string {
	if o.Name != "" {
		return o.Name
	}
	return filepath.Base(p.Root)
}

// program is one declaration: the plan entries numprocs expanded from it, by process_num.
type program struct {
	Name      string
	Instances []plan.Program
}

func (g program) first() plan.Program { return g.Instances[0] }

// programs collapses the plan's entries back into declarations, in start order of their
// first instance.
func programs(p *plan.Plan) []program {
	var out []program
	at := map[string]int{}
	for _, pr := range p.Programs {
		i, ok := at[pr.Name]
		if !ok {
			i = len(out)
			at[pr.Name] = i
			out = append(out, program{Name: pr.Name})
		}
		out[i].Instances = append(out[i].Instances, pr)
	}
	for _, g := range out {
		sort.SliceStable(g.Instances, func(a, b int) bool { return g.Instances[a].ProcessNum < g.Instances[b].ProcessNum })
	}
	return out
}

// numTemplate finds a template for values (one per instance, numbered by nums) in which
// the process number is a placeholder: lit escapes the literal parts, num(width) spells
// the placeholder for a zero-padded width (0: none), or "" when it cannot. ok is false
// when no template fits.
func numTemplate(values []string, nums []int, lit func(string) string, num func(width int) string) (string, bool) {
	if !slices.ContainsFunc(values, func(v string) bool { return v != values[0] }) {
		return lit(values[0]), true
	}
	v0 := values[0]
	for width := 4; width >= 0; width-- { // widest first: "01" is padded, not "0" then 1
		ph := num(width)
		if ph == "" || width == 1 { // a width of 1 pads nothing: width 0 says it plainly
			continue
		}
		needle := fmt.Sprintf("%0*d", width, nums[0])
		// Try every occurrence alone, then all of them.
		var starts []int
		for i := 0; ; {
			j := strings.Index(v0[i:], needle)
			if j < 0 {
				break
			}
			starts = append(starts, i+j)
			i += j + 1
		}
		cands := make([][]int, 0, len(starts)+1)
		var all []int // the occurrences that do not overlap ("00" twice in "000" does)
		for _, s := range starts {
			cands = append(cands, []int{s})
			if len(all) == 0 || s >= all[len(all)-1]+len(needle) {
				all = append(all, s)
			}
		}
		if len(all) > 1 {
			cands = append(cands, all)
		}
		for _, at := range cands {
			if fits(values, nums, v0, needle, at, width) {
				var b strings.Builder
				prev := 0
				for _, s := range at {
					b.WriteString(lit(v0[prev:s]))
					b.WriteString(ph)
					prev = s + len(needle)
				}
				b.WriteString(lit(v0[prev:]))
				return b.String(), true
			}
		}
	}
	return "", false
}

// fits says whether putting each instance's number at the positions at of v0 gives its value.
func fits(values []string, nums []int, v0, needle string, at []int, width int) bool {
	for k, v := range values {
		var b strings.Builder
		prev := 0
		for _, s := range at {
			b.WriteString(v0[prev:s])
			fmt.Fprintf(&b, "%0*d", width, nums[k])
			prev = s + len(needle)
		}
		b.WriteString(v0[prev:])
		if b.String() != v {
			return false
		}
	}
	return true
}

// column returns f of every instance, with the instances' numbers.
func column(g program, f func(plan.Program) string) ([]string, []int) {
	vals := make([]string, len(g.Instances))
	nums := make([]int, len(g.Instances))
	for i, pr := range g.Instances {
		vals[i], nums[i] = f(pr), pr.ProcessNum
	}
	return vals, nums
}

// envKeys are a program's env names without the one the engine sets per instance.
func envKeys(pr plan.Program) []string {
	var keys []string
	for k := range pr.Env {
		if k != processNumEnv {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// processNumEnv is set by builtins in every entry's env (engine.EnvProcessNum).
const processNumEnv = "STARVISOR_PROCESS_NUM"

// processNameEnv and groupNameEnv are set by the engine at each spawn (not in the plan's
// env): the exports set them too (engine.EnvProcessName, engine.EnvGroupName).
const (
	processNameEnv = "STARVISOR_PROCESS_NAME"
	groupNameEnv   = "STARVISOR_GROUP_NAME"
)

// sameAcrossInstances reports whether every instance agrees with the first on all fields
// but the per-instance ones (process name and number, log paths, STARVISOR_PROCESS_NUM)
// and, where num is not nil, command arguments, env values and the directory that follow
// the process number as num spells it (numTemplate): `"80{num:02}"` in a pool.
func sameAcrossInstances(g program, num func(width int) string) bool {
	norm := func(pr plan.Program) string {
		pr.ProcessName, pr.ProcessNum, pr.Hash, pr.Pos = "", 0, "", ""
		env := map[string]string{}
		for _, k := range envKeys(pr) {
			env[k] = pr.Env[k]
			if num != nil {
				env[k] = "" // compared below, as a template
			}
		}
		pr.Env = env
		if num != nil {
			pr.Command, pr.Directory = make([]string, len(pr.Command)), ""
		}
		logs := [2]plan.Log{}
		for i, l := range []*plan.Log{pr.Stdout, pr.Stderr} {
			if l != nil {
				logs[i] = *l
				logs[i].Path = "set"
			}
		}
		var ready plan.Probe
		if pr.Ready != nil && num == nil {
			ready = *pr.Ready // supervisord and systemd have no probes: theirs may differ
		}
		pr.Stdout, pr.Stderr, pr.Ready = nil, nil, nil
		return fmt.Sprintf("%#v %#v %#v", pr, logs, ready)
	}
	n0 := norm(g.first())
	for _, pr := range g.Instances[1:] {
		if norm(pr) != n0 {
			return false
		}
	}
	if num == nil {
		return true
	}
	follows := func(f func(plan.Program) string) bool {
		vals, nums := column(g, f)
		_, ok := numTemplate(vals, nums, func(s string) string { return s }, num)
		return ok
	}
	for i := range g.first().Command {
		if !follows(func(p plan.Program) string { return p.Command[i] }) {
			return false
		}
	}
	for _, k := range envKeys(g.first()) {
		if !follows(func(p plan.Program) string { return p.Env[k] }) {
			return false
		}
	}
	return follows(func(p plan.Program) string { return p.Directory })
}
