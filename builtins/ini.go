package builtins

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// supervisordConfModule provides supervisord_conf, the Go half of
// @stdlib//supervisord.star: reading a supervisord ini file by supervisord's own rules
// (Python's RawConfigParser as supervisord configures it) and its string helpers. The
// mapping of sections to program() and group() lives in the .star file.
//
//	supervisord_conf.read(path)            -> [{"section", "file", "options": {key: value}, "files": {key: file}}]
//	supervisord_conf.read(path, comments = True) -> {"sections": [... each with "comments"], "files": [[file, lines, first section, its header lines], ...]}
//	supervisord_conf.expand(s, vars, what) -> s % vars, Python style: %(name)s, %(name)02d, %%
//	supervisord_conf.template(s, vars)     -> s with %(process_num)..d as {num}/{num:0N}, or None
//	supervisord_conf.split_command(s, what)      -> argv, as shlex.split
//	supervisord_conf.parse_environment(s, what)  -> [[key, value], ...], as supervisord's environment=
//	supervisord_conf.minfds()                    -> the script's supervisor(minfds) so far, or 0
//
// read follows [include] files= (globs relative to the including file, matches sorted;
// an included file may not include further), merges sections of the same name (the last
// value of a key wins), and replaces %(here)s by the folder of the file that set each
// value, as supervisord does. Every file goes through the fs sandbox and is recorded in
// the plan's inputs. With comments = True (for `starvisor import`, which carries them into
// the script) each section also has "comments": {"header": lines above its header,
// "keys": {key: lines above it}, "inline": {key: texts after its values}, "tail": loose
// lines inside it}, and "files" lists each file's lines above its sections (and its first
// section with the lines right above it). In expand, a name ENV_X not in vars is the host variable X, read
// like host.env (recorded); host_node_name is the host name, recorded as host.name.
type supervisordConfModule struct{}

func (supervisordConfModule) Name() string { return "supervisord_conf" }

func (supervisordConfModule) Members() starlark.StringDict {
	return starlark.StringDict{"supervisord_conf": &starlarkstruct.Module{Name: "supervisord_conf", Members: starlark.StringDict{
		"read":              starlark.NewBuiltin("supervisord_conf.read", confRead),
		"expand":            starlark.NewBuiltin("supervisord_conf.expand", confExpand),
		"template":          starlark.NewBuiltin("supervisord_conf.template", confTemplate),
		"split_command":     starlark.NewBuiltin("supervisord_conf.split_command", confSplitCommand),
		"parse_environment": starlark.NewBuiltin("supervisord_conf.parse_environment", confParseEnvironment),
		"minfds":            starlark.NewBuiltin("supervisord_conf.minfds", confMinFDs),
	}}}
}

// confMinFDs implements supervisord_conf.minfds(): the minfds of the script's
// supervisor() so far, 0 without one, so load_conf says nothing of a minfds= the
// script already gives.
func confMinFDs(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs); err != nil {
		return nil, err
	}
	s, err := stateFrom(th)
	if err != nil || s.sup == nil {
		return starlark.MakeInt(0), err
	}
	return starlark.MakeInt(s.sup.minFDs), nil
}

// iniSection is one section, merged over every file that declares it.
type iniSection struct {
	name   string
	file   string            // display name of the file that declared it first
	keys   []string          // in order of first appearance
	values map[string]string // key -> value, last one wins
	files  map[string]string // key -> display name of the file that set the value

	// Comment texts (without their ; or #), for import: above the header (and after
	// it, on its line), above a key's line, after a key's value, and blocks inside the
	// section that stand above nothing (commented-out keys after the last one).
	header, tail []string
	keyComments  map[string][]string
	inline       map[string][]string
}

// fileComments are the comment lines of a file above its sections, apart from them,
// and its first section's name and header comments (the file's own when that section
// becomes nothing in the script: [supervisord] right under a file's opening lines).
type fileComments struct {
	file   string
	lines  []string
	first  string
	header []string
}

