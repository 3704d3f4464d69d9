package builtins_test

import (
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/engine/plan"
)

func TestProbeStar(t *testing.T) { runStar(t, "probe") }

func TestProbeInPlan(t *testing.T) {
	is := is.New(t)
	p, root := evalTxtar(t, `
-- deploy.star --
program(name = "db", command = "db", ready = probe.tcp(5432, timeout = "2m"))
program(name = "api", command = "api", ready = probe.http("http://127.0.0.1:8080/up"), depends_on = ["db"])
program(name = "job", command = "job", ready = probe.exec("bin/ready 'a b'", interval = "250ms"))
program(name = "log", command = "x", ready = probe.log("listening"))
`)
	db, _ := p.Lookup("db")
	is.Equal(*db.Ready, plan.Probe{Kind: "tcp", Host: "127.0.0.1", Port: 5432,
		Interval: plan.Duration(time.Second), Timeout: plan.Duration(2 * time.Minute)})
	api, _ := p.Lookup("api")
	is.Equal(*api.Ready, plan.Probe{Kind: "http", URL: "http://127.0.0.1:8080/up", Status: 200,
		Interval: plan.Duration(time.Second), Timeout: plan.Duration(time.Minute)})
	job, _ := p.Lookup("job")
	is.Equal(job.Ready.Command, []string{root + "/bin/ready", "a b"}) // relative to the script
	is.Equal(job.Ready.Interval, plan.Duration(250*time.Millisecond))
	lg, _ := p.Lookup("log")
	is.Equal(lg.Ready.Pattern, "listening")
}
