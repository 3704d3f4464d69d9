package api

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// encodingJSON is what writeJSON's encoder would write.
func encodingJSON(t testing.TB, r StatusResponse) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAppendStatusMatchesEncodingJSON(t *testing.T) {
	full := ProgramStatus{Name: "web", Group: "g", State: "RUNNING", Ready: true, Pid: 1, ExitCode: -2, Restarts: 3, UptimeS: 1.5,
		Description: "pid 1", LogError: "write /l/a.log: no space left on device", Blocked: "not ready: x", Resuming: true, LastRestart: "exit status 2, 1s ago", LastRestartReason: "exit status 2", LastRestartAt: "2026-11-26T23:30:01.123Z", LastWords: "boom \"x\"", LastWordsLog: "/b/log/a.log", LastWordsAt: "2026-11-26T23:30:01.100Z", Since: "2026-11-26T23:30:02.000Z", SpawnFailed: true, CPUPercent: 0.1, RSSBytes: 3, TreeCPU: 1e-7, TreeRSS: 5, Hash: "sha256:x"}
	v := reflect.ValueOf(full)
	for i := range v.NumField() { // a field added to ProgramStatus must be set here, and so encoded
		if v.Field(i).IsZero() {
			t.Fatalf("full leaves %s unset", v.Type().Field(i).Name)
		}
	}
	odd := full
	odd.Name = "a\"b\\c\n\t\x01\x7f<&>\u2028\u2029é\xff"
	odd.Description = "Exited too quickly (process log may have details)"
	for _, r := range []StatusResponse{
		{}, {Programs: []ProgramStatus{}}, {Programs: []ProgramStatus{full, odd, {}}},
		{Programs: []ProgramStatus{full}, Unknown: []string{"nope", "x:*"}},
		{Unknown: []string{}},
		{Programs: []ProgramStatus{full}, ReloadError: "2026-11-27 01:00:00: a \"b\"", StateError: "state file run/state.json: no space left on device"},
	} {
		for _, f := range []float64{0, -0.5, 1e-6, 1e-7, 123456789.125, 1e20, 1e21, 1e22, -3e-9, math.MaxFloat64} {
			if len(r.Programs) > 0 {
				r.Programs[0].UptimeS, r.Programs[0].CPUPercent = f, -f
			}
			want := encodingJSON(t, r)
			if got := appendStatus(nil, r); !bytes.Equal(got, want) {
				t.Fatalf("appendStatus:\n%s\nencoding/json:\n%s", got, want)
			}
		}
	}
}

// NaN or an infinity (a CPU figure computed over no time) must not break the answer.
func TestAppendStatusWritesNonFiniteAsZero(t *testing.T) {
	r := StatusResponse{Programs: []ProgramStatus{{Name: "a", CPUPercent: math.NaN(), TreeCPU: math.Inf(1)}}}
	var back StatusResponse
	if err := json.Unmarshal(appendStatus(nil, r), &back); err != nil {
		t.Fatal(err)
	}
	if back.Programs[0].CPUPercent != 0 || back.Programs[0].TreeCPU != 0 {
		t.Fatalf("got %+v", back.Programs[0])
	}
}

// FuzzAppendStatus holds the encoder to encoding/json for any strings and numbers.
//
//	go test -run '^$' -fuzz FuzzAppendStatus -fuzztime 5m ./engine/api
func FuzzAppendStatus(f *testing.F) {
	f.Add("web", "pid 1, uptime 0:00:01", 1.5, int64(7), uint64(9))
	f.Add("a\"\x00\u2028\xff", "<&>", 1e-9, int64(-1), uint64(1<<63))
	f.Fuzz(func(t *testing.T, name, desc string, x float64, n int64, u uint64) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		r := StatusResponse{Programs: []ProgramStatus{{Name: name, Group: desc, State: name,
			Pid: int(n), ExitCode: int(n >> 3), Restarts: int(n >> 5), UptimeS: x, Description: desc, CPUPercent: -x,
			RSSBytes: u, TreeCPU: x / 3, TreeRSS: u >> 1, Hash: desc}}, Unknown: []string{name, desc}}
		if got, want := appendStatus(nil, r), encodingJSON(t, r); !bytes.Equal(got, want) {
			t.Fatalf("appendStatus:\n%s\nencoding/json:\n%s", got, want)
		}
	})
}