// iniConfig is a parsed configuration: sections in order of first appearance.
type iniConfig struct {
	sections []*iniSection
	byName   map[string]*iniSection
	top      []fileComments // per file, in the order read
}

func newINIConfig() *iniConfig { return &iniConfig{byName: map[string]*iniSection{}} }

// parse reads one file into c, as RawConfigParser(inline_comment_prefixes=(';','#'),
// strict=False) does: full-line comments start with ; or #, inline ones at a ; or #
// preceded by whitespace (quotes do not protect them), indented lines continue the
// previous value, "=" or ":" separate a key (lowercased) from its value. Errors start
// with "file:line: ".
func (c *iniConfig) parse(file string, data []byte) error {
	var (
		cur         *iniSection
		key         string // option being read, for continuation lines
		indent      = -1
		lines       = strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
		values      = map[*iniSection]map[string][]string{}
		parseErrors []string

		// Comment lines not yet placed: they go to the key or header right below them.
		// attached: the block starts right under a line of the section, so when a blank
		// line ends it, it is the section's (commented-out keys), not the next one's.
		pending  []string
		attached bool
		content  bool // the previous line was a header, key or continuation
		top      []string
		first    *iniSection // the file's first section header, and its comments
		firstHdr []string
	)
	keyComment := func(s *iniSection, k string) {
		if len(pending) > 0 {
			if s.keyComments == nil {
				s.keyComments = map[string][]string{}
			}
			s.keyComments[k] = append(s.keyComments[k], pending...)
			pending = nil
		}
	}
	inlineComment := func(s *iniSection, k, line string, cut int) {
		if cut < len(line) {
			if s.inline == nil {
				s.inline = map[string][]string{}
			}
			s.inline[k] = append(s.inline[k], strings.TrimSpace(line[cut+1:]))
		}
	}
	set := func(s *iniSection, k string, v []string) {
		if values[s] == nil {
			values[s] = map[string][]string{}
		}
		values[s][k] = v
	}
	for n, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		cut := commentStart(line)
		value := strings.TrimFunc(line[:cut], unicode.IsSpace)
		if value == "" {
			if cut < len(line) { // a comment line
				if len(pending) == 0 {
					attached = content
				}
				pending = append(pending, commentText(line))
				content = false
				continue
			}
			if cur != nil && key != "" { // empty lines stay in a value; trailing ones are trimmed at the end
				set(cur, key, append(values[cur][key], ""))
			}
			switch {
			case len(pending) == 0:
			case cur == nil:
				top, pending = append(top, pending...), nil
			case attached:
				cur.tail, pending = append(cur.tail, pending...), nil
			}
			content = false
			continue
		}
		content = true
		lineIndent := strings.IndexFunc(line, func(r rune) bool { return !unicode.IsSpace(r) })
		if cur != nil && key != "" && lineIndent > indent {
			set(cur, key, append(values[cur][key], value))
			keyComment(cur, key)
			inlineComment(cur, key, line, cut)
			continue
		}
		indent = lineIndent
		if strings.HasPrefix(value, "[") && strings.LastIndex(value, "]") > 1 {
			name := value[1:strings.LastIndex(value, "]")]
			if name == "DEFAULT" {
				return fmt.Errorf("%s:%d: [DEFAULT] sections are not supported", file, n+1)
			}
			s, ok := c.byName[name]
			if !ok {
				s = &iniSection{name: name, file: file, values: map[string]string{}, files: map[string]string{}}
				c.byName[name] = s
				c.sections = append(c.sections, s)
			}
			cur, key = s, ""
			if first == nil {
				first, firstHdr = s, pending
			}
			s.header, pending = append(s.header, pending...), nil
			if cut < len(line) {
				s.header = append(s.header, strings.TrimSpace(line[cut+1:]))
			}
			continue
		}
		if strings.HasPrefix(value, "[") && !strings.Contains(value, "]") {
			return fmt.Errorf("%s:%d: %q: a section header without its closing ]", file, n+1, line)
		}
		if cur == nil {
			return fmt.Errorf("%s:%d: %q comes before any [section] header", file, n+1, line)
		}
		i := strings.IndexAny(value, "=:")
		opt := ""
		if i >= 0 {
			opt = strings.ToLower(strings.TrimRightFunc(value[:i], unicode.IsSpace))
		}
		if opt == "" {
			parseErrors = append(parseErrors, fmt.Sprintf("%s:%d: %q is not a key = value line", file, n+1, line))
			key = ""
			continue
		}
		key = opt
		keyComment(cur, key)
		inlineComment(cur, key, line, cut)
		if _, seen := cur.values[key]; !seen {
			if _, pending := values[cur][key]; !pending {
				cur.keys = append(cur.keys, key)
			}
		}
		set(cur, key, []string{strings.TrimFunc(value[i+1:], unicode.IsSpace)})
	}
	if len(parseErrors) > 0 {
		return fmt.Errorf("%s", strings.Join(parseErrors, "\n"))
	}
	if cur == nil {
		top = append(top, pending...)
	} else {
		cur.tail = append(cur.tail, pending...)
	}
	if first != nil && len(top)+len(firstHdr) > 0 {
		c.top = append(c.top, fileComments{file, top, first.name, firstHdr})
	} else if len(top) > 0 {
		c.top = append(c.top, fileComments{file: file, lines: top})
	}
	for s, kv := range values {
		for k, v := range kv {
			s.values[k] = strings.TrimRightFunc(strings.Join(v, "\n"), unicode.IsSpace)
			s.files[k] = file
		}
	}
	return nil
}

