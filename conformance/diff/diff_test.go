package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/builtins"
)

func TestSupervisordLogBecomesEvents(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	log := `2026-11-25 16:52:42,547 INFO supervisord started with pid 1
2026-11-25 16:52:43,550 INFO spawned: 'crash' with pid 10
2026-11-25 16:52:43,560 WARN exited: crash (exit status 1; not expected)
2026-11-25 16:52:44,570 INFO spawned: 'crash' with pid 11
2026-11-25 16:52:45,580 INFO success: crash entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
2026-11-25 16:52:46,590 WARN exited: crash (exit status 1; not expected)
2026-11-25 16:52:47,600 INFO gave up: crash entered FATAL state, too many start retries too quickly
`
	is.NoErr(os.WriteFile(filepath.Join(dir, "sd.log"), []byte(log), 0o644))
	evs := (&supervisord{dir: dir}).events()
	var got []string
	for _, e := range evs {
		got = append(got, e.proc+" "+e.to)
	}
	is.Equal(got, []string{"crash STARTING", "crash BACKOFF", "crash STARTING", "crash RUNNING", "crash EXITED", "crash FATAL"})
	is.Equal(delays(evs, "crash", "BACKOFF", "STARTING")[0].Milliseconds(), int64(1010))
}

// Every case's programs must render to a deploy script starvisor accepts, with one
// process per program, so the two daemons really run the same set.
func TestCasesRenderToValidScripts(t *testing.T) {
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			is.NoErr(writeConfigs(dir, c.progs))
			p, err := builtins.Eval(context.Background(), builtins.Options{File: filepath.Join(dir, "deploy.star")})
			is.NoErr(err)
			is.Equal(len(p.Programs), len(c.progs))
			is.Equal(len(c.metrics) > 0, true)
		})
	}
}
