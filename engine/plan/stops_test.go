package plan

import (
	"testing"
	"time"
)

// The longest a shutdown may take: levels one after another, dependents before their
// dependencies, each process its stop_timeout. A unit's TimeoutStopSec of 90s killed
// two programs of 50s at two priorities in the middle of their stops.
func TestWorstStop(t *testing.T) {
	prog := func(name string, prio int, stop time.Duration, deps ...string) Program {
		pr := Defaults()
		pr.Name, pr.ProcessName, pr.Priority, pr.StopTimeout, pr.DependsOn = name, name, prio, Duration(stop), deps
		pr.Command = []string{"true"}
		return pr
	}
	for _, c := range []struct {
		name   string
		progs  []Program
		groups []Group
		want   time.Duration
	}{
		{"one level: together", []Program{prog("a", 10, 50*time.Second), prog("b", 10, 20*time.Second)}, nil, 50 * time.Second},
		{"two levels: one after the other", []Program{prog("a", 10, 50*time.Second), prog("b", 20, 50*time.Second)}, nil, 100 * time.Second},
		{"a dependent first", []Program{prog("db", 10, 30*time.Second), prog("web", 10, 20*time.Second, "db")}, nil, 50 * time.Second},
		{"a group at once", []Program{
			func() Program { p := prog("a", 1, 40*time.Second); p.Group = "g"; return p }(),
			func() Program { p := prog("b", 2, 40*time.Second); p.Group = "g"; return p }(),
		}, []Group{{Name: "g", Programs: []string{"a", "b"}, Priority: 5}}, 40 * time.Second},
		{"nothing", nil, nil, 0},
	} {
		p := &Plan{Programs: c.progs, Groups: c.groups}
		if err := p.Finish(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := p.WorstStop(); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
