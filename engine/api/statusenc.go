package api

import (
	"math"
	"strconv"

	"github.com/starvisor/starvisor/engine/plan"
)

// appendStatus writes r exactly as encoding/json's Encoder does with HTML escaping off,
// newline included, without reflection: the daemon answers `status` for every CLI run,
// and this is a third of json.Marshal's cost. TestAppendStatusMatchesEncodingJSON holds
// it to encoding/json, for every field, so a field added to ProgramStatus but not here
// fails the tests.
func appendStatus(b []byte, r StatusResponse) []byte {
	b = append(b, `{"programs":`...)
	if r.Programs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Programs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendProgramStatus(b, &r.Programs[i])
		}
		b = append(b, ']')
	}
	if len(r.Unknown) > 0 { // omitempty
		b = append(b, `,"unknown":[`...)
		for i, u := range r.Unknown {
			if i > 0 {
				b = append(b, ',')
			}
			b = plan.AppendJSONString(b, u)
		}
		b = append(b, ']')
	}
	if r.ReloadError != "" { // omitempty
		b = append(b, `,"reload_error":`...)
		b = plan.AppendJSONString(b, r.ReloadError)
	}
	if r.StateError != "" { // omitempty
		b = append(b, `,"state_error":`...)
		b = plan.AppendJSONString(b, r.StateError)
	}
	if r.ShuttingDown { // omitempty
		b = append(b, `,"shutting_down":true`...)
	}
	return append(b, '}', '\n')
}

func appendProgramStatus(b []byte, p *ProgramStatus) []byte {
	b = append(b, `{"name":`...)
	b = plan.AppendJSONString(b, p.Name)
	b = append(b, `,"group":`...)
	b = plan.AppendJSONString(b, p.Group)
	b = append(b, `,"state":`...)
	b = plan.AppendJSONString(b, p.State)
	b = append(b, `,"ready":`...)
	b = strconv.AppendBool(b, p.Ready)
	b = append(b, `,"pid":`...)
	b = strconv.AppendInt(b, int64(p.Pid), 10)
	b = append(b, `,"exit_code":`...)
	b = strconv.AppendInt(b, int64(p.ExitCode), 10)
	b = append(b, `,"restarts":`...)
	b = strconv.AppendInt(b, int64(p.Restarts), 10)
	b = append(b, `,"last_restart":`...)
	b = plan.AppendJSONString(b, p.LastRestart)
	b = append(b, `,"last_restart_reason":`...)
	b = plan.AppendJSONString(b, p.LastRestartReason)
	b = append(b, `,"last_restart_at":`...)
	b = plan.AppendJSONString(b, p.LastRestartAt)
	if p.LastWords != "" { // omitempty
		b = append(b, `,"last_words":`...)
		b = plan.AppendJSONString(b, p.LastWords)
		b = append(b, `,"last_words_log":`...)
		b = plan.AppendJSONString(b, p.LastWordsLog)
		b = append(b, `,"last_words_at":`...)
		b = plan.AppendJSONString(b, p.LastWordsAt)
	}
	b = append(b, `,"since":`...)
	b = plan.AppendJSONString(b, p.Since)
	b = append(b, `,"spawn_failed":`...)
	b = strconv.AppendBool(b, p.SpawnFailed)
	b = append(b, `,"uptime_s":`...)
	b = appendFloat(b, p.UptimeS)
	b = append(b, `,"description":`...)
	b = plan.AppendJSONString(b, p.Description)
	b = append(b, `,"log_error":`...)
	b = plan.AppendJSONString(b, p.LogError)
	b = append(b, `,"blocked":`...)
	b = plan.AppendJSONString(b, p.Blocked)
	b = append(b, `,"resuming":`...)
	b = strconv.AppendBool(b, p.Resuming)
	b = append(b, `,"cpu_percent":`...)
	b = appendFloat(b, p.CPUPercent)
	b = append(b, `,"rss_bytes":`...)
	b = strconv.AppendUint(b, p.RSSBytes, 10)
	b = append(b, `,"tree_cpu_percent":`...)
	b = appendFloat(b, p.TreeCPU)
	b = append(b, `,"tree_rss_bytes":`...)
	b = strconv.AppendUint(b, p.TreeRSS, 10)
	b = append(b, `,"hash":`...)
	b = plan.AppendJSONString(b, p.Hash)
	return append(b, '}')
}

// appendFloat formats f as encoding/json does: shortest representation, exponent form
// below 1e-6 and from 1e21. NaN and infinities, which encoding/json refuses (failing the
// whole answer), are written as 0.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-07 -> e-7, as encoding/json writes it
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
