package app

import (
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/engine/plan"
)

// pool is a plan of one numprocs pool per spec ("name:n:command"), the members' command
// its last field; ready "exited" makes it a job pool.
func pool(t *testing.T, ready string, specs ...string) *plan.Plan {
	t.Helper()
	p := &plan.Plan{Format: plan.Format, Entry: "deploy.star", Root: "/srv", Supervisor: plan.Supervisor{
		Socket: "/srv/s.sock", LogDir: "/srv/log", StateDir: "/srv/run"}}
	for _, spec := range specs {
		f := strings.Split(spec, ":")
		var n int
		fmt.Sscan(f[1], &n)
		for i := range n {
			pr := plan.Defaults()
			pr.Name, pr.ProcessName, pr.Command = f[0], fmt.Sprintf("%s_%d", f[0], i), []string{f[2]}
			pr.Numprocs, pr.ProcessNum = n, i
			if ready == "exited" {
				pr.Ready = &plan.Probe{Kind: plan.ProbeExited}
			}
			pr.Stdout = plan.DefaultLog(fmt.Sprintf("/srv/log/%s.log", pr.ProcessName))
			p.Programs = append(p.Programs, pr)
		}
	}
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRolloutSteps(t *testing.T) {
	is := is.New(t)
	running := pool(t, "", "web:2:/v1", "one:1:/v1", "api:3:/v1")
	next := pool(t, "", "web:3:/v2", "one:1:/v2", "api:3:/v1")
	r, err := planRollout(running, next, plan.Diff(running, next), nil)
	is.NoErr(err)
	is.Equal(r.members, []string{"web_0", "web_1"}) // not the added web_2, nor one, nor unchanged api
	is.Equal(len(r.steps), 3)
	cmd := func(q *plan.Plan, n string) string { pr, _ := q.Lookup(n); return pr.Command[0] }
	is.Equal(cmd(r.steps[0], "web_0"), "/v1") // held: the version running
	is.Equal(cmd(r.steps[1], "web_0"), "/v2")
	is.Equal(cmd(r.steps[1], "web_1"), "/v1")
	is.Equal(cmd(r.steps[1], "one_0"), "/v2") // the rest of the difference with the first
	is.Equal(cmd(r.steps[1], "web_2"), "/v2")
	is.True(plan.Diff(r.steps[2], next).Empty()) // the last step is the plan asked for
	held, _ := r.steps[1].Lookup("web_1")
	is.Equal(held.Numprocs, 3) // numprocs is the pool's new one

	// Members not serving go first, the others keep their order.
	all := pool(t, "", "web:3:/v2", "one:1:/v2", "api:3:/v2")
	r, err = planRollout(running, all, plan.Diff(running, all), func(n string) bool { return n != "api_2" && n != "web_1" })
	is.NoErr(err)
	is.Equal(r.members, []string{"api_2", "api_0", "api_1", "web_1", "web_0"}) // pools in start order

	// A job pool runs to its end: nothing to roll.
	running, next = pool(t, "exited", "mig:2:/v1"), pool(t, "exited", "mig:2:/v2")
	r, err = planRollout(running, next, plan.Diff(running, next), nil)
	is.NoErr(err)
	is.True(r == nil)
}

func TestRolloutRefusesAGroupMove(t *testing.T) {
	is := is.New(t)
	running := pool(t, "", "web:2:/v1")
	next := pool(t, "", "web:2:/v2")
	next.Groups = []plan.Group{{Name: "front", Programs: []string{"web"}}}
	for i := range next.Programs {
		next.Programs[i].Group = "front"
	}
	is.NoErr(next.Finish())
	_, err := planRollout(running, next, plan.Diff(running, next), nil)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "web moves to another group"))
}

// A pool going to or from numprocs = 1 renames its processes: --rolling refuses, where the
// pool was replaced at once without a word.
func TestRolloutRefusesARename(t *testing.T) {
	is := is.New(t)
	running := pool(t, "", "web:3:/v1")
	next := pool(t, "", "web:1:/v2")
	next.Programs[0].ProcessName = "web"
	is.NoErr(next.Finish())
	_, err := planRollout(running, next, plan.Diff(running, next), nil)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "web goes from numprocs 3 to 1, which renames its processes"))
}

// A pool whose program is renamed (web -> site) is removed and added whole: --rolling
// refuses, where it replaced the pool at once and exited 0. A pool added beside another
// one changed in place is rolled as before.
func TestRolloutRefusesARenamedPool(t *testing.T) {
	is := is.New(t)
	running := pool(t, "", "web:2:/v1", "worker:1:/w")
	next := pool(t, "", "site:2:/v1", "worker:1:/w")
	_, err := planRollout(running, next, plan.Diff(running, next), nil)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "the pool web is removed and site added (renamed?)"))

	next = pool(t, "", "web:2:/v2", "extra:2:/x", "worker:1:/w")
	r, err := planRollout(running, next, plan.Diff(running, next), nil)
	is.NoErr(err)
	is.Equal(r.members, []string{"web_0", "web_1"})
}

// A wait asks only for what it reads: the names and what they depend on, transitively,
// every process of a pool.
func TestWithDependencies(t *testing.T) {
	is := is.New(t)
	prog := func(name, process string, deps ...string) plan.Program {
		pr := plan.Defaults()
		pr.Name, pr.ProcessName, pr.DependsOn = name, process, deps
		return pr
	}
	p := &plan.Plan{Programs: []plan.Program{
		prog("db", "db"), prog("cache", "cache_0"), prog("cache", "cache_1", "db"),
		prog("api", "api", "cache"), prog("web", "web", "api"), prog("other", "other")}}
	is.Equal(withDependencies(p, []string{"web"}), []string{"web", "api", "cache_0", "cache_1", "db"})
	is.Equal(withDependencies(p, []string{"other", "gone"}), []string{"other", "gone"})
}
