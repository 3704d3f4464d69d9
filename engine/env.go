package engine

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/starvisor/starvisor/engine/plan"
)

// Environment variables the engine sets for every process (supervisord sets the same as
// SUPERVISOR_PROCESS_NAME and SUPERVISOR_GROUP_NAME).
const (
	EnvProcessName = "STARVISOR_PROCESS_NAME"
	EnvProcessNum  = "STARVISOR_PROCESS_NUM"
	EnvGroupName   = "STARVISOR_GROUP_NAME"
	// EnvDaemon names the daemon that started the process (Options.Daemon): the next
	// daemon of the bundle finds by it a child this one spawned but had not recorded
	// in its state file when it died.
	EnvDaemon = "STARVISOR_DAEMON"
)

// ProbeName is the name an exec ready probe's command runs under (its
// STARVISOR_PROCESS_NAME, its cgroup's name): no program's, as "/" is in none.
func ProbeName(process string) string { return process + "/ready" }

// buildEnv is a process's environment: base (the daemon's, when inherit_env), then the
// program's env in key order, then the STARVISOR_* names (STARVISOR_DAEMON only when
// daemon is not ""). A later key overrides an earlier one and keeps the earlier one's
// position, so the result has no duplicate keys.
// DefaultPath is the PATH of a program that inherits no environment and sets none, when
// the daemon has none either: systemd's default for its services.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func buildEnv(pr plan.Program, base []string, daemon string) []string {
	var src []string
	if pr.InheritEnv {
		src = append(src, base...)
	} else if _, ok := pr.Env["PATH"]; !ok {
		// The daemon's PATH, which found the command itself (systemd's default when it
		// has none): with no PATH, sh -c "python3 app.py" found nothing.
		path := DefaultPath
		for _, kv := range base {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				path = v
			}
		}
		src = append(src, "PATH="+path)
	}
	for _, k := range slices.Sorted(maps.Keys(pr.Env)) {
		src = append(src, k+"="+pr.Env[k])
	}
	group := pr.Group
	if group == "" {
		group = pr.Name // supervisord: a lone program is its own group
	}
	src = append(src,
		EnvProcessName+"="+pr.ProcessName,
		EnvProcessNum+"="+strconv.Itoa(pr.ProcessNum),
		EnvGroupName+"="+group)
	if daemon != "" {
		src = append(src, EnvDaemon+"="+daemon)
	}

	out := make([]string, 0, len(src))
	at := make(map[string]int, len(src))
	for _, kv := range src {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue // not KEY=VALUE; exec would not pass it on either
		}
		if i, seen := at[k]; seen {
			out[i] = kv
			continue
		}
		at[k] = len(out)
		out = append(out, kv)
	}
	return out
}
