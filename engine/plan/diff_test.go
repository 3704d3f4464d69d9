package plan

import (
	"encoding/json"
	"testing"

	"github.com/matryer/is"
)

func finished(t *testing.T, progs ...Program) *Plan {
	t.Helper()
	p := planOf(progs...)
	if err := p.Finish(); err != nil {
		t.Fatalf("finish: %v", err)
	}
	return p
}

func TestDiff(t *testing.T) {
	none := []string{}
	tests := []struct {
		name     string
		old, new []Program
		nilOld   bool
		want     Delta
	}{
		{name: "from nothing", nilOld: true,
			new:  []Program{prog("b", priority(1)), prog("a")},
			want: Delta{Added: []string{"b", "a"}, Removed: none, Unchanged: none, Changed: []Change{}, Updated: []Change{}}},
		{name: "identical",
			old:  []Program{prog("a"), prog("b")},
			new:  []Program{prog("a"), prog("b")},
			want: Delta{Added: none, Removed: none, Unchanged: []string{"a", "b"}, Changed: []Change{}, Updated: []Change{}}},
		{name: "added and removed",
			old:  []Program{prog("a"), prog("gone", priority(5))},
			new:  []Program{prog("a"), prog("new")},
			want: Delta{Added: []string{"new"}, Removed: []string{"gone"}, Unchanged: []string{"a"}, Changed: []Change{}, Updated: []Change{}}},
		{name: "changed fields named in JSON order",
			old: []Program{prog("a"), prog("b")},
			new: []Program{prog("a", func(pr *Program) {
				pr.Env = map[string]string{"PYTHONPATH": "/srv/v3"}
				pr.Command = []string{"/usr/bin/a", "--v3"}
				pr.Stdout.MaxBytes = 1 << 20
			}), prog("b")},
			want: Delta{Added: none, Removed: none, Unchanged: []string{"b"},
				Changed: []Change{{Name: "a", Fields: []string{"command", "env"}, Env: []string{"PYTHONPATH"}}}, Updated: []Change{}}},
		{name: "a log's rotation alone is an update",
			old: []Program{prog("a"), prog("b")},
			new: []Program{prog("a", func(pr *Program) { pr.Stdout.MaxBytes, pr.Stdout.Timestamps = 1<<20, true }),
				prog("b", func(pr *Program) { pr.Stdout.Path = "/srv/log/b2.log" })},
			want: Delta{Added: none, Removed: none, Unchanged: []string{"a"}, Changed: []Change{{Name: "b", Fields: []string{"stdout"}}},
				Updated: []Change{{Name: "a", Fields: []string{"stdout"}}}}},
		{name: "ordering fields alone leave a process unchanged",
			old: []Program{prog("db"), prog("web")},
			new: []Program{prog("db", func(pr *Program) { pr.Ready = &Probe{Kind: ProbeTCP, Host: "127.0.0.1", Port: 5432} }),
				prog("web", priority(1), dependsOn("db"), at("deploy.star:40:1"))},
			want: Delta{Added: none, Removed: none, Unchanged: []string{"db", "web"}, Changed: []Change{}, Updated: []Change{
				{Name: "db", Fields: []string{"ready"}}, {Name: "web", Fields: []string{"priority", "depends_on"}}}}},
		{name: "numprocs grows: new instances added, old ones keep running",
			old: instances("w", 2, 0),
			new: instances("w", 3, 0),
			want: Delta{Added: []string{"w_02"}, Removed: none, Unchanged: []string{"w_00", "w_01"}, Changed: []Change{}, Updated: []Change{
				{Name: "w_00", Fields: []string{"numprocs"}}, {Name: "w_01", Fields: []string{"numprocs"}}}}},
		{name: "lists follow start order",
			old: []Program{prog("r2", priority(2)), prog("r1", priority(1)), prog("c2", priority(2)), prog("c1", priority(1))},
			new: []Program{prog("c2", priority(2), func(pr *Program) { pr.User = "x" }), prog("c1", priority(1), func(pr *Program) { pr.User = "x" }),
				prog("a2", priority(2)), prog("a1", priority(1))},
			want: Delta{Added: []string{"a1", "a2"}, Removed: []string{"r1", "r2"}, Unchanged: none, Changed: []Change{
				{Name: "c1", Fields: []string{"user"}}, {Name: "c2", Fields: []string{"user"}}}, Updated: []Change{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			var old *Plan
			if !tt.nilOld {
				old = finished(t, tt.old...)
			}
			d := Diff(old, finished(t, tt.new...))
			is.Equal(d, tt.want)
			wantEmpty := len(tt.want.Added)+len(tt.want.Removed)+len(tt.want.Changed)+len(tt.want.Updated) == 0
			is.Equal(d.Empty(), wantEmpty)
		})
	}
}

func TestDiffToNothing(t *testing.T) {
	is := is.New(t)
	d := Diff(finished(t, prog("a"), prog("b")), nil)
	is.Equal(d.Removed, []string{"a", "b"})
	is.True(!d.Empty())
	is.True(Diff(nil, nil).Empty())
}

func TestDiffIgnoresStaleHashes(t *testing.T) {
	is := is.New(t)
	old, next := planOf(prog("a")), planOf(prog("a", func(pr *Program) { pr.User = "www" }))
	d := Diff(old, next) // neither plan hashed
	is.Equal(d.Changed, []Change{{Name: "a", Fields: []string{"user"}}})
}

// A group's priority decides its members' order: a change to it alone is an update.
func TestDiffGroupPriority(t *testing.T) {
	is := is.New(t)
	plan := func(prio int) *Plan {
		p := planOf(prog("a", inGroup("g")), prog("b"))
		p.Groups = []Group{{Name: "g", Programs: []string{"a"}, Priority: prio}}
		is.NoErr(p.Finish())
		return p
	}
	d := Diff(plan(999), plan(5))
	is.Equal(d.Updated, []Change{{Name: "a", Fields: []string{"group priority"}}})
	is.True(!d.Empty())
	is.True(Diff(plan(5), plan(5)).Empty())
}

// A move to another group restarts the process: it sees its group as STARVISOR_GROUP_NAME.
func TestDiffGroupMove(t *testing.T) {
	is := is.New(t)
	plan := func(group string) *Plan {
		p := planOf(prog("a", inGroup(group)), prog("b"))
		p.Groups = []Group{{Name: group, Programs: []string{"a"}}}
		is.NoErr(p.Finish())
		return p
	}
	d := Diff(plan("g1"), plan("g2"))
	is.Equal(d.Changed, []Change{{Name: "a", Fields: []string{"group"}}})
	is.Equal(d.Updated, []Change{})
}

func TestDeltaJSON(t *testing.T) {
	is := is.New(t)
	b, err := json.Marshal(Diff(nil, planOf(prog("a"))))
	is.NoErr(err)
	is.Equal(string(b), `{"added":["a"],"removed":[],"unchanged":[],"changed":[],"updated":[]}`)
}

// JobsFirst: the jobs an apply adds or changes that a program it restarts depends on.
func TestDeltaJobsFirst(t *testing.T) {
	job := func(pr *Program) { pr.Ready = &Probe{Kind: ProbeExited} }
	old := planOf(prog("web"), prog("seed", job))
	next := planOf(prog("web", func(pr *Program) { pr.Command = []string{"/v2"}; pr.DependsOn = []string{"migrate"} }),
		prog("migrate", job), prog("seed", job, func(pr *Program) { pr.Command = []string{"/seed2"} }))
	got := Diff(old, next).JobsFirst(next)
	if len(got) != 1 || got["migrate"] != "web" {
		t.Errorf("JobsFirst = %v, want migrate for web (seed changes, but nothing restarted depends on it)", got)
	}
	// A job needed brings the changed jobs it depends on: schema before migrate.
	next = planOf(prog("web", func(pr *Program) { pr.Command = []string{"/v2"}; pr.DependsOn = []string{"migrate"} }),
		prog("migrate", job, func(pr *Program) { pr.DependsOn = []string{"schema"} }), prog("schema", job),
		prog("seed", job))
	got = Diff(old, next).JobsFirst(next)
	if len(got) != 2 || got["migrate"] != "web" || got["schema"] != "migrate" {
		t.Errorf("JobsFirst = %v, want migrate for web, schema for migrate", got)
	}
}