// expandHere replaces %(here)s with here in the values file set, as supervisord's
// expand_here does in a config that has an [include] section (only then: elsewhere
// %(here)s is an expansion like the others, so %%(here)s stays a literal %(here)s).
func (c *iniConfig) expandHere(file, here string) {
	for _, s := range c.sections {
		for k, v := range s.values {
			if s.files[k] == file {
				s.values[k] = strings.ReplaceAll(v, "%(here)s", here)
			}
		}
	}
}

// commentStart returns where the comment of line starts, or len(line): a line whose
// first non-blank is ; or #, else the first ; or # at the start or after whitespace.
func commentStart(line string) int {
	trimmed := strings.TrimLeftFunc(line, unicode.IsSpace)
	if strings.HasPrefix(trimmed, ";") || strings.HasPrefix(trimmed, "#") {
		return 0
	}
	prev := ' '
	for i, r := range line {
		if (r == ';' || r == '#') && unicode.IsSpace(prev) {
			return i
		}
		prev = r
	}
	return len(line)
}

// commentText is the text of a comment line: after its ; or # and one blank.
func commentText(line string) string {
	t := strings.TrimLeftFunc(line, unicode.IsSpace)[1:]
	t = strings.TrimPrefix(t, " ")
	return strings.TrimRightFunc(t, unicode.IsSpace)
}

// confRead implements supervisord_conf.read(path, comments = False).
func confRead(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var comments bool
	for i, kv := range kwargs { // sandboxedPath takes the path alone
		if k, _ := starlark.AsString(kv[0]); k == "comments" {
			b, ok := kv[1].(starlark.Bool)
			if !ok {
				return nil, fmt.Errorf("%s: comments: got %s, want bool", fn.Name(), kv[1].Type())
			}
			comments = bool(b)
			kwargs = append(kwargs[:i:i], kwargs[i+1:]...)
			break
		}
	}
	s, abs, key, err := sandboxedPath(th, fn, args, kwargs)
	if err != nil {
		return nil, err
	}
	c := newINIConfig()
	data, err := readCapped(s, fn.Name(), abs, key)
	if err != nil {
		return nil, err
	}
	if err := c.parse(abs, data); err != nil {
		return nil, fmt.Errorf("%s: %w", fn.Name(), err)
	}
	if inc, ok := c.byName["include"]; ok {
		c.expandHere(abs, filepath.Dir(abs))
		if err := c.include(s, fn.Name(), abs, inc); err != nil {
			return nil, err
		}
	}
	if comments {
		return c.commentedValue(), nil
	}
	return c.value(), nil
}

