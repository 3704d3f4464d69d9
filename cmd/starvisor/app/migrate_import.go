package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.starlark.net/starlark"

	"github.com/starvisor/starvisor/builtins"
	"github.com/starvisor/starvisor/engine/export"
)

// ImportCmd prints a deploy script equivalent to a supervisord configuration.
type ImportCmd struct {
	Conf  string `arg:"" type:"path" help:"supervisord configuration file (its [include] files are read too)."`
	Out   string `short:"o" type:"path" placeholder:"FILE" help:"Write the script to FILE (atomically); paths inside FILE's folder are written as here(...) so the bundle can move."`
	Force bool   `help:"Overwrite FILE if it exists (never the configuration being read)."`
}

// Run reads the configuration through @stdlib//supervisord.star and prints or writes the
// script.
func (c *ImportCmd) Run(d *Deps) error {
	if c.Force && c.Out == "" {
		return usageError(errors.New("import: --force goes with -o FILE (without it, the script is printed)"))
	}
	if c.Out != "" {
		// Before reading: a migration must not destroy what it migrates, nor a script
		// written by hand since.
		if st, err := os.Stat(c.Out); err == nil {
			if conf, err := os.Stat(c.Conf); err == nil && os.SameFile(st, conf) {
				return usageError(fmt.Errorf("import: -o %s is the configuration being read", c.Out))
			}
			if !c.Force {
				return usageError(fmt.Errorf("import: %s exists; --force overwrites it", c.Out))
			}
		}
	}
	decls, err := readSupervisordConf(context.Background(), c.Conf, d)
	if err != nil {
		return err
	}
	if c.Out == "" {
		_, err = fmt.Fprint(d.Stdout, renderImport(c.Conf, decls, ""))
		return err
	}
	// Where the script lives is only known with -o: printed, it keeps absolute paths,
	// right wherever it is saved.
	out, err := filepath.Abs(c.Out)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	script := renderImport(c.Conf, decls, filepath.Dir(out))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil { // as export -o does
		return fmt.Errorf("import: %w", err)
	}
	if err := export.WriteFile(out, []byte(script)); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	_, err = fmt.Fprintf(d.Stdout, "wrote %s\n", c.Out)
	return err
}

// supervisordDecls is what supervisord.read returns: group() and program() keywords.
type supervisordDecls struct {
	Groups     []map[string]any `json:"groups"`
	Programs   []map[string]any `json:"programs"`
	Supervisor map[string]any   `json:"supervisor"` // supervisor() keywords: minfds
	Comments   importComments   `json:"comments"`
}

// importComments are the config's comments, by the call they go with (see
// supervisord.star's read).
type importComments struct {
	Files []struct {
		File  string   `json:"file"`
		Lines []string `json:"lines"`
	} `json:"files"`
	Programs   map[string]*callComments `json:"programs"`
	Groups     map[string]*callComments `json:"groups"`
	Supervisor *callComments            `json:"supervisor"`
}

// callComments are one call's: lines above it, above a keyword, and after a keyword's
// value ([ini key, text]).
type callComments struct {
	Above  []string               `json:"above"`
	Kwargs map[string][]string    `json:"kwargs"`
	Inline map[string][][2]string `json:"inline"`
}

// oneLine is c for a call written on one line: every comment above it, but a single
// inline one, which stays after it.
func (c *callComments) oneLine(kwargs []string) (above []string, trailing string) {
	if c == nil {
		return nil, ""
	}
	above = append(above, c.Above...)
	var inline [][2]string
	for _, k := range kwargs {
		above = append(above, c.Kwargs[k]...)
		inline = append(inline, c.Inline[k]...)
	}
	if len(inline) == 1 {
		return above, inline[0][1]
	}
	return append(above, inlineLines(inline)...), ""
}

// missing are the comments of c's keywords that p does not write (a log left AUTO, a
// directory that is the script's own): they go above the call.
func (c *callComments) missing(p map[string]any) []string {
	var out []string
	if c == nil {
		return nil
	}
	for _, k := range programKwargs {
		if _, ok := p[k]; !ok {
			out = append(append(out, c.Kwargs[k]...), inlineLines(c.Inline[k])...)
		}
	}
	return out
}

