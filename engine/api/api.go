// Package api is starvisor's control API: HTTP with JSON bodies over a unix socket,
// versioned under /v1/. The server wraps a running supervisor; the client is what the CLI
// verbs use. Both share the request and response types below.
package api

import (
	"errors"

	"github.com/starvisor/starvisor/engine/plan"
)

// ProgramStatus is one process in `status --json` (DESIGN "The control API and CLI").
type ProgramStatus struct {
	Name     string `json:"name"`
	Group    string `json:"group"`
	State    string `json:"state"`
	Ready    bool   `json:"ready"` // RUNNING, and its ready probe (if any) passed
	Pid      int    `json:"pid"`
	ExitCode int    `json:"exit_code"`
	Restarts int    `json:"restarts"` // automatic spawns since the last start asked for (a crash loop)
	// LastRestart: what the last of them followed, and when ("exit status 2; not
	// expected, 3s ago"); "" when none.
	LastRestart string `json:"last_restart"`
	// LastRestartReason and LastRestartAt: the same apart, for scripts; the time in
	// RFC 3339 (UTC, milliseconds), "" when none.
	LastRestartReason string `json:"last_restart_reason"`
	LastRestartAt     string `json:"last_restart_at"`
	// LastWords: of a process restarted by itself, its log's last line (stderr's first)
	// as the run before ended: the crash's words, which the new run's first lines hide
	// in the file; LastWordsLog its log's path, LastWordsAt when (as LastRestartAt).
	// Empty when none.
	LastWords    string `json:"last_words,omitempty"`
	LastWordsLog string `json:"last_words_log,omitempty"`
	LastWordsAt  string `json:"last_words_at,omitempty"`
	// Since: when it entered its state, as LastRestartAt.
	Since string `json:"since"`
	// SpawnFailed: the last start attempt spawned nothing (a missing or non-executable
	// command), so its log says nothing of that failure.
	SpawnFailed bool    `json:"spawn_failed"`
	UptimeS     float64 `json:"uptime_s"`
	Description string  `json:"description"`
	// LogError: why its output is being dropped (a full or read-only log folder), as the
	// description ends with it; "" when its logs are written.
	LogError string `json:"log_error"`
	// Blocked: why it will not get ready unless someone acts (its probe gave up, or it
	// waits for a dependency that failed); "" otherwise.
	Blocked string `json:"blocked"`
	// Resuming: not up (or stopping) but to start again by itself: a start of it is
	// queued, a restart is under way. STOPPED without it stays so until someone acts.
	Resuming   bool    `json:"resuming"`
	CPUPercent float64 `json:"cpu_percent"`
	RSSBytes   uint64  `json:"rss_bytes"`
	TreeCPU    float64 `json:"tree_cpu_percent"`
	TreeRSS    uint64  `json:"tree_rss_bytes"`
	Hash       string  `json:"hash"`
}

// StatusResponse answers GET /v1/status.
type StatusResponse struct {
	Programs []ProgramStatus `json:"programs"`
	// Unknown lists the asked names (GET /v1/status?name=...) that match no process.
	Unknown []string `json:"unknown,omitempty"`
	// ReloadError: the last SIGHUP reload failed (its time and error); the programs run
	// the plan from before. "" once one succeeds.
	ReloadError string `json:"reload_error,omitempty"`
	// StateError: the daemon cannot write its state file (a full disk): should it be
	// killed, the next daemon would not find the processes it runs. "" once it can.
	StateError string `json:"state_error,omitempty"`
	// ShuttingDown: a shutdown is under way (a client waiting for processes to get ready
	// says so, not that each stopped).
	ShuttingDown bool `json:"shutting_down,omitempty"`
}

// ActionRequest asks for start, stop, restart or signal on names (process names,
// program names, "GROUP:*", "GROUP:NAME" or "all").
type ActionRequest struct {
	Names  []string `json:"names"`
	Signal string   `json:"signal,omitempty"` // only for /v1/signal
}

// Result is the outcome for one process.
type Result struct {
	Name  string `json:"name"`
	Group string `json:"group,omitempty"` // as in ProgramStatus; empty for an unknown name
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// Stopped: a restart found the process up (STARTING, RUNNING, BACKOFF) and stopped
	// it before starting it again, so the client says "stopped" then "started" as
	// supervisorctl does.
	Stopped bool `json:"stopped,omitempty"`
}

// ActionResponse answers an ActionRequest: one result per process, in start order.
type ActionResponse struct {
	Results []Result `json:"results"`
}

// ApplyRequest carries a freshly evaluated plan; the CLI evaluates the script, so the
// daemon never runs Starlark on behalf of a client.
type ApplyRequest struct {
	Plan   *plan.Plan `json:"plan"`
	DryRun bool       `json:"dry_run"`
	// Force applies even what Breaking refuses.
	Force bool `json:"force,omitempty"`
	// Expect, when set, is the hash of each process of the plan the client expects to
	// be running when this apply's turn comes (apply --rolling's previous step): another
	// apply or a reload in between refuses it (ErrPlanChanged), where the roll went on
	// and undid that one.
	Expect map[string]string `json:"expect,omitempty"`
}

// ErrPlanChanged: the running plan is not the one an ApplyRequest's Expect names.
var ErrPlanChanged = errors.New("the running plan changed under this apply (another apply, or a reload)")

// Hashes maps each process of p to its hash, as ApplyRequest.Expect takes it.
func Hashes(p *plan.Plan) map[string]string {
	out := make(map[string]string, len(p.Programs))
	for _, pr := range p.Programs {
		out[pr.ProcessName] = pr.Hash
	}
	return out
}

// ApplyResponse says what changed (or would change, with DryRun).
type ApplyResponse struct {
	Delta plan.Delta `json:"delta"`
	// Notes say what the apply does not do: supervisor() settings that differ from the
	// daemon's own, which keep until the next `up`.
	Notes []string `json:"notes,omitempty"`
	// FirstJobs (a dry run): the jobs the apply would run first, on their own, before
	// restarting what depends on them (engine.Supervisor.Apply).
	FirstJobs []string `json:"first_jobs,omitempty"`
	// Refused (a dry run): why the apply would be refused unless forced (a running
	// program would restart into a version that cannot start), so a dry run in review
	// says what the apply on merge will do.
	Refused string `json:"refused,omitempty"`
	// StateError: the daemon could not record what it runs now (a full state folder), as
	// status's state_error.
	StateError string `json:"state_error,omitempty"`
}

// PidResponse answers GET /v1/pid.
type PidResponse struct {
	Pid int `json:"pid"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}
