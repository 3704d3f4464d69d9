package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// HashProgram returns "sha256:<hex>" over every field of pr that affects how its
// process runs. apply restarts exactly the processes whose hash changed, so
// these fields are left out:
//   - hash and pos: the hash itself, and where the script declared the program
//     (moving a declaration down a file must not restart it);
//   - priority and depends_on: they decide when the process starts relative to
//     others, not what runs; changing a priority must not restart anything;
//   - ready: it says when dependents may start, not how this process runs;
//   - group: it is how the CLI addresses processes ("web:*").
//
// The encoding is the JSON of hashedProgram: fields in a fixed order, map keys
// sorted by encoding/json, and every field omitempty, so that a field added to
// Program later, while at its zero value, leaves every existing hash unchanged
// and upgrading starvisor does not restart everything.
func HashProgram(pr Program) string {
	b, err := json.Marshal(hashedProgram{
		Name: pr.Name, ProcessName: pr.ProcessName, ProcessNum: pr.ProcessNum,
		Command: pr.Command, Directory: pr.Directory, Env: pr.Env, InheritEnv: pr.InheritEnv,
		User: pr.User, Umask: pr.Umask, Autostart: pr.Autostart, Autorestart: pr.Autorestart,
		ExitCodes: pr.ExitCodes, StartSecs: pr.StartSecs, StartRetries: pr.StartRetries,
		Backoff: pr.Backoff, BackoffMax: pr.BackoffMax, StopSignal: pr.StopSignal,
		StopTimeout: pr.StopTimeout, StopAsGroup: pr.StopAsGroup, KillAsGroup: pr.KillAsGroup,
		Numprocs: pr.Numprocs, NumprocsStart: pr.NumprocsStart,
		Stdout: pr.Stdout, Stderr: pr.Stderr, RedirectStderr: pr.RedirectStderr,
	})
	if err != nil {
		// Only strings, numbers, bools, maps of strings and Durations: cannot fail.
		panic("plan: HashProgram: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// hashedProgram is Program without the excluded fields. TestHashCoversProgram
// fails when a field is added to Program but neither here nor in hashExcluded.
type hashedProgram struct {
	Name           string            `json:"name,omitempty"`
	ProcessName    string            `json:"process_name,omitempty"`
	ProcessNum     int               `json:"process_num,omitempty"`
	Command        []string          `json:"command,omitempty"`
	Directory      string            `json:"directory,omitempty"`
	Env            map[string]string `json:"env,omitempty"`
	InheritEnv     bool              `json:"inherit_env,omitempty"`
	User           string            `json:"user,omitempty"`
	Umask          string            `json:"umask,omitempty"`
	Autostart      bool              `json:"autostart,omitempty"`
	Autorestart    string            `json:"autorestart,omitempty"`
	ExitCodes      []int             `json:"exit_codes,omitempty"`
	StartSecs      int               `json:"start_secs,omitempty"`
	StartRetries   int               `json:"start_retries,omitempty"`
	Backoff        string            `json:"backoff,omitempty"`
	BackoffMax     Duration          `json:"backoff_max,omitempty"`
	StopSignal     string            `json:"stop_signal,omitempty"`
	StopTimeout    Duration          `json:"stop_timeout,omitempty"`
	StopAsGroup    bool              `json:"stop_as_group,omitempty"`
	KillAsGroup    bool              `json:"kill_as_group,omitempty"`
	Numprocs       int               `json:"numprocs,omitempty"`
	NumprocsStart  int               `json:"numprocs_start,omitempty"`
	Stdout         *Log              `json:"stdout,omitempty"`
	Stderr         *Log              `json:"stderr,omitempty"`
	RedirectStderr bool              `json:"redirect_stderr,omitempty"`
}

// hashExcluded are the JSON names of the Program fields HashProgram leaves out.
var hashExcluded = map[string]bool{
	"hash": true, "pos": true, "priority": true, "depends_on": true, "ready": true, "group": true,
}