// inlineLines writes inline comments away from their value, after the key they explain.
func inlineLines(inline [][2]string) []string {
	out := make([]string, len(inline))
	for i, kv := range inline {
		out[i] = kv[0] + ": " + kv[1]
	}
	return out
}

// writeComments writes lines as # comments at indent.
func writeComments(b *strings.Builder, indent string, lines []string) {
	for _, l := range lines {
		if l == "" {
			fmt.Fprintf(b, "%s#\n", indent)
			continue
		}
		fmt.Fprintf(b, "%s# %s\n", indent, l)
	}
}

// trailingComment is "  # text" after a call or keyword written on one line.
func trailingComment(text string) string {
	if text == "" {
		return ""
	}
	return "  # " + text
}

// importRoots lets the reader of an import anywhere: the user names the file, and its
// [include] may name files elsewhere (/etc/supervisor/conf.d, /opt/app/deploy); the
// script it writes holds the values, not the reads. (load_conf at run time keeps the
// sandbox: a library root per folder outside the bundle.)
var importRoots = map[string]string{"host": "/"}

// readSupervisordConf evaluates supervisord.read(conf) from a throwaway entry script.
func readSupervisordConf(ctx context.Context, conf string, d *Deps) (*supervisordDecls, error) {
	abs, err := filepath.Abs(conf)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	// A missing file would otherwise read as "outside the library roots": its folder,
	// the root, may not exist either.
	if st, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("import: %s is not a file: want a supervisord configuration (supervisord.conf)", abs)
	}
	tmp, err := os.MkdirTemp("", "svimport")
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer os.RemoveAll(tmp)
	const marker = "STARVISOR-IMPORT "
	script := fmt.Sprintf("load(\"@stdlib//supervisord.star\", \"supervisord\")\nprint(%q + json.encode(supervisord.read(%q)))\n", marker, abs)
	entry := filepath.Join(tmp, "import.star")
	if err := os.WriteFile(entry, []byte(script), 0o644); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var out bytes.Buffer
	p, err := builtins.Eval(ctx, builtins.Options{
		File:      entry,
		Libs:      importRoots,
		LookupEnv: d.LookupEnv,
		Print:     &out,
	})
	if err != nil {
		printImportError(d.Stderr, err)
		return nil, reported(ExitFailure)
	}
	noteEnvReads(d.Stderr, p.Inputs.Env)
	var decls supervisordDecls
	for _, line := range strings.Split(out.String(), "\n") {
		_, js, ok := strings.Cut(line, marker)
		if !ok {
			if strings.TrimSpace(line) != "" {
				// Warnings from the reader; their "import.star:N: " names the throwaway
				// script's line, which is no help: the message names the config's.
				if rest, ok := strings.CutPrefix(line, "import.star:"); ok {
					if _, msg, ok := strings.Cut(rest, ": "); ok {
						line = msg
					}
				}
				fmt.Fprintln(d.Stderr, "import: "+strings.TrimPrefix(line, "supervisord: "))
			}
			continue
		}
		dec := json.NewDecoder(strings.NewReader(js))
		dec.UseNumber()
		if err := dec.Decode(&decls); err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
	}
	// The declarations read; a script of them must also run (two programs writing one
	// rotating log do not): load_conf declares them, and the plan is checked.
	loader := fmt.Sprintf("load(\"@stdlib//supervisord.star\", \"supervisord\")\nsupervisord.load_conf(%q)\n", abs)
	if err := os.WriteFile(entry, []byte(loader), 0o644); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if _, err := builtins.Eval(ctx, builtins.Options{
		File: entry, Libs: importRoots, LookupEnv: d.LookupEnv, Print: io.Discard,
	}); err != nil {
		printImportError(d.Stderr, err)
		fmt.Fprintf(d.Stderr, "import: %s reads, but starvisor cannot run it as it is (see above); no script written\n", conf)
		return nil, reported(ExitFailure)
	}
	return &decls, nil
}

