package api

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodeStatus reads a /v1/status body. Every CLI start of `status` decodes one, and
// encoding/json spent ~2 ms on 200 processes in a fresh process (reflection caches
// built cold); this scanner reads the shape the daemon writes in a single pass and
// hands anything else (escapes, unknown or mis-typed members, invalid UTF-8) to
// encoding/json, so the result is always what json.Unmarshal gives. FuzzDecodeStatus
// holds it to that.
func decodeStatus(data []byte, r *StatusResponse) error {
	var fast StatusResponse
	s := newScanner(data)
	if s.statusResponse(&fast) && s.end() {
		*r = fast
		return nil
	}
	*r = StatusResponse{}
	return json.Unmarshal(data, r)
}

// bodyDecoder is an answer type with a decoder of its own, which the client uses
// instead of encoding/json.
type bodyDecoder interface{ decodeBody(data []byte) error }

func (r *StatusResponse) decodeBody(data []byte) error { return decodeStatus(data, r) }

// scanner walks JSON bytes; each method reports false at the first byte it does not
// expect, and the caller gives up on the fast path.
type scanner struct {
	b   []byte
	src string // b as one string: the strings read are slices of it, not an allocation each
	i   int
}

func newScanner(data []byte) scanner { return scanner{b: data, src: string(data)} }

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and consumes c if it comes next.
func (s *scanner) next(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// str reads a string with no escapes and valid UTF-8.
func (s *scanner) str() (string, bool) {
	if !s.next('"') {
		return "", false
	}
	start, ascii := s.i, true
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.src[start:s.i]
			s.i++
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// number returns the bytes of a JSON number, checked by strconv by the caller.
func (s *scanner) number() []byte {
	s.ws()
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			s.i++
		default:
			return s.b[start:s.i]
		}
	}
	return s.b[start:s.i]
}

// validNumber is JSON's number grammar, which strconv is laxer than ("+1", "01", ".5").
func validNumber(n []byte) bool {
	i := 0
	if i < len(n) && n[i] == '-' {
		i++
	}
	switch {
	case i < len(n) && n[i] == '0':
		i++
	case i < len(n) && n[i] >= '1' && n[i] <= '9':
		for i < len(n) && n[i] >= '0' && n[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(n) && n[i] == '.' {
		i++
		if i == len(n) || n[i] < '0' || n[i] > '9' {
			return false
		}
		for i < len(n) && n[i] >= '0' && n[i] <= '9' {
			i++
		}
	}
	if i < len(n) && (n[i] == 'e' || n[i] == 'E') {
		i++
		if i < len(n) && (n[i] == '+' || n[i] == '-') {
			i++
		}
		if i == len(n) || n[i] < '0' || n[i] > '9' {
			return false
		}
		for i < len(n) && n[i] >= '0' && n[i] <= '9' {
			i++
		}
	}
	return i == len(n)
}

func (s *scanner) int() (int, bool) {
	n := s.number()
	v, err := strconv.ParseInt(string(n), 10, strconv.IntSize)
	return int(v), err == nil && validNumber(n)
}

func (s *scanner) uint() (uint64, bool) {
	n := s.number()
	v, err := strconv.ParseUint(string(n), 10, 64)
	return v, err == nil && validNumber(n)
}

// boolean reads true or false.
func (s *scanner) boolean() (bool, bool) {
	s.ws()
	for _, lit := range []string{"true", "false"} {
		if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
			s.i += len(lit)
			return lit == "true", true
		}
	}
	return false, false
}

func (s *scanner) float() (float64, bool) {
	n := s.number()
	v, err := strconv.ParseFloat(string(n), 64)
	return v, err == nil && validNumber(n)
}

// object reads {"key": value, ...}, calling member for each key with the scanner at the
// value.
func (s *scanner) object(member func(key string) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		k, ok := s.str()
		if !ok || !s.next(':') || !member(k) {
			return false
		}
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// array reads [v, ...], calling elem with the scanner at each value.
func (s *scanner) array(elem func() bool) bool {
	if !s.next('[') {
		return false
	}
	if s.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.next(']') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

func (s *scanner) statusResponse(r *StatusResponse) bool {
	// A repeated member is left to encoding/json, which decodes the second array into the
	// first one's elements rather than into fresh ones.
	var programs, unknown, reload, state, shutting bool
	return s.object(func(key string) (ok bool) {
		switch {
		case key == "programs" && !programs:
			programs = true
			// One allocation, not a doubling series: every process has a "name".
			r.Programs = make([]ProgramStatus, 0, bytes.Count(s.b[s.i:], []byte(`"name"`)))
			return s.array(func() bool {
				r.Programs = append(r.Programs, ProgramStatus{})
				return s.programStatus(&r.Programs[len(r.Programs)-1])
			})
		case key == "unknown" && !unknown:
			unknown = true
			r.Unknown = []string{}
			return s.array(func() bool {
				v, ok := s.str()
				r.Unknown = append(r.Unknown, v)
				return ok
			})
		case key == "reload_error" && !reload:
			reload = true
			r.ReloadError, ok = s.str()
			return ok
		case key == "state_error" && !state:
			state = true
			r.StateError, ok = s.str()
			return ok
		case key == "shutting_down" && !shutting:
			shutting = true
			r.ShuttingDown, ok = s.boolean()
			return ok
		}
		return false
	})
}

func (s *scanner) programStatus(p *ProgramStatus) bool {
	return s.object(func(key string) (ok bool) {
		switch key {
		case "name":
			p.Name, ok = s.str()
		case "group":
			p.Group, ok = s.str()
		case "state":
			p.State, ok = s.str()
		case "ready":
			p.Ready, ok = s.boolean()
		case "pid":
			p.Pid, ok = s.int()
		case "exit_code":
			p.ExitCode, ok = s.int()
		case "restarts":
			p.Restarts, ok = s.int()
		case "last_restart":
			p.LastRestart, ok = s.str()
		case "last_restart_reason":
			p.LastRestartReason, ok = s.str()
		case "last_restart_at":
			p.LastRestartAt, ok = s.str()
		case "last_words":
			p.LastWords, ok = s.str()
		case "last_words_log":
			p.LastWordsLog, ok = s.str()
		case "last_words_at":
			p.LastWordsAt, ok = s.str()
		case "since":
			p.Since, ok = s.str()
		case "spawn_failed":
			p.SpawnFailed, ok = s.boolean()
		case "uptime_s":
			p.UptimeS, ok = s.float()
		case "description":
			p.Description, ok = s.str()
		case "log_error":
			p.LogError, ok = s.str()
		case "blocked":
			p.Blocked, ok = s.str()
		case "resuming":
			p.Resuming, ok = s.boolean()
		case "cpu_percent":
			p.CPUPercent, ok = s.float()
		case "rss_bytes":
			p.RSSBytes, ok = s.uint()
		case "tree_cpu_percent":
			p.TreeCPU, ok = s.float()
		case "tree_rss_bytes":
			p.TreeRSS, ok = s.uint()
		case "hash":
			p.Hash, ok = s.str()
		}
		return ok
	})
}