// include reads the files an [include] section names, in supervisord's order.
func (c *iniConfig) include(s *evalState, fn, file string, inc *iniSection) error {
	files, ok := inc.values["files"]
	if !ok {
		return fmt.Errorf("%s: %s: [include] has no files setting", fn, file)
	}
	vars := map[string]any{"here": filepath.Dir(file)}
	files, err := pyFormat(files, vars, func(name string) (any, bool) { return lookupExpansion(s, name) })
	if err != nil {
		return fmt.Errorf("%s: %s: [include] files: %w", fn, file, err)
	}
	for _, pattern := range strings.Fields(files) {
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(filepath.Dir(file), pattern)
		}
		if _, err := s.sandbox(staticPrefix(pattern)); err != nil {
			return fmt.Errorf("%s: %s: [include] files: %w", fn, file, err)
		}
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return fmt.Errorf("%s: %s: [include] files: %q: %w", fn, file, pattern, err)
		}
		sort.Strings(matches)
		for _, m := range matches {
			key, err := s.sandbox(m)
			if err != nil {
				return fmt.Errorf("%s: %s: [include] files: %w", fn, file, err)
			}
			if fi, err := os.Stat(m); err == nil && fi.IsDir() {
				continue
			}
			data, err := readCapped(s, fn, m, key)
			if err != nil {
				return err
			}
			before := inc.values["files"]
			if err := c.parse(m, data); err != nil {
				return fmt.Errorf("%s: %w", fn, err)
			}
			c.expandHere(m, filepath.Dir(m))
			if inc.files["files"] == m {
				inc.values["files"] = before
				return fmt.Errorf("%s: %s: [include]: an included file cannot include further files (supervisord ignores it)", fn, m)
			}
		}
	}
	return nil
}

// value converts c to the list supervisord_conf.read returns.
func (c *iniConfig) value() starlark.Value {
	out := make([]starlark.Value, 0, len(c.sections))
	for _, s := range c.sections {
		opts := starlark.NewDict(len(s.keys))
		files := starlark.NewDict(len(s.keys))
		for _, k := range s.keys {
			_ = opts.SetKey(starlark.String(k), starlark.String(s.values[k]))
			_ = files.SetKey(starlark.String(k), starlark.String(s.files[k]))
		}
		d := starlark.NewDict(4)
		_ = d.SetKey(starlark.String("section"), starlark.String(s.name))
		_ = d.SetKey(starlark.String("file"), starlark.String(s.file))
		_ = d.SetKey(starlark.String("options"), opts)
		_ = d.SetKey(starlark.String("files"), files)
		out = append(out, d)
	}
	return starlark.NewList(out)
}

// commentedValue is value with each section's comments, and the files' own.
func (c *iniConfig) commentedValue() starlark.Value {
	strs := func(lines []string) *starlark.List {
		out := make([]starlark.Value, len(lines))
		for i, l := range lines {
			out[i] = starlark.String(l)
		}
		return starlark.NewList(out)
	}
	byKey := func(keys []string, m map[string][]string) *starlark.Dict {
		d := starlark.NewDict(len(m))
		for _, k := range keys {
			if len(m[k]) > 0 {
				_ = d.SetKey(starlark.String(k), strs(m[k]))
			}
		}
		return d
	}
	secs := c.value().(*starlark.List)
	for i, s := range c.sections {
		d := starlark.NewDict(4)
		_ = d.SetKey(starlark.String("header"), strs(s.header))
		_ = d.SetKey(starlark.String("keys"), byKey(s.keys, s.keyComments))
		_ = d.SetKey(starlark.String("inline"), byKey(s.keys, s.inline))
		_ = d.SetKey(starlark.String("tail"), strs(s.tail))
		_ = secs.Index(i).(*starlark.Dict).SetKey(starlark.String("comments"), d)
	}
	files := make([]starlark.Value, len(c.top))
	for i, f := range c.top {
		files[i] = starlark.Tuple{starlark.String(f.file), strs(f.lines), starlark.String(f.first), strs(f.header)}
	}
	out := starlark.NewDict(2)
	_ = out.SetKey(starlark.String("sections"), secs)
	_ = out.SetKey(starlark.String("files"), starlark.NewList(files))
	return out
}

