package api

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/matryer/is"
)

// statusSample is a response as the daemon writes it, every field set.
func statusSample(t testing.TB) []byte {
	r := StatusResponse{
		Programs: []ProgramStatus{
			{Name: "web", Group: "web", State: "RUNNING", Ready: true, Pid: 4242, UptimeS: 61.5,
				Description: "pid 4242, uptime 0:01:01", CPUPercent: 12.25, RSSBytes: 1 << 20,
				TreeCPU: 30.5, TreeRSS: 3 << 20, Hash: "sha256:abc"},
			{Name: "w_1", Group: "workers", State: "EXITED", ExitCode: 3,
				Description: "Exited too quickly (process log may have details)"},
			{Name: "ünï", Group: "ünï", State: "FATAL", Description: "can't find command x <&>"},
		},
		Unknown:     []string{"nope", "x:*"},
		ReloadError: "2026-11-27 01:00:00: deploy.star:1:8: bad",
		StateError:  "state file run/state.json: no space left on device",
	}
	rec := httptest.NewRecorder()
	writeJSON(rec, 200, r) // as the daemon writes it
	return rec.Body.Bytes()
}

// sameAsEncodingJSON decodes data both ways and fails unless the results and the
// success agree.
func sameAsEncodingJSON(t *testing.T, data []byte) {
	t.Helper()
	var want, got StatusResponse
	wantErr := json.Unmarshal(data, &want)
	gotErr := decodeStatus(data, &got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%q: encoding/json error %v, decodeStatus error %v", data, wantErr, gotErr)
	}
	if wantErr == nil && !reflect.DeepEqual(want, got) {
		t.Fatalf("%q:\nencoding/json %+v\ndecodeStatus  %+v", data, want, got)
	}
}

// fastPath tells whether the scanner alone reads data.
func fastPath(data []byte) bool {
	var r StatusResponse
	s := newScanner(data)
	return s.statusResponse(&r) && s.end()
}

func TestDecodeStatusReadsTheDaemonsOutputOnTheFastPath(t *testing.T) {
	is := is.New(t)
	data := statusSample(t)
	is.True(fastPath(data)) // the daemon's own encoding never needs the slow path
	sameAsEncodingJSON(t, data)
	var r StatusResponse
	is.NoErr(decodeStatus(data, &r))
	is.Equal(len(r.Programs), 3)
	is.Equal(r.Programs[0].Pid, 4242)
	is.Equal(r.Programs[0].TreeRSS, uint64(3<<20))
	is.Equal(r.Programs[2].Description, "can't find command x <&>")

	is.Equal(r.Unknown, []string{"nope", "x:*"})

	escaped := []byte(`{"programs":[{"name":"a\"b\u00e9"}]}`) // left to encoding/json
	is.True(!fastPath(escaped))
	is.NoErr(decodeStatus(escaped, &r))
	is.Equal(r.Programs[0].Name, "a\"bé")
}

func TestDecodeStatusAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range []string{
		`{"programs":[]}`, `{}`, ` { "programs" : [ { "name" : "a" } ] } `, `{"programs":null}`,
		`{"programs":[{"name":"a","pid":1}],"programs":[{"state":"RUNNING"}]}`, // repeated member
		`{"programs":[{"name":"a","name":"b"}]}`,
		`{"programs":[{"Name":"a"}]}`, // encoding/json matches keys without case
		`{"programs":[{"pid":1.5}]}`, `{"programs":[{"pid":1e2}]}`, `{"programs":[{"pid":-0}]}`,
		`{"programs":[{"pid":01}]}`, `{"programs":[{"pid":+1}]}`, `{"programs":[{"uptime_s":.5}]}`,
		`{"programs":[{"uptime_s":1e400}]}`, `{"programs":[{"rss_bytes":-1}]}`,
		`{"programs":[{"pid":99999999999999999999}]}`, `{"programs":[{"name":"a\u00e9"}]}`,
		"{\"programs\":[{\"name\":\"\xff\"}]}", "{\"programs\":[{\"name\":\"a\tb\"}]}",
		`{"programs":[{"name":null}]}`, `{"programs":[{"extra":{"x":[1,2]}}]}`,
		`{"programs":[{}],}`, `{"programs":[{},]}`, `{"programs":[{}]} x`, `{"unknown":["a",1]}`,
		`[]`, `null`, ``, `{"programs":[{"name":"a"}`,
	} {
		sameAsEncodingJSON(t, []byte(s))
	}
}

// FuzzDecodeStatus holds the fast decoder to encoding/json on any input.
//
//	go test -run '^$' -fuzz FuzzDecodeStatus -fuzztime 5m ./engine/api
func FuzzDecodeStatus(f *testing.F) {
	f.Add(statusSample(f))
	f.Add([]byte(`{"programs":[{"name":"a","pid":1,"uptime_s":1.5e3}],"unknown":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) { sameAsEncodingJSON(t, data) })
}

func BenchmarkDecodeStatus200(b *testing.B) {
	r := StatusResponse{}
	for i := range 200 {
		r.Programs = append(r.Programs, ProgramStatus{Name: "sleep" + string(rune('a'+i%26)), Group: "g",
			State: "RUNNING", Pid: 20000 + i, UptimeS: 40.752056509, Description: "pid 20692, uptime 0:00:40",
			RSSBytes: 1560576, TreeRSS: 1560576, Hash: "sha256:3f82acaba6809df3731ba8360495f44b4be06945ce6051dc759dec89c3c2ae5c"})
	}
	data, _ := json.Marshal(r)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var out StatusResponse
		if err := decodeStatus(data, &out); err != nil {
			b.Fatal(err)
		}
	}
}