// printImportError prints an error of reading the configuration: its message, which names
// the file, section and key, without the position and stack in the throwaway script and
// the stdlib that read it, no help to someone importing an ini file.
func printImportError(w io.Writer, err error) {
	var be *builtins.Error
	if !errors.As(err, &be) {
		printScriptError(w, err)
		return
	}
	msg := strings.TrimPrefix(be.Msg, "fail: ")
	msg = strings.TrimPrefix(msg, "supervisord: ")
	fmt.Fprintf(w, "import: %s\n", msg)
}

// noteEnvReads says which host variables the configuration expanded (%(ENV_X)s, and
// HOME for ~): the script holds their values of now, where supervisord reads them at
// each start.
func noteEnvReads(w io.Writer, env map[string]string) {
	if name, ok := env["host.name"]; ok {
		fmt.Fprintf(w, "import: the script holds this machine's name, %q (the configuration's %%(host_node_name)s); "+
			"where it should follow the machine, write host.name() instead\n", name)
	}
	var names []string
	for k := range env {
		if !strings.Contains(k, ".") { // host.name and the like are not variables
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	fmt.Fprintf(w, "import: the script holds this environment's values of %s (the configuration's %%(ENV_...)s "+
		"and ~); where it should read them at each evaluation, write host.env(%q) instead\n",
		strings.Join(names, ", "), names[0])
}

// programKwargs is the order keywords are printed in (DESIGN.md's order).
var programKwargs = []string{
	"name", "command", "directory", "env", "user", "umask", "autostart", "autorestart",
	"exit_codes", "start_secs", "start_retries", "stop_signal", "stop_timeout", "stop_as_group",
	"kill_as_group", "priority", "numprocs", "numprocs_start", "process_name", "stdout", "stderr",
	"redirect_stderr",
}

// renderImport writes the deploy script: group() calls, then programs; programs that
// differ only in a few values become one loop. Paths inside the folder here (when not
// "") are written as here(...).
func renderImport(conf string, d *supervisordDecls, here string) string {
	r := &render{here: here}
	for _, p := range d.Programs {
		// The script's own folder is where a program that names none runs, as load_conf
		// leaves it out there: the same plan (and supervisord export, which names it for
		// supervisord -n, reads back as it was).
		if dir, ok := p["directory"].(string); ok && here != "" && filepath.Clean(dir) == filepath.Clean(here) {
			delete(p, "directory")
		}
	}
	b := &r.b
	fmt.Fprintf(b, "# Imported from %s by `starvisor import`.\n", conf)
	fmt.Fprintf(b, "# Same plan as load(\"@stdlib//supervisord.star\", \"supervisord\"); supervisord.load_conf(%s).\n", r.str(conf))
	r.comments = d.Comments
	mainConf, _ := filepath.Abs(conf)
	for _, f := range d.Comments.Files {
		b.WriteString("\n")
		if f.File != mainConf { // an [include]d file's
			name := f.File
			if rel, err := filepath.Rel(filepath.Dir(mainConf), f.File); err == nil && !strings.HasPrefix(rel, "..") {
				name = rel
			}
			fmt.Fprintf(b, "# From %s:\n", name)
		}
		writeComments(b, "", f.Lines)
	}
	if v, ok := d.Supervisor["minfds"]; ok {
		above, trailing := d.Comments.Supervisor.oneLine([]string{"minfds"})
		b.WriteString("\n")
		writeComments(b, "", above)
		fmt.Fprintf(b, "# [supervisord] minfds=: the programs' open-files limit.\nsupervisor(minfds = %s)%s\n", r.value(v), trailingComment(trailing))
	}
	if len(d.Groups) > 0 {
		b.WriteString("\n")
	}
	for _, g := range d.Groups {
		name, _ := g["name"].(string)
		above, trailing := d.Comments.Groups[name].oneLine([]string{"programs", "priority"})
		writeComments(b, "", above)
		fmt.Fprintf(b, "group(name = %s, programs = %s, priority = %s)%s\n", r.value(g["name"]), r.value(g["programs"]), r.value(g["priority"]), trailingComment(trailing))
	}
	if r.common = commonEnv(d.Programs); r.common != nil {
		fmt.Fprintf(b, "\n# The environment the programs share ([supervisord] environment=, or values alike in their own environment=); a program's own, after |, wins.\n%s = %s\n", commonEnvName, r.expr("", r.common, nil))
	}
	for _, cl := range clusterPrograms(d.Programs, r.commentsOf) {
		b.WriteString("\n")
		if len(cl.members) == 1 {
			r.program("", cl.members[0], nil)
			continue
		}
		r.loop(cl)
	}
	return b.String()
}

// A cluster is a set of programs with the same shape whose values differ only at a few
// leaves (besides the name).
type cluster struct {
	members []map[string]any
	varying []string // leaf paths whose values differ
}

// maxColumns bounds the loop variables besides the name: more and a loop reads worse
// than separate blocks.
const maxColumns = 2

// Programs share a loop only when the comments of their keywords are the same: the
// loop's body writes them once (those above each program go above its row).
func clusterPrograms(progs []map[string]any, comments func(map[string]any) *callComments) []*cluster {
	kwargComments := func(p map[string]any) string {
		c := comments(p)
		if c == nil {
			return ""
		}
		b, _ := json.Marshal([]any{c.Kwargs, c.Inline})
		return string(b)
	}
	var out []*cluster
	for _, p := range progs {
		placed := false
		for _, c := range out {
			if shape(c.members[0]) != shape(p) || kwargComments(c.members[0]) != kwargComments(p) {
				continue
			}
			vary := varyingLeaves(append(append([]map[string]any{}, c.members...), p))
			if len(columns(vary, append(append([]map[string]any{}, c.members...), p))) <= maxColumns {
				c.members = append(c.members, p)
				c.varying = vary
				placed = true
				break
			}
		}
		if !placed {
			out = append(out, &cluster{members: []map[string]any{p}})
		}
	}
	return out
}

// shape is a program's structure: keys, list lengths and dict keys, not the values.
func shape(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("{")
		for _, k := range keys {
			if k == "name" {
				continue
			}
			b.WriteString(k + ":" + shape(x[k]) + ",")
		}
		return b.String() + "}"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = shape(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case nil:
		return "null"
	case string:
		return "s"
	default:
		return "v"
	}
}

// leaves flattens v into path -> scalar.
func leaves(prefix string, v any, out map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			leaves(prefix+"/"+k, e, out)
		}
	case []any:
		for i, e := range x {
			leaves(fmt.Sprintf("%s/%d", prefix, i), e, out)
		}
	default:
		out[prefix] = v
	}
}

