package plan

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// Change is one process whose hash-relevant fields differ between two plans.
type Change struct {
	Name   string   `json:"name"`   // process name
	Fields []string `json:"fields"` // JSON names of the fields that differ, in JSON order
	// Env: when env differs, the variables set, changed or taken out, sorted (their
	// values are not said: secrets).
	Env []string `json:"env,omitempty"`
}

// Delta is what apply would do to go from one plan to another. Each list holds
// process names: Added, Changed and Unchanged in the new plan's start order,
// Removed in the old plan's. Updated are the Unchanged ones that take new values of
// fields that need no restart (priority, numprocs, depends_on, ...). The lists are
// never nil, so JSON shows [].
type Delta struct {
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Unchanged []string `json:"unchanged"`
	Changed   []Change `json:"changed"`
	Updated   []Change `json:"updated"`
	// NotStarted: of Changed, those an engine's apply left stopped, as they were: not up
	// and autostart = False, being stopped by someone's stop, or stopped since the apply
	// was asked for. Set by the apply, not by Diff.
	NotStarted []string `json:"not_started,omitempty"`
	// WasDown: of Changed, those the apply started that were not running (exited,
	// fatal, or stopped with autostart): started, where the others were restarted. Set
	// by the apply, not by Diff.
	WasDown []string `json:"was_down,omitempty"`
}

// Empty reports whether the new plan is the old one for every process: applying it
// would touch nothing.
func (d Delta) Empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Changed) == 0 && len(d.Updated) == 0
}

// Diff compares two plans process by process. A process is Changed when a field
// that HashProgram covers differs; one whose only differences are fields it leaves
// out is Unchanged, as apply leaves it running (and Updated, unless only pos differs).
// old may be nil (nothing runs yet: everything is Added); so may next.
// The fields are compared directly rather than through Hash, so a plan whose
// hashes were not computed still diffs correctly.
func Diff(old, next *Plan) Delta {
	d := Delta{Added: []string{}, Removed: []string{}, Unchanged: []string{}, Changed: []Change{}, Updated: []Change{}}
	var oldProgs, newProgs []Program
	if old != nil {
		oldProgs = old.Programs
	}
	if next != nil {
		newProgs = next.Programs
	}
	var oldGroups, newGroups []Group
	if old != nil {
		oldGroups = old.Groups
	}
	if next != nil {
		newGroups = next.Groups
	}
	oldRank, newRank := Ranker(oldGroups), Ranker(newGroups)
	before := make(map[string]*Program, len(oldProgs))
	for i := range oldProgs {
		before[oldProgs[i].ProcessName] = &oldProgs[i]
	}
	after := make(map[string]bool, len(newProgs))
	for i := range newProgs {
		pr := &newProgs[i]
		after[pr.ProcessName] = true
		was, ok := before[pr.ProcessName]
		fields, retuned := changedFields(was, pr), []string(nil)
		if ok { // a log's rotation settings alone are the daemon's business: no restart
			fields = slices.DeleteFunc(fields, func(f string) bool {
				if f == "stdout" && samePath(was.Stdout, pr.Stdout) || f == "stderr" && samePath(was.Stderr, pr.Stderr) {
					retuned = append(retuned, f)
					return true
				}
				return false
			})
		}
		switch {
		case !ok:
			d.Added = append(d.Added, pr.ProcessName)
		case len(fields) > 0:
			c := Change{Name: pr.ProcessName, Fields: fields}
			if slices.Contains(fields, "env") {
				c.Env = envChanges(was.Env, pr.Env)
			}
			d.Changed = append(d.Changed, c)
		default:
			d.Unchanged = append(d.Unchanged, pr.ProcessName)
			fields := append(retuned, updatedFields(was, pr)...)
			if oldRank(was) != newRank(pr) && !slices.Contains(fields, "priority") && !slices.Contains(fields, "group") {
				fields = append(fields, "group priority") // its group's, in group()
			}
			if len(fields) > 0 {
				d.Updated = append(d.Updated, Change{Name: pr.ProcessName, Fields: fields})
			}
		}
	}
	for i := range oldProgs {
		if !after[oldProgs[i].ProcessName] {
			d.Removed = append(d.Removed, oldProgs[i].ProcessName)
		}
	}
	return d
}

