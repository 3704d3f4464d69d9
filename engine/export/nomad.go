package export

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/nomad/api"

	"github.com/starvisor/starvisor/engine/plan"
)

// NomadJob is the body of Nomad's job register endpoint (PUT /v1/jobs) and of
// `nomad job run -json`.
type NomadJob struct {
	Job *api.Job
}

// Nomad renders p as one service job (ID the deploy name) of raw_exec tasks: a plan
// group whose programs all run one process becomes one task group (so depends_on inside
// it can be a prestart sidecar); every other program is a task group of its own with
// count = numprocs.
func Nomad(p *plan.Plan, o Options) (Result, error) {
	e := &emitter{format: "nomad", root: p.Root}
	if p.Supervisor.MinFDs > 0 {
		e.problems = append(e.problems, Problem{Format: "nomad", Why: fmt.Sprintf("supervisor(minfds = %d) is not mapped: raw_exec tasks take the Nomad client's open-files limit", p.Supervisor.MinFDs)})
	}
	name := deployName(p, o)
	id := nomadID(name)
	if id != name {
		e.problems = append(e.problems, Problem{Format: "nomad", Field: "ID", Why: fmt.Sprintf("%q: Nomad refuses a job ID with blanks; the job's Name keeps %q", id, name)})
	}
	job := api.NewServiceJob(id, name, "", 50)
	job.Region = nil
	progs := programs(p)
	byName := map[string]program{}
	for _, g := range progs {
		byName[g.Name] = g
	}
	placed := map[string]bool{}
	for _, grp := range p.Groups {
		single := true
		for _, m := range grp.Programs {
			single = single && len(byName[m].Instances) == 1
		}
		if !single {
			e.problems = append(e.problems, Problem{Format: "nomad", Group: grp.Name, Why: "a member runs several processes; its programs are separate task groups"})
			continue
		}
		var members []program
		for _, m := range grp.Programs {
			members = append(members, byName[m])
			placed[m] = true
		}
		job.AddTaskGroup(e.taskGroup(grp.Name, 1, members))
	}
	for _, g := range progs {
		if !placed[g.Name] {
			job.AddTaskGroup(e.taskGroup(g.Name, len(g.Instances), []program{g}))
		}
	}
	data, err := json.MarshalIndent(NomadJob{Job: job}, "", "  ")
	if err != nil {
		return Result{}, fmt.Errorf("export nomad: %w", err)
	}
	return Result{Files: []File{{Name: id + ".nomad.json", Data: append(data, '\n')}}, Problems: e.problems}, nil
}

// nomadID is name with its blanks (and NULs) as '-': Nomad's Job.Validate refuses an ID
// that holds a space; its Name may.
func nomadID(name string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == 0 {
			return '-'
		}
		return r
	}, name)
}

func (e *emitter) taskGroup(name string, count int, members []program) *api.TaskGroup {
	tg := api.NewTaskGroup(name, count)
	in := map[string]bool{}
	for _, m := range members {
		in[m.Name] = true
	}
	// A dependency in the same group that depends on nothing itself starts first as a
	// prestart sidecar; Nomad has no other start order.
	prestart := map[string]bool{}
	for _, m := range members {
		for _, d := range m.first().DependsOn {
			if in[d] && len(slicesOf(members, d).first().DependsOn) == 0 {
				prestart[d] = true
				continue
			}
			e.report(m.Name, "depends_on", "%q: Nomad orders tasks only by prestart hooks within one task group", d)
		}
	}
	first := members[0].first()
	tg.RestartPolicy = restartPolicy(first)
	for _, m := range members {
		t := e.task(m)
		if prestart[m.Name] {
			// A job (probe.exited) runs to its end before the others start; anything else
			// runs beside them. A job as a sidecar was restarted until the allocation failed.
			first := m.first()
			t.Lifecycle = &api.TaskLifecycle{Hook: api.TaskLifecycleHookPrestart, Sidecar: !first.IsJob()}
		}
		if !reflect.DeepEqual(restartPolicy(m.first()), tg.RestartPolicy) {
			t.RestartPolicy = restartPolicy(m.first())
		}
		tg.AddTask(t)
	}
	return tg
}

func slicesOf(ms []program, name string) program {
	for _, m := range ms {
		if m.Name == name {
			return m
		}
	}
	return program{Instances: []plan.Program{{}}}
}

// restartPolicy: start_retries attempts, 1s apart, within the time they take; forever
// is mode "delay" (wait out the interval, then try again).
func restartPolicy(pr plan.Program) *api.RestartPolicy {
	attempts, mode := pr.StartRetries, "fail"
	if attempts == -1 {
		attempts, mode = 3, "delay"
	}
	delay := time.Second
	interval := time.Duration(attempts+1) * (time.Duration(pr.StartSecs)*time.Second + delay)
	interval = max(interval, 5*time.Second) // Nomad's minimum
	return &api.RestartPolicy{Attempts: &attempts, Delay: &delay, Interval: &interval, Mode: &mode}
}