func varyingLeaves(members []map[string]any) []string {
	first := map[string]any{}
	leaves("", members[0], first)
	var vary []string
	for path, v := range first {
		if path == "/name" {
			continue
		}
		for _, m := range members[1:] {
			l := map[string]any{}
			leaves("", m, l)
			if fmt.Sprint(l[path]) != fmt.Sprint(v) {
				vary = append(vary, path)
				break
			}
		}
	}
	sort.Strings(vary)
	return vary
}

// nameTemplate returns the format string that gives each member's value at path from
// its name ("/var/log/%s.log"), or "" when there is none.
func nameTemplate(path string, members []map[string]any) string {
	tmpl := ""
	for i, m := range members {
		l := map[string]any{}
		leaves("", m, l)
		s, ok := l[path].(string)
		name, _ := m["name"].(string)
		// A name with % in it would be escaped in the template, and not found there.
		if !ok || name == "" || strings.Contains(name, "%") || !strings.Contains(s, name) {
			return ""
		}
		t := strings.ReplaceAll(strings.ReplaceAll(s, "%", "%%"), name, "%s")
		if i > 0 && t != tmpl {
			return ""
		}
		tmpl = t
	}
	return tmpl
}

// columns are the varying leaves that need a loop variable (no name template).
func columns(vary []string, members []map[string]any) []string {
	var cols []string
	for _, p := range vary {
		if nameTemplate(p, members) == "" {
			cols = append(cols, p)
		}
	}
	return cols
}

