package plan

import (
	"fmt"
	"time"
)

// prog returns a valid single-process program named name, changed by mods.
func prog(name string, mods ...func(*Program)) Program {
	pr := Defaults()
	pr.Name = name
	pr.ProcessName = name
	pr.Command = []string{"/usr/bin/" + name, "--serve"}
	pr.Stdout = DefaultLog("/srv/log/" + name + ".log")
	for _, m := range mods {
		m(&pr)
	}
	return pr
}

// instances expands a numprocs program the way the evaluator does.
func instances(name string, n, start int, mods ...func(*Program)) []Program {
	var out []Program
	for i := range n {
		num := start + i
		pr := prog(name, mods...)
		pr.Numprocs, pr.NumprocsStart, pr.ProcessNum = n, start, num
		pr.ProcessName = fmt.Sprintf("%s_%02d", name, num)
		pr.Stdout = DefaultLog(fmt.Sprintf("/srv/log/%s.log", pr.ProcessName))
		out = append(out, pr)
	}
	return out
}

func planOf(progs ...Program) *Plan {
	return &Plan{
		Format: Format, Entry: "deploy.star", Root: "/srv/etc",
		Supervisor: Supervisor{Socket: "/srv/run/s.sock", Pidfile: "/srv/run/s.pid", LogDir: "/srv/log", StateDir: "/srv/state"},
		Programs:   progs,
	}
}

func priority(n int) func(*Program) { return func(pr *Program) { pr.Priority = n } }

func dependsOn(names ...string) func(*Program) {
	return func(pr *Program) { pr.DependsOn = names }
}

func at(pos string) func(*Program) { return func(pr *Program) { pr.Pos = pos } }

func processNames(progs []Program) []string {
	out := make([]string, len(progs))
	for i := range progs {
		out[i] = progs[i].ProcessName
	}
	return out
}

// bigPlan is a realistic plan of n processes: varied priorities, a dependency
// on a shared database for most, a few numprocs programs, env and probes.
func bigPlan(n int) *Plan {
	p := planOf(prog("db", priority(1), func(pr *Program) {
		pr.Ready = &Probe{Kind: ProbeTCP, Host: "127.0.0.1", Port: 5432, Interval: Duration(time.Second), Timeout: Duration(30 * time.Second)}
	}))
	for len(p.Programs) < n {
		i := len(p.Programs)
		name := fmt.Sprintf("svc%04d", i)
		mods := []func(*Program){priority(10 + i%7), func(pr *Program) {
			pr.Command = []string{"/opt/miniconda/envs/py/bin/python", "-m", "service." + name + ".run_rest", "--port", fmt.Sprint(8000 + i)}
			pr.Directory = "/srv"
			pr.Env = map[string]string{"PYTHONPATH": "/srv/your_project_v2:/srv/lib", "PYTHON_APP_CONF": "/srv/etc/common", "SERVICE": name, "LANG": "C.UTF-8"}
			pr.Autorestart = RestartAlways
			pr.StartRetries = 99999
			pr.StopAsGroup, pr.KillAsGroup, pr.RedirectStderr = true, true, true
			pr.Pos = fmt.Sprintf("deploy.star:%d:5", 10+i)
		}}
		if i%3 != 0 {
			mods = append(mods, dependsOn("db"))
		}
		if i%50 == 0 && len(p.Programs)+4 <= n {
			p.Programs = append(p.Programs, instances(name, 4, 1, mods...)...)
			continue
		}
		p.Programs = append(p.Programs, prog(name, mods...))
	}
	return p
}
