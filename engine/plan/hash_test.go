package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestHashFormatAndStability(t *testing.T) {
	is := is.New(t)
	pr := prog("web", func(pr *Program) {
		pr.Env = map[string]string{"B": "2", "A": "1", "C": "3"}
	})
	h := HashProgram(pr)
	is.True(regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(h))
	for range 50 { // map iteration order must not leak into the hash
		is.Equal(HashProgram(pr), h)
	}
	// nil and empty lists and maps are the same program.
	a, b := prog("web"), prog("web")
	a.Env, a.ExitCodes, a.DependsOn = nil, nil, nil
	b.Env, b.ExitCodes, b.DependsOn = map[string]string{}, []int{}, []string{}
	is.Equal(HashProgram(a), HashProgram(b))
	// Pinned: a change to the encoding changes every hash status shows, and plan JSON
	// written before no longer decodes; make it on purpose.
	canonical := `{"name":"web","process_name":"web","command":["/usr/bin/web","--serve"],` +
		`"inherit_env":true,"stdout":{"path":"/srv/log/web.log"}}`
	sum := sha256.Sum256([]byte(canonical))
	is.Equal(HashProgram(prog("web", priority(3), at("x.star:1:1"))), "sha256:"+hex.EncodeToString(sum[:]))
}

func TestHashFields(t *testing.T) {
	base := prog("web")
	tests := []struct {
		field   string
		change  func(*Program)
		changes bool
	}{
		{"name", func(pr *Program) { pr.Name = "api" }, true},
		{"process_name", func(pr *Program) { pr.ProcessName = "web_1" }, true},
		{"process_num", func(pr *Program) { pr.ProcessNum = 1 }, true},
		{"command", func(pr *Program) { pr.Command = append(pr.Command, "-v") }, true},
		{"directory", func(pr *Program) { pr.Directory = "/srv" }, true},
		{"env", func(pr *Program) { pr.Env = map[string]string{"A": "1"} }, true},
		{"inherit_env", func(pr *Program) { pr.InheritEnv = false }, true},
		{"user", func(pr *Program) { pr.User = "www" }, true},
		{"umask", func(pr *Program) { pr.Umask = "022" }, true},
		{"autorestart", func(pr *Program) { pr.Autorestart = RestartAlways }, false},
		{"exit_codes", func(pr *Program) { pr.ExitCodes = []int{0, 2} }, false},
		{"start_secs", func(pr *Program) { pr.StartSecs = 5 }, false},
		{"start_retries", func(pr *Program) { pr.StartRetries = -1 }, false},
		{"backoff", func(pr *Program) { pr.Backoff = BackoffExponential }, false},
		{"backoff_max", func(pr *Program) { pr.BackoffMax = Duration(time.Minute * 2) }, false},
		{"stop_signal", func(pr *Program) { pr.StopSignal = "INT" }, false},
		{"stop_timeout", func(pr *Program) { pr.StopTimeout = Duration(time.Second) }, false},
		{"stop_as_group", func(pr *Program) { pr.StopAsGroup = true }, false},
		{"kill_as_group", func(pr *Program) { pr.KillAsGroup = true }, false},
		{"memory_max", func(pr *Program) { pr.MemoryMax = 1 << 30 }, false},
		{"stdout path", func(pr *Program) { pr.Stdout.Path = "/srv/log/other.log" }, true},
		{"stdout rotation", func(pr *Program) { pr.Stdout.Backups, pr.Stdout.MaxBytes, pr.Stdout.Timestamps = 3, 1, true }, false},
		{"stdout discarded", func(pr *Program) { pr.Stdout = nil }, true},
		{"stderr", func(pr *Program) { pr.Stderr = DefaultLog("/srv/log/web.err") }, true},
		{"redirect_stderr", func(pr *Program) { pr.RedirectStderr = true }, true},
		{"priority", func(pr *Program) { pr.Priority = 1 }, false},
		{"depends_on", func(pr *Program) { pr.DependsOn = []string{"db"} }, false},
		{"ready", func(pr *Program) { pr.Ready = &Probe{Kind: ProbeTCP, Host: "127.0.0.1", Port: 80} }, false},
		{"group", func(pr *Program) { pr.Group = "web" }, true}, // STARVISOR_GROUP_NAME
		{"numprocs", func(pr *Program) { pr.Numprocs = 2 }, false},
		{"numprocs_start", func(pr *Program) { pr.NumprocsStart = 1 }, false},
		{"autostart", func(pr *Program) { pr.Autostart = false }, false},
		{"pos", func(pr *Program) { pr.Pos = "deploy.star:1:1" }, false},
		{"hash", func(pr *Program) { pr.Hash = "sha256:00" }, false},
		{"nil env is empty env", func(pr *Program) { pr.Env = nil }, false},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			is := is.New(t)
			before := HashProgram(base)
			pr := base
			pr.Stdout = new(*base.Stdout) // do not share the Log the change may edit
			tt.change(&pr)
			is.Equal(HashProgram(pr) != before, tt.changes)
		})
	}
}

