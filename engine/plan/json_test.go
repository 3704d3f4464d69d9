package plan

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// goldenPlan uses every kind of field, so the golden file shows the whole JSON form.
func goldenPlan(t *testing.T) *Plan {
	t.Helper()
	p := planOf(
		prog("db", priority(1), at("deploy.star:3:1"), func(pr *Program) {
			pr.Command = []string{"/bin/sh", "-c", "exec db --port 5432 && echo <done>"}
			pr.Env = map[string]string{"PGDATA": "/srv/data", "LANG": "C.UTF-8"}
			pr.Umask = "022"
			pr.Stderr = DefaultLog("/srv/log/db.err")
			pr.Ready = &Probe{Kind: ProbeTCP, Host: "127.0.0.1", Port: 5432, Interval: Duration(time.Second), Timeout: Duration(30 * time.Second)}
		}),
		prog("web", priority(10), dependsOn("db"), at("deploy.star:9:1"), inGroup("front"), func(pr *Program) {
			pr.Command = []string{"python3", "-m", "service.web"}
			pr.Directory = "/srv"
			pr.Autorestart = RestartAlways
			pr.StartRetries = -1
			pr.Backoff = BackoffExponential
			pr.StopAsGroup, pr.KillAsGroup, pr.RedirectStderr = true, true, true
			pr.Stdout = &Log{Path: "/srv/log/web.std", MaxBytes: 10 << 20, Backups: 3, Timestamps: true}
			pr.Ready = &Probe{Kind: ProbeHTTP, URL: "http://127.0.0.1:8080/health", Status: 200, Interval: Duration(time.Second), Timeout: Duration(time.Minute)}
		}),
		prog("cron", at("deploy.star:20:1"), func(pr *Program) {
			pr.Autostart = false
			pr.InheritEnv = false
			pr.Stdout = nil
			pr.ExitCodes = nil
			pr.Env = nil
		}),
	)
	p.Programs = append(p.Programs, instances("worker", 2, 1, at("lib/pool.star:4:5"), dependsOn("db"), func(pr *Program) {
		pr.Ready = &Probe{Kind: ProbeLog, Pattern: "ready", Interval: Duration(100 * time.Millisecond), Timeout: Duration(10 * time.Second)}
	})...)
	p.Groups = []Group{{Name: "front", Programs: []string{"web"}, Priority: 5, Pos: "deploy.star:30:1"}}
	p.Inputs = Inputs{Files: map[string]string{"deploy.star": "sha256:0a", "@stdlib//python.star": "sha256:0b"}, Env: map[string]string{"HOME": "/root"}}
	if err := p.Finish(); err != nil {
		t.Fatalf("finish: %v", err)
	}
	return p
}

func TestJSONGolden(t *testing.T) {
	is := is.New(t)
	got, err := goldenPlan(t).JSON()
	is.NoErr(err)
	golden := filepath.Join("testdata", "plan.json")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		is.NoErr(os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	is.NoErr(err)
	is.Equal(string(got), string(want)) // run with UPDATE_GOLDEN=1 to accept a deliberate change

	// encode -> Decode -> encode is the identity.
	p, err := Decode(got)
	is.NoErr(err)
	again, err := p.JSON()
	is.NoErr(err)
	is.Equal(string(again), string(got))
}

func TestJSONShape(t *testing.T) {
	is := is.New(t)
	p := planOf(prog("a", func(pr *Program) {
		pr.Command, pr.Env, pr.ExitCodes, pr.DependsOn = nil, nil, nil, nil
		pr.Stdout = nil
		pr.Command = []string{"/bin/a", "x && y <z>"}
	}))
	out, err := p.JSON()
	is.NoErr(err)
	s := string(out)
	is.True(strings.HasSuffix(s, "}\n"))
	is.True(strings.HasPrefix(s, "{\n  \"format\": 1,\n")) // two-space indent
	for _, want := range []string{
		`"env": {}`, `"exit_codes": []`, `"depends_on": []`, `"groups": []`,
		`"files": {}`, `"stdout": null`, `"stderr": null`, `"ready": null`,
		`"x && y <z>"`,
	} {
		is.True(strings.Contains(s, want)) // want appears in the JSON
	}
	is.True(!strings.Contains(s, `"pos"`)) // an unset pos is left out
	// JSON reads the plan without changing it.
	is.Equal(p.Programs[0].Env, nil)
	is.Equal(p.Programs[0].DependsOn, nil)
	is.Equal(p.Groups, nil)

	var empty Plan
	out, err = empty.JSON()
	is.NoErr(err)
	is.True(strings.Contains(string(out), `"programs": []`))
}

func TestDecodeRejects(t *testing.T) {
	good, err := goldenPlan(t).JSON()
	if err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("golden plan lacks %q", old)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "decode plan: EOF"},
		{"garbage", []byte("programs: []"), "decode plan: invalid character 'p' looking for beginning of value"},
		{"truncated", good[:len(good)/2], "decode plan: unexpected EOF"},
		{"unknown top-level field", edit(`"format": 1,`, `"format": 1, "extra": true,`), `decode plan: json: unknown field "extra"`},
		{"unknown program field", edit(`"name": "db",`, `"name": "db", "restart": "always",`), `decode plan: json: unknown field "restart"`},
		{"unknown log field", edit(`"backups": 3,`, `"backups": 3, "compress": true,`), `decode plan: json: unknown field "compress"`},
		{"wrong type", edit(`"numprocs": 1,`, `"numprocs": "1",`), "decode plan: json: cannot unmarshal string into Go struct field Program.programs.numprocs of type int"},
		{"bad duration", edit(`"stop_timeout": "10s"`, `"stop_timeout": "10 seconds"`), `decode plan: duration: time: unknown unit " seconds" in duration "10 seconds"`},
		{"trailing data", append(bytes.Clone(good), []byte("{}")...), "decode plan: unexpected data after the plan"},
		{"trailing garbage", append(bytes.Clone(good), []byte("x")...), "decode plan: unexpected data after the plan"},
		{"no format", []byte(`{"programs": []}`), "decode plan: format: is 0, this starvisor reads 1"},
		{"future format", edit(`"format": 1,`, `"format": 2,`), "decode plan: format: is 2, this starvisor reads 1"},
		{"invalid plan", edit(`"stop_signal": "TERM"`, `"stop_signal": "TERMINATE"`),
			`deploy.star:3:1: program "db": stop_signal: no signal is named "TERMINATE"`},
		{"edited without rehashing", edit(`"user": ""`, `"user": "root"`), "deploy.star:3:1: program \"db\": hash: is "},
		{"out of order", edit(`"priority": 1,`, `"priority": 1000,`),
			`plan: programs: not in start order: entry 0 is "db", want "cron"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			p, err := Decode(tt.data)
			is.Equal(p, nil)
			is.True(err != nil)
			is.True(err != nil)
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error:\n%s\nwant prefix:\n%s", err, tt.want)
			}
		})
	}
}

func TestDecodeFillsNilLists(t *testing.T) {
	is := is.New(t)
	p := planOf(prog("a"))
	is.NoErr(p.Finish())
	data, err := json.Marshal(p) // plain encoding, nulls and all
	is.NoErr(err)
	data = bytes.Replace(data, []byte(`"groups":[]`), []byte(`"groups":null`), 1)
	data = bytes.Replace(data, []byte(`"depends_on":[]`), []byte(`"depends_on":null`), 1)
	got, err := Decode(data)
	is.NoErr(err)
	is.True(got.Groups != nil)
	is.True(got.Programs[0].DependsOn != nil)
}