// envChanges lists the variables a and b give differently, sorted.
func envChanges(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// samePath reports two logs of one file (their rotation settings may differ).
func samePath(a, b *Log) bool { return a != nil && b != nil && a.Path == b.Path }

// programField is one Program field HashProgram covers.
type programField struct {
	index int
	name  string // JSON name
}

// hashedFields lists Program's hash-relevant fields in declaration (JSON) order.
var hashedFields = sync.OnceValue(func() []programField {
	return programFields(func(name string) bool { return !hashExcluded[name] })
})

// inPlaceFields lists the Program fields HashProgram leaves out that still matter to
// the engine, in declaration (JSON) order.
var inPlaceFields = sync.OnceValue(func() []programField {
	return programFields(func(name string) bool { return hashExcluded[name] && name != "hash" && name != "pos" })
})

// programFields lists the Program fields whose JSON name keep accepts.
func programFields(keep func(name string) bool) []programField {
	t := reflect.TypeFor[Program]()
	var fs []programField
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if keep(name) {
			fs = append(fs, programField{i, name})
		}
	}
	return fs
}

// changedFields returns the JSON names of the hash-relevant fields that differ;
// nil when a is nil. An empty slice or map equals a nil one.
func changedFields(a, b *Program) []string {
	if a == nil {
		return nil
	}
	return differing(a, b, hashedFields())
}

// updatedFields returns the JSON names of the fields a running process takes
// without a restart that differ.
func updatedFields(a, b *Program) []string { return differing(a, b, inPlaceFields()) }

// differing returns the JSON names of the fields among fs whose values differ.
func differing(a, b *Program, fs []programField) []string {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	var out []string
	for _, f := range fs {
		if !sameValue(va.Field(f.index), vb.Field(f.index)) {
			out = append(out, f.name)
		}
	}
	return out
}

// sameValue compares two values of one type like reflect.DeepEqual, except
// that an empty slice or map equals a nil one. It walks the common kinds itself:
// DeepEqual boxes every value it visits, which made Diff allocate heavily.
func sameValue(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.String:
		return a.String() == b.String()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		if am, ok := a.Interface().(map[string]string); ok {
			return maps.Equal(am, b.Interface().(map[string]string))
		}
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// JobsFirst returns the jobs (ready = probe.exited()) that d adds to next or changes, and
// that a program d restarts depends on, with the jobs of d those depend on in turn, by
// program name, each with one such dependent: a migration for the new version, which an
// apply runs before restarting that program.
func (d Delta) JobsFirst(next *Plan) map[string]string {
	jobs := map[string]*Program{}
	for _, n := range d.Added {
		if pr, ok := next.Lookup(n); ok && pr.IsJob() {
			jobs[pr.Name] = &pr
		}
	}
	for _, c := range d.Changed {
		if pr, ok := next.Lookup(c.Name); ok && pr.IsJob() {
			jobs[pr.Name] = &pr
		}
	}
	out := map[string]string{}
	// A job needed brings the jobs it depends on that change too: a migration after
	// its schema job.
	var need func(job, by string)
	need = func(job, by string) {
		pr, ok := jobs[job]
		if !ok || out[job] != "" {
			return
		}
		out[job] = by
		for _, dep := range pr.DependsOn {
			need(dep, job)
		}
	}
	for _, c := range d.Changed {
		if pr, ok := next.Lookup(c.Name); ok && !pr.IsJob() {
			for _, dep := range pr.DependsOn {
				need(dep, pr.Name)
			}
		}
	}
	return out
}