// lookupExpansion resolves the names supervisord always offers: host_node_name and
// ENV_X, each read recorded in the plan's inputs.
func lookupExpansion(s *evalState, name string) (any, bool) {
	if name == "host_node_name" {
		h, err := os.Hostname()
		if err != nil {
			return nil, false
		}
		s.env["host.name"] = h
		return h, true
	}
	if v, ok := strings.CutPrefix(name, "ENV_"); ok && v != "" {
		val, found := s.readEnv(v)
		return val, found
	}
	return nil, false
}

// expandVars unpacks expand's and template's arguments.
func expandVars(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, what *string) (*evalState, string, map[string]any, error) {
	s, err := stateFrom(th)
	if err != nil {
		return nil, "", nil, err
	}
	var str string
	var d *starlark.Dict
	if err := unpack(fn.Name(), args, kwargs, "s", &str, "vars", &d, "what?", what); err != nil {
		return nil, "", nil, err
	}
	vars := map[string]any{}
	for _, kv := range d.Items() {
		k, ok := starlark.AsString(kv[0])
		if !ok {
			return nil, "", nil, fmt.Errorf("%s: vars: got key %s, want string", fn.Name(), kv[0].Type())
		}
		switch v := kv[1].(type) {
		case starlark.String:
			vars[k] = string(v)
		case starlark.Int:
			i, ok := v.Int64()
			if !ok {
				return nil, "", nil, fmt.Errorf("%s: vars: %s: too large", fn.Name(), k)
			}
			vars[k] = int(i)
		default:
			return nil, "", nil, fmt.Errorf("%s: vars: %s: got %s, want string or int", fn.Name(), k, kv[1].Type())
		}
	}
	return s, str, vars, nil
}

func confExpand(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var what string
	s, str, vars, err := expandVars(th, fn, args, kwargs, &what)
	if err != nil {
		return nil, err
	}
	out, err := pyFormat(str, vars, func(name string) (any, bool) { return lookupExpansion(s, name) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return starlark.String(out), nil
}

// confTemplate expands s like expand, except that process_num becomes the placeholder
// {num} ({num:0N} for a zero-padded width): a template for program(process_name) and
// log(). It returns None when s cannot be written as one (other formats of process_num,
// braces in the text, or an expansion error, which expand then reports).
func confTemplate(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var what string
	s, str, vars, err := expandVars(th, fn, args, kwargs, &what)
	if err != nil {
		return nil, err
	}
	delete(vars, "process_num")
	vars["process_num"] = numPlaceholder{}
	out, err := pyFormat(str, vars, func(name string) (any, bool) { return lookupExpansion(s, name) })
	if err != nil || strings.Count(out, "{") != strings.Count(out, "{num") {
		return starlark.None, nil
	}
	return starlark.String(out), nil
}

// numPlaceholder stands for process_num in confTemplate.
type numPlaceholder struct{}

// pyFormat is Python's "s % mapping" for the conversions supervisord configs use:
// %(name)s, %(name)d / i with flags and width (%(process_num)02d), %(name)r, %(name)x,
// and %% for a literal %. Names not in vars are asked of more.
func pyFormat(s string, vars map[string]any, more func(string) (any, bool)) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		if i+1 >= len(s) || s[i+1] != '(' {
			return "", fmt.Errorf("format string %q is badly formatted: a literal %% must be written %%%%", s)
		}
		end := strings.IndexByte(s[i+2:], ')')
		if end < 0 {
			return "", fmt.Errorf("format string %q is badly formatted: incomplete format key", s)
		}
		name := s[i+2 : i+2+end]
		j := i + 2 + end + 1
		spec := j
		for j < len(s) && strings.IndexByte("#0- +", s[j]) >= 0 {
			j++
		}
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j < len(s) && s[j] == '.' {
			j++
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
		}
		if j >= len(s) {
			return "", fmt.Errorf("format string %q is badly formatted: incomplete format", s)
		}
		flags, conv := s[spec:j], s[j]
		v, ok := vars[name]
		if !ok {
			v, ok = more(name)
		}
		if !ok {
			names := make([]string, 0, len(vars))
			for k := range vars {
				names = append(names, k)
			}
			sort.Strings(names)
			return "", fmt.Errorf("format string %q contains names (%q) which cannot be expanded; available names: %s (and ENV_ variables, host_node_name)", s, name, strings.Join(names, ", "))
		}
		out, err := formatOne(v, flags, conv)
		if err != nil {
			return "", fmt.Errorf("format string %q is badly formatted: %%(%s)%s%c: %w", s, name, flags, conv, err)
		}
		b.WriteString(out)
		i = j
	}
	return b.String(), nil
}

