package plan

import (
	"testing"
)

func TestBigPlanIsValid(t *testing.T) {
	p := bigPlan(1000)
	if len(p.Programs) != 1000 {
		t.Fatalf("bigPlan has %d programs, want 1000", len(p.Programs))
	}
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	if p.Programs[0].ProcessName != "db" {
		t.Fatalf("first process is %q, want db", p.Programs[0].ProcessName)
	}
}

// BenchmarkJSON1000 is the cost of `starvisor plan --json` for 1,000 processes
// (target < 5 ms).
func BenchmarkJSON1000(b *testing.B) {
	p := bigPlan(1000)
	if err := p.Finish(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.JSON(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFinish1000(b *testing.B) {
	src := bigPlan(1000)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		p := *src
		p.Programs = append([]Program(nil), src.Programs...)
		b.StartTimer()
		if err := p.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDiff1000(b *testing.B) {
	old := bigPlan(1000)
	if err := old.Finish(); err != nil {
		b.Fatal(err)
	}
	next := bigPlan(1000)
	for i := 0; i < len(next.Programs); i += 10 { // one process in ten changed
		next.Programs[i].Env = map[string]string{"VERSION": "3"}
	}
	if err := next.Finish(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := Diff(old, next); len(d.Changed) != 100 {
			b.Fatalf("changed %d, want 100", len(d.Changed))
		}
	}
}
