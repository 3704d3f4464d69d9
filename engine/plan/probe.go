package plan

import (
	"net/url"
	"strings"
)

// checkProbe checks the ready probe: a known kind with the fields that kind needs.
func checkProbe(ps *problems, pr *Program) {
	r := pr.Ready
	if r == nil {
		return
	}
	switch r.Kind {
	case ProbeTCP:
		if r.Port < 1 || r.Port > 65535 {
			ps.program(pr, "ready", "tcp port must be 1..65535, got %d", r.Port)
		}
		if r.Host == "" {
			ps.program(pr, "ready", "tcp host is empty")
		}
	case ProbeHTTP:
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ps.program(pr, "ready", "http url must be an absolute http:// or https:// URL, got %q", r.URL)
		}
		if r.Status != 0 && (r.Status < 100 || r.Status > 599) {
			ps.program(pr, "ready", "http status must be 100..599, got %d", r.Status)
		}
	case ProbeExec:
		if len(r.Command) == 0 || r.Command[0] == "" {
			ps.program(pr, "ready", "exec command is empty")
		}
		for i, a := range r.Command {
			if strings.IndexByte(a, 0) >= 0 {
				ps.program(pr, "ready", "exec command argument %d contains a NUL byte", i)
			}
		}
	case ProbeLog:
		if r.Pattern == "" {
			ps.program(pr, "ready", "log pattern is empty")
		}
		if pr.Stdout == nil || pr.Stdout.Path == "" {
			ps.program(pr, "ready", "probe.log reads the stdout log, and stdout is None")
		}
	case ProbeExited:
		if pr.Autorestart == RestartAlways {
			ps.program(pr, "ready", "probe.exited() makes a job that dependents wait for, and autorestart = True would run it again and again; use \"unexpected\" (retry a failure) or False")
		}
	default:
		ps.program(pr, "ready", "want kind tcp, http, exec, log or exited, got %q", r.Kind)
	}
	if r.Interval < 0 {
		ps.program(pr, "ready", "interval must not be negative, got %s", r.Interval)
	}
	if r.Timeout < 0 {
		ps.program(pr, "ready", "timeout must not be negative, got %s", r.Timeout)
	}
}

// Redacted is url with the password in it, if any, shown as xxxxx: a probe's URL goes
// into the plan table, status and the daemon's log, which others may read.
func Redacted(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	return u.Redacted()
}