// formatOne formats one value with Python's printf flags and conversion.
func formatOne(v any, flags string, conv byte) (string, error) {
	if _, ok := v.(numPlaceholder); ok {
		switch {
		case (conv == 'd' || conv == 'i' || conv == 's') && flags == "":
			return "{num}", nil
		case (conv == 'd' || conv == 'i') && len(flags) >= 2 && flags[0] == '0' && !strings.ContainsAny(flags[1:], "#0- +."):
			return "{num:" + flags + "}", nil
		}
		return "", fmt.Errorf("no template form")
	}
	switch conv {
	case 's', 'r':
		str := fmt.Sprint(v)
		if conv == 'r' {
			if sv, ok := v.(string); ok {
				str = "'" + strings.ReplaceAll(sv, "'", `\'`) + "'"
			}
		}
		return fmt.Sprintf("%"+flags+"s", str), nil
	case 'd', 'i', 'x', 'X', 'o':
		n, ok := v.(int)
		if !ok { // Python refuses a str for %d, even "5"
			return "", fmt.Errorf("%%%c format: a number is required, not str", conv)
		}
		c := conv
		if c == 'i' {
			c = 'd'
		}
		return fmt.Sprintf("%"+flags+string(c), n), nil
	}
	return "", fmt.Errorf("unsupported format character %q", conv)
}

func confSplitCommand(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var s, what string
	if err := unpack(fn.Name(), args, kwargs, "s", &s, "what?", &what); err != nil {
		return nil, err
	}
	words, err := shlexSplit(s)
	if err != nil {
		return nil, fmt.Errorf("%s: can't parse command %q: %w", what, s, err)
	}
	out := make([]starlark.Value, len(words))
	for i, w := range words {
		out[i] = starlark.String(w)
	}
	return starlark.NewList(out), nil
}

// shlexSplit is Python's shlex.split(s): POSIX mode, words split at whitespace,
// '...' literal, "..." where a backslash escapes only " and \, and outside quotes a
// backslash escapes any character. Unlike splitCommand, "\$" keeps its backslash, as
// supervisord's spawn does.
func shlexSplit(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == ' ' || r == '\t' || r == '\r' || r == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case r == '\\':
			inWord = true
			if i+1 == len(rs) {
				return nil, fmt.Errorf("No escaped character")
			}
			i++
			w.WriteRune(rs[i])
		case r == '\'':
			inWord = true
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				w.WriteRune(rs[j])
				j++
			}
			if j == len(rs) {
				return nil, fmt.Errorf("No closing quotation")
			}
			i = j
		case r == '"':
			inWord = true
			j := i + 1
			for ; j < len(rs) && rs[j] != '"'; j++ {
				if rs[j] == '\\' && j+1 < len(rs) && (rs[j+1] == '"' || rs[j+1] == '\\') {
					j++
				}
				w.WriteRune(rs[j])
			}
			if j == len(rs) {
				return nil, fmt.Errorf("No closing quotation")
			}
			i = j
		default:
			inWord = true
			w.WriteRune(r)
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

