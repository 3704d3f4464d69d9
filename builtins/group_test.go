package builtins_test

import (
	"testing"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/engine/plan"
)

func TestGroupStar(t *testing.T) { runStar(t, "group") }

func TestGroupsInPlan(t *testing.T) {
	is := is.New(t)
	p, _ := evalTxtar(t, `
-- deploy.star --
a = program(name = "a", command = "x")
program(name = "b", command = "x", group = "web")
program(name = "c", command = "x", group = "jobs", priority = 7)
program(name = "w", command = "x", numprocs = 2)
group("web", programs = [a], priority = 5)
`)
	is.Equal(p.Groups, []plan.Group{
		{Name: "web", Programs: []string{"a", "b"}, Priority: 5, Pos: "deploy.star:5:6"},
		{Name: "jobs", Programs: []string{"c"}, Priority: 7, Pos: "deploy.star:3:8"}, // implied by group = "jobs"
	})
	for name, group := range map[string]string{"a": "web", "b": "web", "c": "jobs", "w_0": "w", "w_1": "w"} {
		pr, ok := p.Lookup(name)
		is.True(ok)
		is.Equal(pr.Group, group)
	}
	got, err := p.Select("web:*")
	is.NoErr(err)
	is.Equal(len(got), 2)
}