// columnName is a loop variable name for a leaf path: the last word of it.
func columnName(path string, used map[string]bool) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	name := strings.ToLower(parts[len(parts)-1])
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		name = parts[0] + "_" + name
		if parts[0] == "command" {
			name = "arg"
		}
	}
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, name)
	base := name
	for i := 2; used[name] || reserved(name); i++ {
		name = fmt.Sprintf("%s%d", base, i)
	}
	used[name] = true
	return name
}

// reserved says whether a loop variable may not be called name: a Starlark keyword, a
// word go.starlark.net reserves, or a name the script calls (program, log, here, str,
// ...), which the variable would hide inside the loop.
func reserved(name string) bool {
	return starReserved[name] || starlark.Universe.Has(name) || predeclared().Has(name)
}

var predeclared = sync.OnceValue(func() starlark.StringDict {
	pre, _ := builtins.Predeclared(builtins.Default()...)
	return pre
})

var starReserved = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`and break continue def elif else for if in lambda load not or pass
		return while as assert async await class del except finally from global import is
		nonlocal raise try with yield`) {
		starReserved[w] = true
	}
}

func (r *render) loop(c *cluster) {
	cols := columns(c.varying, c.members)
	used := map[string]bool{"name": true}
	vars := make([]string, len(cols))
	subst := map[string]string{}
	for i, p := range cols {
		vars[i] = columnName(p, used)
		subst[p] = vars[i]
	}
	for _, p := range c.varying {
		if _, ok := subst[p]; !ok {
			subst[p] = r.template(p, nameTemplate(p, c.members))
		}
	}
	head := append([]string{"name"}, vars...)
	rows := make([]string, len(c.members))
	for i, m := range c.members {
		l := map[string]any{}
		leaves("", m, l)
		vals := []string{r.value(m["name"])}
		for _, p := range cols {
			v := r.leaf(p, l[p])
			if strings.HasSuffix(p, "/max_bytes") {
				v = sizeExpr(l[p], v)
			}
			vals = append(vals, v)
		}
		var row strings.Builder
		if cc := r.commentsOf(m); cc != nil {
			writeComments(&row, "    ", cc.Above)
		}
		if len(vals) == 1 {
			row.WriteString("    " + vals[0] + ",")
		} else {
			row.WriteString("    (" + strings.Join(vals, ", ") + "),")
		}
		rows[i] = row.String()
	}
	// The members' keywords and their comments are alike: those of keywords not
	// written, once above the loop.
	writeComments(&r.b, "", r.commentsOf(c.members[0]).missing(c.members[0]))
	fmt.Fprintf(&r.b, "for %s in [\n%s\n]:\n", strings.Join(head, ", "), strings.Join(rows, "\n"))
	r.program("    ", c.members[0], subst)
}

// commentsOf returns the comments of program p, or nil.
func (r *render) commentsOf(p map[string]any) *callComments {
	name, _ := p["name"].(string)
	return r.comments.Programs[name]
}

// program prints one program() call; subst replaces leaves by expressions.
func (r *render) program(indent string, p map[string]any, subst map[string]string) {
	b := &r.b
	c := r.commentsOf(p)
	if subst == nil && c != nil { // in a loop, these are above its rows and the loop
		writeComments(b, indent, c.Above)
		writeComments(b, indent, c.missing(p))
	}
	fmt.Fprintf(b, "%sprogram(\n", indent)
	for _, k := range programKwargs {
		v, ok := p[k]
		if !ok {
			continue
		}
		trailing := ""
		if c != nil {
			writeComments(b, indent+"    ", c.Kwargs[k])
			if len(c.Inline[k]) == 1 {
				trailing = c.Inline[k][0][1]
			} else {
				writeComments(b, indent+"    ", inlineLines(c.Inline[k]))
			}
		}
		expr := r.expr("/"+k, v, subst)
		if k == "name" && subst != nil {
			expr = "name"
		}
		if (k == "stdout" || k == "stderr") && v != nil {
			expr = r.log("/"+k, v.(map[string]any), subst)
		}
		if env, ok := v.(map[string]any); ok && k == "env" && r.common != nil {
			expr = r.envExpr(env, subst)
		}
		fmt.Fprintf(b, "%s    %s = %s,%s\n", indent, k, expr, trailingComment(trailing))
	}
	fmt.Fprintf(b, "%s)\n", indent)
}

