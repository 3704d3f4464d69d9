package plan_test

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/starvisor/starvisor/engine/plan"
)

// FuzzDecode feeds arbitrary bytes to Decode, the gate every plan from outside the
// evaluator passes (the API's apply, a saved plan). Decode must never panic, and a plan it
// accepts must survive a round trip: JSON() of it decodes again to the same plan, and that
// second plan prints the same bytes (the printed form is stable).
//
//	go test -run '^$' -fuzz FuzzDecode -fuzztime 5m ./engine/plan
func FuzzDecode(f *testing.F) {
	golden, err := os.ReadFile("testdata/plan.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add(mustJSON(f, finished(f)))
	f.Add(mustJSON(f, &plan.Plan{Format: plan.Format}))
	// Near misses: each must be refused without a panic.
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `"x"`, `{"format":1}`, `{"format":1}{}`,
		`{"format":2,"programs":[]}`, `{"format":1,"programs":null,"groups":null}`,
		`{"format":1,"programs":[{}]}`, `{"format":1,"programs":[null]}`,
		`{"format":1,"programs":[{"name":"a","process_name":"a","command":[""]}]}`,
		`{"format":1,"programs":[{"name":"a","stop_timeout":"-1s"}]}`,
		`{"format":1,"programs":[{"name":"a","stop_timeout":1e400}]}`,
		`{"format":1,"programs":[{"name":"a","ready":{"kind":"exec"}}]}`,
		`{"format":1,"programs":[{"name":"a","ready":{"kind":"tcp","port":-1}}]}`,
		`{"format":1,"groups":[{"name":"g","programs":["nope"]}]}`,
		`{"format":1,"programs":[{"name":"a","depends_on":["a"]}]}`,
		`{"format":1,"programs":[{"name":"a","exit_codes":[256,-1]}]}`,
		`{"format":1,"programs":[{"name":"a","numprocs":0}]}`,
		`{"format":1,"bogus":true}`,
		`{"format":1,"inputs":{"files":{"a":1}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Add(bytes.Replace(golden, []byte(`"priority": 1,`), []byte(`"priority": 1000,`), 1)) // start order broken
	f.Add(bytes.Replace(golden, []byte(`"sha256:`), []byte(`"sha256:0`), 1))               // hash broken

	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := plan.Decode(data)
		if err != nil {
			if p != nil {
				t.Fatalf("Decode returned a plan and an error: %v", err)
			}
			return
		}
		out, err := p.JSON()
		if err != nil {
			t.Fatalf("JSON of a decoded plan: %v", err)
		}
		q, err := plan.Decode(out)
		if err != nil {
			t.Fatalf("a decoded plan does not decode again: %v\ninput:\n%s\nprinted:\n%s", err, data, out)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip changed the plan:\nfirst:  %+v\nsecond: %+v", p, q)
		}
		again, _ := q.JSON()
		if !bytes.Equal(out, again) {
			t.Fatalf("printed form is not stable:\n%s\n---\n%s", out, again)
		}
	})
}

// finished is a small valid plan with a group, a dependency and a probe: a seed that
// reaches every part of the decoder.
func finished(f testing.TB) *plan.Plan {
	p := &plan.Plan{Format: plan.Format, Entry: "deploy.star", Root: "/srv",
		Supervisor: plan.Supervisor{Socket: "/srv/s.sock", LogDir: "/srv/log", StateDir: "/srv/state"}}
	for i, n := range []string{"db", "web_0", "web_1"} {
		pr := plan.Defaults()
		pr.Name, pr.ProcessName, pr.Command = strings.TrimSuffix(strings.TrimSuffix(n, "_0"), "_1"), n, []string{"/bin/sleep", fmt.Sprint(i)}
		pr.Stdout = plan.DefaultLog("/srv/log/" + n + ".log")
		pr.Env = map[string]string{"N": fmt.Sprint(i), "ESC": "<&>\u2028\"\\"}
		if pr.Name == "web" {
			pr.Numprocs, pr.ProcessNum, pr.Group = 2, i-1, "web"
			pr.DependsOn = []string{"db"}
			pr.Ready = &plan.Probe{Kind: plan.ProbeTCP, Host: "127.0.0.1", Port: 8080 + i,
				Interval: plan.Duration(1e9), Timeout: plan.Duration(5e9)}
		}
		p.Programs = append(p.Programs, pr)
	}
	p.Groups = []plan.Group{{Name: "web", Programs: []string{"web"}, Priority: 999}}
	if err := p.Finish(); err != nil {
		f.Fatal(err)
	}
	return p
}

func mustJSON(f testing.TB, p *plan.Plan) []byte {
	b, err := p.JSON()
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// TestFuzzDecodeSeedsAreValid keeps FuzzDecode honest: its good seeds must decode, or the
// round-trip property is never reached from them.
func TestFuzzDecodeSeedsAreValid(t *testing.T) {
	golden, err := os.ReadFile("testdata/plan.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Decode(golden); err != nil {
		t.Fatalf("testdata/plan.json: %v", err)
	}
	if _, err := plan.Decode(mustJSON(t, finished(t))); err != nil {
		t.Fatalf("finished plan: %v", err)
	}
}
