package plan

import (
	"errors"
	"testing"

	"github.com/matryer/is"
)

func selectPlan(t *testing.T) *Plan {
	t.Helper()
	p := planOf(prog("db", priority(1)), prog("api", inGroup("web")), prog("static", inGroup("web"), func(pr *Program) { pr.ProcessName = "files" }))
	p.Programs = append(p.Programs, instances("worker", 3, 1)...)
	p.Programs = append(p.Programs, instances("pool", 2, 0, inGroup("batch"), priority(2))...)
	p.Groups = []Group{{Name: "web", Programs: []string{"api", "static"}, Priority: 999}, {Name: "batch", Programs: []string{"pool"}, Priority: 999}}
	if err := p.Finish(); err != nil {
		t.Fatalf("finish: %v", err)
	}
	return p
}

func TestSelect(t *testing.T) {
	tests := []struct {
		spec string
		want []string
	}{
		{"all", []string{"db", "pool_00", "pool_01", "api", "files", "worker_01", "worker_02", "worker_03"}},
		{"db", []string{"db"}},
		{"files", []string{"files"}},                                  // a process name
		{"static", []string{"files"}},                                 // a program name
		{"worker", []string{"worker_01", "worker_02", "worker_03"}},   // every instance
		{"worker_02", []string{"worker_02"}},                          // one instance
		{"web", []string{"api", "files"}},                             // a bare group name, as supervisorctl reads it
		{"web:*", []string{"api", "files"}},                           // a group
		{"web:", []string{"api", "files"}},                            // a group, as supervisorctl also reads it
		{"web:api", []string{"api"}},                                  // a process in a group
		{"web:static", []string{"files"}},                             // a program in a group
		{"worker:*", []string{"worker_01", "worker_02", "worker_03"}}, // numprocs forms a group of its name
		{"worker:worker_03", []string{"worker_03"}},
		{"batch:*", []string{"pool_00", "pool_01"}},
		{"pool:*", []string{"pool_00", "pool_01"}}, // a program is also its own group
		{"db:*", []string{"db"}},
		{"db:db", []string{"db"}},
	}
	p := selectPlan(t)
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			is := is.New(t)
			got, err := p.Select(tt.spec)
			is.NoErr(err)
			is.Equal(got, tt.want)
		})
	}
}

func TestSelectUnknown(t *testing.T) {
	p := selectPlan(t)
	for _, spec := range []string{"nope", "", "web:db", ":*", "nope:*", "worker:worker_09", "ALL", "db:*:*"} {
		t.Run(spec, func(t *testing.T) {
			is := is.New(t)
			got, err := p.Select(spec)
			is.Equal(got, nil)
			is.True(errors.Is(err, ErrNoSuchProcess))
			is.Equal(err.Error(), "no such process or group: "+spec)
		})
	}
}

func TestOne(t *testing.T) {
	is := is.New(t)
	p := selectPlan(t)
	for _, spec := range []string{"worker_02", "worker:worker_02"} {
		pr, err := p.One(spec)
		is.NoErr(err)
		is.Equal(pr.ProcessName, "worker_02")
		is.Equal(pr.ProcessNum, 2)
	}
	pr, err := p.One("web:static") // a program of one instance, within its group
	is.NoErr(err)
	is.Equal(pr.ProcessName, "files")
	_, err = p.One("worker")
	is.Equal(err.Error(), "worker selects 3 processes (worker_01, worker_02, worker_03): name one")
	_, err = p.One("nope")
	is.Equal(err.Error(), "no such process: nope")
}

func TestLookup(t *testing.T) {
	is := is.New(t)
	p := selectPlan(t)
	pr, ok := p.Lookup("worker_02")
	is.True(ok)
	is.Equal(pr.Name, "worker")
	is.Equal(pr.ProcessNum, 2)
	_, ok = p.Lookup("worker") // a program name is not a process name
	is.True(!ok)
}