// TestHashCoversProgram fails when a field is added to Program without deciding
// whether it belongs in the hash.
func TestHashCoversProgram(t *testing.T) {
	is := is.New(t)
	jsonNames := func(t reflect.Type) map[string]bool {
		out := map[string]bool{}
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			out[name] = true
		}
		return out
	}
	hashed := jsonNames(reflect.TypeFor[hashedProgram]())
	for name := range jsonNames(reflect.TypeFor[Program]()) {
		is.True(hashed[name] != hashExcluded[name]) // each Program field is hashed or excluded, not both
		delete(hashed, name)
	}
	is.Equal(len(hashed), 0)                                                   // hashedProgram has no field Program lacks
	is.Equal(len(hashedFields()), reflect.TypeFor[hashedProgram]().NumField()) // Diff compares what the hash covers
}

// hashedProgram is Program without the excluded fields: json.Marshal of it is the
// definition of the bytes HashProgram hashes. TestHashCoversProgram fails when a
// field is added to Program but neither here nor in hashExcluded, and
// TestHashMatchesJSON when appendHashed does not write it as json.Marshal would.
type hashedProgram struct {
	Name           string            `json:"name,omitempty"`
	ProcessName    string            `json:"process_name,omitempty"`
	ProcessNum     int               `json:"process_num,omitempty"`
	Group          string            `json:"group,omitempty"`
	Command        []string          `json:"command,omitempty"`
	Directory      string            `json:"directory,omitempty"`
	Env            map[string]string `json:"env,omitempty"`
	InheritEnv     bool              `json:"inherit_env,omitempty"`
	User           string            `json:"user,omitempty"`
	Umask          string            `json:"umask,omitempty"`
	Stdout         *hashedLog        `json:"stdout,omitempty"`
	Stderr         *hashedLog        `json:"stderr,omitempty"`
	RedirectStderr bool              `json:"redirect_stderr,omitempty"`
}

// hashedLog is the part of a Log the hash covers: its file.
type hashedLog struct {
	Path string `json:"path"`
}

// referenceHashed is json.Marshal of pr's hashed fields, copied by name through
// reflection so that a field added to both types is carried over too.
func referenceHashed(t testing.TB, pr Program) []byte {
	var h hashedProgram
	src, dst := reflect.ValueOf(pr), reflect.ValueOf(&h).Elem()
	for f := range dst.Type().Fields() {
		if l, ok := src.FieldByName(f.Name).Interface().(*Log); ok {
			if l != nil {
				dst.FieldByIndex(f.Index).Set(reflect.ValueOf(&hashedLog{Path: l.Path}))
			}
			continue
		}
		dst.FieldByIndex(f.Index).Set(src.FieldByName(f.Name))
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHashMatchesJSON(t *testing.T) {
	var full Program
	fill(reflect.ValueOf(&full).Elem(), "x")
	weird := prog("w<e>b&", func(pr *Program) {
		pr.Command = []string{"/bin/sh", "-c", "a && b > c < d \"quoted\" \\ \t\n\x00\x1f\x7f", "héllo ✓ 😀", "bad \xff \xc3", "\u2028\u2029"}
		pr.Env = map[string]string{"Z<": "&amp;", "A": "", "é": "\xfe"}
		pr.ExitCodes = []int{0, 2, 255}
		pr.StartRetries = -1
		pr.BackoffMax = Duration(1500 * time.Microsecond) // "1.5ms"; µs has a non-ASCII byte
		pr.StopTimeout = Duration(time.Nanosecond * 1234)
		pr.Stderr = &Log{Path: "/srv/log/<err>", MaxBytes: -1, Timestamps: true}
	})
	cases := map[string]Program{
		"zero":  {},
		"full":  full,
		"weird": weird,
		"plain": prog("web"),
		"nils":  prog("web", func(pr *Program) { pr.Stdout, pr.Env, pr.ExitCodes, pr.Command = nil, nil, nil, nil }),
	}
	for i, pr := range bigPlan(200).Programs {
		cases[fmt.Sprintf("big%d", i)] = pr
	}
	for name, pr := range cases {
		want := referenceHashed(t, pr)
		if got := appendHashed(nil, &pr); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
		if sum := sha256.Sum256(want); HashProgram(pr) != "sha256:"+hex.EncodeToString(sum[:]) {
			t.Errorf("%s: HashProgram is not the sha256 of the reference bytes", name)
		}
	}
}

func FuzzHashString(f *testing.F) {
	for _, s := range []string{"a", "<&>", "\x00", "\xff", "\u2028", `"\`, "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendHashString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendHashString(%q) = %s, want %s", s, got, want)
		}
	})
}

func BenchmarkHashProgram(b *testing.B) {
	pr := bigPlan(2).Programs[1]
	b.ReportAllocs()
	for b.Loop() {
		HashProgram(pr)
	}
}
