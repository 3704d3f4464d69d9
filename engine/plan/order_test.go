package plan

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/matryer/is"
)

func TestStartOrder(t *testing.T) {
	tests := []struct {
		name   string
		progs  []Program
		want   []string
		groups []Group
	}{
		{"priority ascending",
			[]Program{prog("c", priority(30)), prog("a", priority(20)), prog("b", priority(10))},
			[]string{"b", "a", "c"}, nil},
		{"name breaks priority ties",
			[]Program{prog("c"), prog("a"), prog("b", priority(5)), prog("d", priority(5))},
			[]string{"b", "d", "a", "c"}, nil},
		{"process names break ties, not program names",
			instances("w", 3, 8),
			[]string{"w_08", "w_09", "w_10"}, nil},
		{"dependency overrides priority",
			[]Program{prog("web", priority(1), dependsOn("db")), prog("db", priority(100)), prog("cache", priority(50))},
			[]string{"cache", "db", "web"}, nil},
		{"a dependent goes as soon as it can, by priority",
			[]Program{prog("web", priority(1), dependsOn("db")), prog("db", priority(10)), prog("batch", priority(20))},
			[]string{"db", "web", "batch"}, nil},
		{"chain against priority",
			[]Program{prog("a", priority(1), dependsOn("b")), prog("b", priority(2), dependsOn("c")), prog("c", priority(3))},
			[]string{"c", "b", "a"}, nil},
		{"diamond",
			[]Program{prog("top", dependsOn("left", "right")), prog("left", dependsOn("base")), prog("right", priority(1), dependsOn("base")), prog("base")},
			[]string{"base", "right", "left", "top"}, nil},
		{"waits for every instance of a numprocs dependency",
			append([]Program{prog("api", priority(1), dependsOn("w"))}, instances("w", 3, 0, priority(5))...),
			[]string{"w_00", "w_01", "w_02", "api"}, nil},
		{"instances of a dependent all follow",
			append(instances("w", 2, 0, priority(1), dependsOn("db")), prog("db", priority(2)), prog("x", priority(3))),
			[]string{"db", "w_00", "w_01", "x"}, nil},
		{"depends_on listed twice counts once",
			[]Program{prog("web", dependsOn("db", "db")), prog("db")},
			[]string{"db", "web"}, nil},
		// supervisord orders groups by the group's priority, then members by theirs; a
		// program outside any group() is a group of its own priority.
		{"a group's priority ranks its members",
			[]Program{prog("late", priority(1), inGroup("g")), prog("early", priority(900), inGroup("h")), prog("solo", priority(100)),
				prog("mid", priority(500), inGroup("g"))},
			[]string{"early", "solo", "late", "mid"},
			[]Group{{Name: "g", Programs: []string{"late", "mid"}, Priority: 999}, {Name: "h", Programs: []string{"early"}, Priority: 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			p := planOf(tt.progs...)
			p.Groups = tt.groups
			is.NoErr(p.Validate()) // test plans are valid
			is.Equal(processNames(startOrder(tt.progs, tt.groups)), tt.want)
			// The order does not depend on how the entries were listed.
			r := rand.New(rand.NewPCG(1, 2))
			for range 10 {
				shuffled := slices.Clone(tt.progs)
				r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				is.Equal(processNames(startOrder(shuffled, tt.groups)), tt.want)
			}
		})
	}
}

func TestFinish(t *testing.T) {
	is := is.New(t)
	p := &Plan{Programs: []Program{
		prog("web", priority(1), dependsOn("db"), func(pr *Program) { pr.Env = nil; pr.DependsOn = nil; pr.DependsOn = []string{"db"} }),
		prog("db", func(pr *Program) { pr.ExitCodes = nil }),
	}}
	p.Programs = append(p.Programs, instances("w", 2, 0)...)
	is.NoErr(p.Finish())
	is.Equal(p.Format, Format)
	is.Equal(processNames(p.Programs), []string{"db", "web", "w_00", "w_01"})
	for _, pr := range p.Programs {
		is.Equal(pr.Hash, HashProgram(pr)) // every entry hashed
		is.True(pr.Env != nil && pr.ExitCodes != nil && pr.DependsOn != nil && pr.Command != nil)
	}
	is.Equal(p.Programs[2].Group, "w") // numprocs > 1 forms a group of its own name
	is.Equal(p.Programs[0].Group, "")  // numprocs 1 stays in no group
	is.True(p.Groups != nil && p.Inputs.Files != nil && p.Inputs.Env != nil)

	// Finishing again changes nothing.
	before, err := p.JSON()
	is.NoErr(err)
	is.NoErr(p.Finish())
	after, err := p.JSON()
	is.NoErr(err)
	is.Equal(string(after), string(before))
}

func TestFinishKeepsAnExplicitGroup(t *testing.T) {
	is := is.New(t)
	p := planOf(instances("w", 2, 0, inGroup("pool"))...)
	p.Groups = []Group{{Name: "pool", Programs: []string{"w"}}}
	is.NoErr(p.Finish())
	is.Equal(p.Programs[0].Group, "pool")
}

func TestFinishRejects(t *testing.T) {
	t.Run("invalid plan, unsorted and unhashed", func(t *testing.T) {
		is := is.New(t)
		p := planOf(prog("b"), prog("a", dependsOn("a")))
		err := p.Finish()
		is.Equal(err.Error(), `program "a": depends_on: cycle a -> a`)
		is.Equal(processNames(p.Programs), []string{"b", "a"})
		is.Equal(p.Programs[0].Hash, "")
	})
	t.Run("unknown format", func(t *testing.T) {
		is := is.New(t)
		p := planOf(prog("a"))
		p.Format = 2
		is.Equal(p.Finish().Error(), "finish: format: is 2, want 1")
	})
}

// A pool of a dozen starts, and is listed, as a person counts.
func TestNaturalOrder(t *testing.T) {
	is := is.New(t)
	names := []string{"w_10", "w_2", "w_1", "w_02", "a", "w_11", "w_0", "web9", "web10", "w_"}
	slices.SortFunc(names, func(a, b string) int {
		if naturalLess(a, b) {
			return -1
		}
		if naturalLess(b, a) {
			return 1
		}
		return 0
	})
	is.Equal(names, []string{"a", "w_", "w_0", "w_1", "w_02", "w_2", "w_10", "w_11", "web9", "web10"})
}