// commonEnvName is the variable that holds the shared environment in an imported script.
const commonEnvName = "COMMON_ENV"

// commonEnv returns the variables every program's env holds (a [supervisord]
// environment= reaches each), each with the value most of them have: written once, each
// program adding with | its own and the ones it sets otherwise (| takes the right one).
// nil when no value is shared by two programs.
func commonEnv(progs []map[string]any) map[string]any {
	if len(progs) < 2 {
		return nil
	}
	envs := make([]map[string]any, len(progs))
	for i, p := range progs {
		env, ok := p["env"].(map[string]any)
		if !ok {
			return nil
		}
		envs[i] = env
	}
	common := map[string]any{}
	for k, v0 := range envs[0] {
		count := map[string]int{}
		best, bestN, everywhere := v0, 0, true
		for _, env := range envs {
			v, ok := env[k]
			if !ok {
				everywhere = false
				break
			}
			key := fmt.Sprint(v)
			if count[key]++; count[key] > bestN {
				best, bestN = v, count[key]
			}
		}
		if everywhere && bestN >= 2 {
			common[k] = best
		}
	}
	if len(common) == 0 {
		return nil
	}
	return common
}

// envExpr writes a program's env as the shared one and what it adds or sets otherwise:
// COMMON_ENV, or COMMON_ENV | {...}. The values are the same, and so is the plan. In a
// loop, a variable whose value varies (subst) is always the program's own.
func (r *render) envExpr(env map[string]any, subst map[string]string) string {
	own := map[string]any{}
	for k, v := range env {
		c, shared := r.common[k]
		_, varies := subst["/env/"+k]
		if !shared || varies || fmt.Sprint(c) != fmt.Sprint(v) {
			own[k] = v
		}
	}
	if len(own) == 0 {
		return commonEnvName
	}
	return commonEnvName + " | " + r.expr("/env", own, subst)
}

func (r *render) log(path string, spec map[string]any, subst map[string]string) string {
	args := []string{r.expr(path+"/path", spec["path"], subst)}
	for _, k := range []string{"max_bytes", "backups"} {
		if v, ok := spec[k]; ok {
			e := r.expr(path+"/"+k, v, subst)
			if _, templated := subst[path+"/"+k]; k == "max_bytes" && !templated {
				e = sizeExpr(v, e)
			}
			args = append(args, k+" = "+e)
		}
	}
	return "log(" + strings.Join(args, ", ") + ")"
}

// sizeExpr writes a byte count as a person would, "20MB" for 20971520 (log() reads
// supervisord's units, KB = 1024), or def when it is no whole number of them.
func sizeExpr(v any, def string) string {
	num, ok := v.(json.Number)
	n, err := num.Int64()
	if !ok || err != nil || n <= 0 {
		return def
	}
	for _, u := range []struct {
		name string
		size int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}} {
		if n%u.size == 0 {
			return fmt.Sprintf("%q", strconv.FormatInt(n/u.size, 10)+u.name)
		}
	}
	return def
}

// expr prints v, using subst for the leaves (or subtrees) it names.
func (r *render) expr(path string, v any, subst map[string]string) string {
	if e, ok := subst[path]; ok {
		return e
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = starQuote(k) + ": " + r.expr(path+"/"+k, x[k], subst)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = r.expr(fmt.Sprintf("%s/%d", path, i), e, subst)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return r.leaf(path, v)
}

// wholePath says whether the leaf at path is one path, blanks and all (a directory, a
// log file, an argument), rather than words of a larger string.
func wholePath(path string) bool {
	return path == "/directory" || path == "/stdout/path" || path == "/stderr/path" || strings.HasPrefix(path, "/command/")
}

// leaf prints the value at path: a whole path inside r.here as one here(...).
func (r *render) leaf(path string, v any) string {
	if s, ok := v.(string); ok && wholePath(path) {
		return r.pathStr(s, strings.HasPrefix(path, "/command/"))
	}
	return r.value(v)
}

// pathStr is str for a value that is one path: inside r.here, here("work dir/données")
// where str, which ends a path at a blank as in a command line, wrote here("work") +
// " dir/données". An argument (arg) that holds more than a path ("--data=/srv/app/x",
// "/srv/app/a:/srv/app/b") is left to str.
func (r *render) pathStr(s string, arg bool) string {
	if r.here == "" || r.here == "/" {
		return starQuote(s)
	}
	if s == r.here {
		return "here()"
	}
	rest, ok := strings.CutPrefix(s, r.here+"/")
	if !ok || rest == "" || filepath.Clean(s) != s || arg && strings.ContainsAny(rest, ":;,=\"'") {
		return r.str(s)
	}
	return "here(" + starQuote(rest) + ")"
}

// value prints a JSON value as a Starlark expression.
func (r *render) value(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return r.str(x)
	case json.Number:
		return x.String()
	case []any, map[string]any:
		return r.expr("", x, nil)
	}
	return fmt.Sprint(v)
}

