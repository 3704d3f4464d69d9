package builtins

import (
	"os"
	"path/filepath"
	"testing"

	"go.starlark.net/starlark"
)

// BenchmarkScript1000 is BenchmarkEval1000 without plan.Finish: the cost of running the
// script and building the plan, which is what this package controls.
func BenchmarkScript1000(b *testing.B) {
	dir := b.TempDir()
	src := `
supervisor(log_dir = "log")
base = program(name = "base", command = "bin/base", ready = probe.tcp(5000))
for i in range(999):
    program(
        name = "svc%d" % i,
        command = "python3 -m service.svc%d.run --port %d" % (i, 6000 + i),
        env = {"PYTHONPATH": path.list(here("code/v%d" % (i % 3))), "N": str(i)},
        directory = here("."),
        autorestart = True,
        start_retries = 5,
        priority = 10 + i % 5,
        stdout = log("log/svc%d.out" % i, max_bytes = "10MB", backups = 3),
        depends_on = [base],
    )
`
	if err := os.WriteFile(filepath.Join(dir, "deploy.star"), []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s, _, err := newState(Options{File: filepath.Join(dir, "deploy.star")})
		if err != nil {
			b.Fatal(err)
		}
		th := &starlark.Thread{Load: s.load}
		th.SetLocal(stateKey, s)
		if _, err := s.exec(th, s.entry, filepath.Join(s.root, s.entry), ""); err != nil {
			b.Fatal(err)
		}
		p, err := s.build()
		if err != nil || len(p.Programs) != 1000 {
			b.Fatal(err, len(p.Programs))
		}
	}
}