func (e *emitter) task(g program) *api.Task {
	pr := g.first()
	t := api.NewTask(pr.Name, "raw_exec")
	// A pool's values that follow the process number take the allocation's index
	// (numbered from 0, as a pool with numprocs_start = 0 is); others are the first's.
	nomadNum := func(width int) string {
		if width == 0 && pr.NumprocsStart == 0 {
			return "${NOMAD_ALLOC_INDEX}"
		}
		return ""
	}
	numbered := func(field string, f func(plan.Program) string) string {
		vals, nums := column(g, f)
		if t, ok := numTemplate(vals, nums, func(s string) string { return s }, nomadNum); ok {
			return t
		}
		e.report(pr.Name, field, "the instances' values (%q, ...) cannot be written with ${NOMAD_ALLOC_INDEX}; every allocation gets the first one's", vals[0])
		return vals[0]
	}
	argv := slices.Clone(pr.Command)
	for i := range argv {
		argv[i] = numbered("command", func(p plan.Program) string { return p.Command[i] })
	}
	if dir := e.directory(pr); dir != "" {
		// raw_exec has no working directory: cd in a shell that then execs the program
		// with its argv untouched ("$0" "$@").
		argv = append([]string{"/bin/sh", "-c", "cd " + shQuote(dir) + ` && exec "$0" "$@"`}, argv...)
		e.report(pr.Name, "directory", "raw_exec has no working directory; run through /bin/sh -c 'cd DIR && exec ...'")
	}
	cfg := map[string]any{"command": argv[0]}
	if len(argv) > 1 {
		cfg["args"] = argv[1:]
	}
	t.Config = cfg
	env := map[string]string{}
	for _, k := range envKeys(pr) {
		env[k] = numbered("env", func(p plan.Program) string { return p.Env[k] })
	}
	// The names the engine gives every process at its spawn.
	env[processNameEnv] = numbered("process_name", func(p plan.Program) string { return p.ProcessName })
	env[groupNameEnv] = cmp.Or(pr.Group, pr.Name)
	if _, ok := pr.Env[processNumEnv]; ok {
		env[processNumEnv] = "${NOMAD_ALLOC_INDEX}"
		if pr.NumprocsStart != 0 {
			e.report(pr.Name, "numprocs_start", "%d: Nomad numbers allocations from 0 (%s is the allocation index)", pr.NumprocsStart, processNumEnv)
		}
	}
	for k, v := range env {
		if strings.Contains(v, "${") && !strings.Contains(v, "${NOMAD_ALLOC_INDEX}") {
			e.report(pr.Name, "env", "%s: Nomad interpolates ${...} in the value", k)
		}
	}
	if len(env) > 0 {
		t.Env = env
	}
	for _, a := range argv {
		if strings.Contains(a, "${") && !strings.Contains(a, "${NOMAD_ALLOC_INDEX}") {
			e.report(pr.Name, "command", "Nomad interpolates ${...} in %q", a)
		}
	}
	t.User = pr.User
	t.KillSignal = "SIG" + pr.StopSignal
	kt := pr.StopTimeout.D()
	t.KillTimeout = &kt
	if !sameAcrossInstances(g, nomadNum) {
		e.report(pr.Name, "numprocs", "instances differ in more than their number; every allocation runs the first one's task")
	}
	if pr.InheritEnv {
		e.report(pr.Name, "inherit_env", "Nomad gives tasks the client's environment plus NOMAD_*, not the caller's")
	}
	if pr.Umask != "" {
		e.report(pr.Name, "umask", "raw_exec has no umask setting")
	}
	if !pr.Autostart {
		e.report(pr.Name, "autostart", "false: every task of a Nomad job runs when the job runs")
	}
	if pr.Autorestart != plan.RestartAlways {
		e.report(pr.Name, "autorestart", "%q: a Nomad service task is restarted whatever its exit code", pr.Autorestart)
	}
	if pr.StartSecs > 0 {
		e.report(pr.Name, "start_secs", "Nomad counts a start as good at once; %ds only sizes the restart interval", pr.StartSecs)
	}
	if pr.Backoff == plan.BackoffExponential || pr.StartRetries != 0 {
		e.report(pr.Name, "backoff", "Nomad waits a fixed 1s (restart delay) before every retry")
	}
	if !pr.StopAsGroup {
		e.report(pr.Name, "stop_as_group", "false: raw_exec signals the task's whole process tree")
	}
	if pr.Priority != 999 {
		e.report(pr.Name, "priority", "Nomad starts tasks of a group together; no start order")
	}
	if pr.Ready != nil {
		e.report(pr.Name, "ready", "readiness probes have no raw_exec equivalent (a service check needs a registered service)")
	}
	if pr.MemoryMax > 0 {
		e.report(pr.Name, "memory_max", "raw_exec does not limit memory; the task's resources memory is for scheduling")
	}
	var logs *plan.Log
	for _, s := range []struct {
		name string
		l    *plan.Log
	}{{"stdout", pr.Stdout}, {"stderr", pr.Stderr}} {
		if s.l == nil {
			if !(s.name == "stderr" && pr.RedirectStderr) {
				e.report(pr.Name, s.name, "Nomad always keeps task output; it is not discarded")
			}
			continue
		}
		e.report(pr.Name, s.name, "Nomad writes task output under the allocation's logs/ folder, not %s", s.l.Path)
		logs = s.l
	}
	if pr.RedirectStderr {
		e.report(pr.Name, "redirect_stderr", "Nomad keeps stdout and stderr in separate files")
	}
	if logs != nil {
		files := max(logs.Backups+1, 1)
		mb := max(int(math.Ceil(float64(logs.MaxBytes)/(1<<20))), 1)
		t.LogConfig = &api.LogConfig{MaxFiles: &files, MaxFileSizeMB: &mb}
	}
	return t
}

// shQuote quotes s for a POSIX shell.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