// render accumulates the script; here is the script's folder ("" when unknown).
type render struct {
	b      strings.Builder
	here   string
	common map[string]any // the environment every program shares, written once (commonEnv)
	// comments carried from the config, by call
	comments importComments
}

// str prints a string literal; where the string names a path inside r.here (all of it,
// or a word of it: "--data=/srv/app/data", "/srv/app/a:/srv/app/b") that part is written
// as here(...), so the script follows its bundle when moved. The value is unchanged.
func (r *render) str(s string) string {
	if r.here == "" || r.here == "/" {
		return starQuote(s)
	}
	var parts []string
	lit := 0 // start of the pending literal
	for i := 0; ; {
		j := strings.Index(s[i:], r.here)
		if j < 0 {
			break
		}
		at, end := i+j, i+j+len(r.here)
		i = at + 1
		if at > 0 && !pathSep(s[at-1]) || end < len(s) && s[end] != '/' && !pathSep(s[end]) {
			continue // "/srv/app2" or "/x/srv/app" is not inside "/srv/app"
		}
		word, braces := end, 0
		for word < len(s) && (braces > 0 || !pathSep(s[word])) { // {num:02} is one word
			switch s[word] {
			case '{':
				braces++
			case '}':
				braces = max(braces-1, 0)
			}
			word++
		}
		if at > lit {
			parts = append(parts, starQuote(s[lit:at]))
		}
		switch {
		case word == end:
			parts = append(parts, "here()")
		case filepath.Clean(s[at:word]) == s[at:word]:
			parts = append(parts, "here("+starQuote(s[end+1:word])+")")
		default: // here() would clean it
			parts = append(parts, "here()")
			word = end
		}
		lit, i = word, word
	}
	if lit < len(s) || len(parts) == 0 {
		parts = append(parts, starQuote(s[lit:]))
	}
	return strings.Join(parts, " + ")
}

// pathSep reports whether c ends a path inside a larger string.
func pathSep(c byte) bool {
	return strings.IndexByte(" \t:;,=\"'", c) >= 0
}

// template prints the expression that formats tmpl ("/srv/logs/%s.log") with name, the
// value at path.
func (r *render) template(path, tmpl string) string {
	e := starQuote(tmpl)
	if !strings.Contains(r.here, "%") {
		e = r.leaf(path, tmpl)
	}
	// One argument per %s: "/var/log/%s/%s.log" % (name, name).
	args := "name"
	if n := strings.Count(strings.ReplaceAll(tmpl, "%%", ""), "%s"); n > 1 {
		args = "(" + strings.Repeat("name, ", n-1) + "name)"
	}
	// Inside here(): formatting its result would read a % in the bundle's path.
	if inner, ok := strings.CutPrefix(e, "here("); ok && !strings.Contains(e, " + ") {
		return "here(" + strings.TrimSuffix(inner, ")") + " % " + args + ")"
	}
	if strings.Contains(e, " + ") {
		e = "(" + e + ")"
	}
	return e + " % " + args
}

// starQuote quotes s as a Starlark string literal.
func starQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`, "\r", `\r`)
	return `"` + r.Replace(s) + `"`
}