func confParseEnvironment(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var s, what string
	if err := unpack(fn.Name(), args, kwargs, "s", &s, "what?", &what); err != nil {
		return nil, err
	}
	pairs, theirs, err := parseKeyValuePairs(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	st, _ := stateFrom(th)
	for i, kv := range pairs {
		if theirs[i] != kv[1] && th.Print != nil && (st == nil || st.once(what+"\x00"+kv[0])) {
			// Said, not copied: the value as written is what its author meant, but the
			// program saw supervisord's (JAVA_OPTS='-Dx="y"' lost its last quote).
			th.Print(th, fmt.Sprintf("supervisord: %s: %s: supervisord reads %q (it strips every quote at either end); starvisor keeps %q, as written",
				what, kv[0], theirs[i], kv[1]))
		}
	}
	out := make([]starlark.Value, len(pairs))
	for i, kv := range pairs {
		out[i] = starlark.Tuple{starlark.String(kv[0]), starlark.String(kv[1])}
	}
	return starlark.NewList(out), nil
}

// unquotePair takes one pair of quotes off v when it starts and ends with the same one:
// JAVA_OPTS='-Dx="y"' keeps its inner quotes, and a value of one quote stays one.
func unquotePair(v string) string {
	if len(v) >= 2 && v[0] == v[len(v)-1] && (v[0] == '"' || v[0] == '\'') {
		return v[1 : len(v)-1]
	}
	return v
}

// parseKeyValuePairs is supervisord's dict_of_key_value_pairs: a non-POSIX
// shlex.shlex with wordchars extended by "/.+-():", read three tokens (KEY = VALUE) at
// a time, skipping the fourth (the comma), one pair of matching quotes taken off the
// value. A later key replaces an earlier one in place. theirs are the values as
// supervisord itself reads them: it strips every quote at either end (strip('\'"')).
func parseKeyValuePairs(s string) (pairs [][2]string, theirs []string, err error) {
	toks, err := shlexTokens(s)
	if err != nil {
		return nil, nil, err
	}
	index := map[string]int{}
	for i := 0; i < len(toks); i += 4 {
		if i+3 > len(toks) || toks[i+1] != "=" {
			return nil, nil, fmt.Errorf("unexpected end of key/value pairs in value %q", s)
		}
		k, v, th := toks[i], unquotePair(toks[i+2]), strings.Trim(toks[i+2], `'"`)
		if j, ok := index[k]; ok {
			pairs[j][1], theirs[j] = v, th
			continue
		}
		index[k] = len(pairs)
		pairs = append(pairs, [2]string{k, v})
		theirs = append(theirs, th)
	}
	return pairs, theirs, nil
}

// shlexTokens lists the tokens of Python's shlex.shlex(s) (non-POSIX) with wordchars
// extended by "/.+-():", as supervisord uses it for environment=.
func shlexTokens(s string) ([]string, error) {
	isWord := func(r rune) bool {
		return r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_/.+-():", r))
	}
	isSpace := func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }
	rs := []rune(s)
	var toks []string
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case isSpace(r):
			i++
		case r == '#': // a comment runs to the end of the line
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
		case r == '\'' || r == '"':
			j := i + 1
			for j < len(rs) && rs[j] != r {
				j++
			}
			if j == len(rs) {
				return nil, fmt.Errorf("no closing quotation in %q", s)
			}
			toks = append(toks, string(rs[i:j+1]))
			i = j + 1
		case isWord(r):
			j := i + 1
			for j < len(rs) && (isWord(rs[j]) || rs[j] == '\'' || rs[j] == '"') {
				j++
			}
			tok := string(rs[i:j])
			i = j
			if i < len(rs) && rs[i] == '#' { // a comment inside a word ends the line but not the word
				for i < len(rs) && rs[i] != '\n' {
					i++
				}
				i++ // readline() consumes the newline too
				for i < len(rs) && (isWord(rs[i]) || rs[i] == '\'' || rs[i] == '"') {
					tok += string(rs[i])
					i++
				}
			}
			toks = append(toks, tok)
		default:
			toks = append(toks, string(r))
			i++
		}
	}
	return toks, nil
}

// Interface guards.
var _ Module = supervisordConfModule{}
