// Package plan holds the plan: the plain data a deploy script evaluates to and the engine
// runs. It is the only thing that crosses from the Starlark side to the engine, so it has
// no behaviour beyond validation, ordering, hashing and diffing.
package plan

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Format is the version of the plan's JSON form.
const Format = 1

// Plan is a whole deployment: daemon settings and one entry per process.
type Plan struct {
	Format     int        `json:"format"`
	Entry      string     `json:"entry"` // entry script, relative to Root
	Root       string     `json:"root"`  // absolute folder of the entry script
	Supervisor Supervisor `json:"supervisor"`
	Programs   []Program  `json:"programs"` // one per process, in start order
	Groups     []Group    `json:"groups"`
	Inputs     Inputs     `json:"inputs"`
}

// Supervisor holds daemon-wide settings; every path is absolute.
type Supervisor struct {
	Socket   string `json:"socket"`
	Pidfile  string `json:"pidfile"`
	LogDir   string `json:"log_dir"`
	StateDir string `json:"state_dir"`
	// MinFDs: the programs' open-files limit is at least this (supervisord's minfds); 0
	// leaves them the limit the daemon was started with.
	MinFDs int `json:"minfds,omitempty"`
	// Pos: where supervisor() was called ("file:line:col"), when it was, for messages
	// about these settings. Not in the JSON: a daemon started by an older binary refuses
	// a plan with a field it does not know (an apply, a reload), and nothing that reads
	// a plan back needs it.
	Pos string `json:"-"`
}

// Group is a named set of programs addressed as "NAME:*".
type Group struct {
	Name     string   `json:"name"`
	Programs []string `json:"programs"` // program names (not process names)
	Priority int      `json:"priority"`
	Pos      string   `json:"pos,omitempty"`
}

// Inputs records what evaluation depended on, so a plan says why it is what it is.
type Inputs struct {
	Files map[string]string `json:"files"` // path relative to Root (or @lib//path) -> sha256
	Env   map[string]string `json:"env"`   // host values read by the script
	// Unset: the variables among Env's keys that were not set at all (Env holds "" for
	// them), sorted: a reload evaluates with them unset, not set empty.
	Unset []string `json:"unset,omitempty"`
	// Libs: the library roots the script was evaluated with (--lib, STARVISOR_LIBS),
	// name -> absolute folder: a reload evaluates with them too.
	Libs map[string]string `json:"libs,omitempty"`
}

// Value is variable k as the script read it: its value, and whether it was set.
func (in *Inputs) Value(k string) (string, bool) {
	return in.Env[k], !slices.Contains(in.Unset, k)
}

// EnvDiff words variable k read as now where it was was (each a value and whether it
// was set), for a note: K="new" (label: "old"). A secret's values, by its name or a
// password in a URL, are not shown (DB_PASSWORD: another value (label: another;
// not shown: a secret, by its name)): the notes go to a deploy's CI log and the
// daemon's log, which its plan.json keeps them out of.
func EnvDiff(k string, now string, nowSet bool, was string, wasSet bool, label string) string {
	if (nowSet && SecretValue(k, now)) || (wasSet && SecretValue(k, was)) {
		if nowSet && wasSet {
			return fmt.Sprintf("%s: another value (not shown: a secret, by its name or its value)", k)
		}
		show := map[bool]string{true: "set", false: "unset"}
		return fmt.Sprintf("%s %s (%s: %s; not shown: a secret, by its name or its value)", k, show[nowSet], label, show[wasSet])
	}
	return fmt.Sprintf("%s=%s (%s: %s)", k, envShown(now, nowSet), label, envShown(was, wasSet))
}

// EnvShown is variable k's value for a note: quoted, unset, or not shown for a secret.
func EnvShown(k, v string, set bool) string {
	if set && SecretValue(k, v) {
		return "(set; not shown: a secret, by its name or its value)"
	}
	return envShown(v, set)
}

func envShown(v string, set bool) string {
	if !set {
		return "unset"
	}
	return strconv.Quote(v)
}

// secretParts are the words of a variable's name (split at _ - .) that say it holds a
// secret: DB_PASSWORD, API_TOKEN, GITHUB_PAT, AWS_SECRET_ACCESS_KEY; whole words, so
// MONKEY_MODE and DESIGN_DIR are not. secretEnds: run together with another (DBPASSWORD).
var (
	secretParts = []string{"PASS", "PASSWORD", "PASSWD", "PASSPHRASE", "PWD", "PW", "SECRET", "SECRETS",
		"TOKEN", "TOKENS", "KEY", "KEYS", "APIKEY", "CRED", "CREDS", "CREDENTIAL", "CREDENTIALS", "AUTH",
		"PRIVATE", "CERT", "SALT", "SESSION", "COOKIE", "SIGNATURE", "DSN", "PAT", "OTP"}
	secretEnds  = []string{"PASSWORD", "PASSWD", "TOKEN", "SECRET", "APIKEY"}
	secretValue = regexp.MustCompile(`(?i)(^|[\s;&?])(password|passwd|pwd|secret|token|access_token|api_key|apikey|sig|signature)=`)
)

// SecretValue says whether variable k, valued v, reads as a secret: by a word of its
// name, a URL with a password in it, or a password=/token= in a connection string or a
// URL's query.
func SecretValue(k, v string) bool {
	for _, part := range strings.FieldsFunc(strings.ToUpper(k), func(r rune) bool { return r == '_' || r == '-' || r == '.' }) {
		if slices.Contains(secretParts, part) || slices.ContainsFunc(secretEnds, func(e string) bool { return strings.HasSuffix(part, e) }) {
			return true
		}
	}
	if _, rest, ok := strings.Cut(v, "://"); ok {
		authority, _, _ := strings.Cut(rest, "/")
		userinfo, _, at := strings.Cut(authority, "@")
		if at && strings.Contains(userinfo, ":") {
			return true
		}
	}
	return secretValue.MatchString(v)
}

// Restart policies, as supervisord spells autorestart.
const (
	RestartAlways     = "true"
	RestartNever      = "false"
	RestartUnexpected = "unexpected"
)

// Back-off shapes between start retries.
const (
	BackoffLinear      = "linear"
	BackoffExponential = "exponential"
)

// Program is one process to run. Fields in JSON order; see DESIGN.md "The plan".
type Program struct {
	Name           string            `json:"name"`
	ProcessName    string            `json:"process_name"`
	ProcessNum     int               `json:"process_num"`
	Group          string            `json:"group"`
	Command        []string          `json:"command"`
	Directory      string            `json:"directory"`
	Env            map[string]string `json:"env"`
	InheritEnv     bool              `json:"inherit_env"`
	User           string            `json:"user"`
	Umask          string            `json:"umask"` // octal string such as "022"; "" keeps the daemon's
	Autostart      bool              `json:"autostart"`
	Autorestart    string            `json:"autorestart"`
	ExitCodes      []int             `json:"exit_codes"`
	StartSecs      int               `json:"start_secs"`
	StartRetries   int               `json:"start_retries"` // -1: retry forever
	Backoff        string            `json:"backoff"`
	BackoffMax     Duration          `json:"backoff_max"`
	StopSignal     string            `json:"stop_signal"`
	StopTimeout    Duration          `json:"stop_timeout"`
	StopAsGroup    bool              `json:"stop_as_group"`
	KillAsGroup    bool              `json:"kill_as_group"`
	MemoryMax      int64             `json:"memory_max"` // bytes of the process tree's RSS after which it is restarted; 0: no limit
	Priority       int               `json:"priority"`
	Numprocs       int               `json:"numprocs"`
	NumprocsStart  int               `json:"numprocs_start"`
	Stdout         *Log              `json:"stdout"`
	Stderr         *Log              `json:"stderr"`
	RedirectStderr bool              `json:"redirect_stderr"`
	DependsOn      []string          `json:"depends_on"` // program names
	Ready          *Probe            `json:"ready"`
	Pos            string            `json:"pos,omitempty"` // "file:line:col" of the declaring call, file relative to Root
	Hash           string            `json:"hash"`
}

// Log says where one stream of a process goes.
type Log struct {
	Path       string `json:"path"`
	MaxBytes   int64  `json:"max_bytes"` // 0: never rotate
	Backups    int    `json:"backups"`
	Timestamps bool   `json:"timestamps"`
}

// Probe kinds.
const (
	ProbeTCP  = "tcp"
	ProbeHTTP = "http"
	ProbeExec = "exec"
	ProbeLog  = "log"
	// ProbeExited marks a job: ready once it has exited with one of its exit_codes, so
	// its dependents start after it completed (a migration before the app).
	ProbeExited = "exited"
)

// IsJob says whether the program is a job (ready = probe.exited()): done once it exited
// with one of its exit_codes.
func (pr *Program) IsJob() bool { return pr.Ready != nil && pr.Ready.Kind == ProbeExited }

// Probe is a readiness check; only the fields of its Kind are set.
type Probe struct {
	Kind     string   `json:"kind"`
	Host     string   `json:"host,omitempty"`
	Port     int      `json:"port,omitempty"`
	URL      string   `json:"url,omitempty"`
	Status   int      `json:"status,omitempty"`
	Command  []string `json:"command,omitempty"`
	Pattern  string   `json:"pattern,omitempty"`
	Interval Duration `json:"interval"`
	Timeout  Duration `json:"timeout"`
}

// Defaults returns a program with supervisord's defaults (DESIGN.md "The script").
// Name, ProcessName, Command and the log paths are left for the caller.
func Defaults() Program {
	return Program{
		Env:          map[string]string{},
		InheritEnv:   true,
		Autostart:    true,
		Autorestart:  RestartUnexpected,
		ExitCodes:    []int{0},
		StartSecs:    1,
		StartRetries: 3,
		Backoff:      BackoffLinear,
		BackoffMax:   Duration(60 * time.Second),
		StopSignal:   "TERM",
		StopTimeout:  Duration(10 * time.Second),
		Priority:     999,
		Numprocs:     1,
		DependsOn:    []string{},
	}
}

// DefaultLog is the log spec used when a program names none.
func DefaultLog(path string) *Log {
	return &Log{Path: path, MaxBytes: 50 << 20, Backups: 10}
}

// Duration is a time.Duration whose JSON form is a string such as "10s".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"10s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// LogsMoved returns p with its log paths (and log_dir) where they are since the bundle's
// folder moved (mv) from p.Root to root: under root where they were under p.Root, and,
// when a folder above p.Root moved with it (gone says which are gone, nil: none), under
// that folder's new place (a script in etc/ writing here("../log/x.log")). p itself
// when root is "" or p.Root.
func (p *Plan) LogsMoved(root string, gone func(path string) bool) *Plan {
	if root == "" || p.Root == "" || root == p.Root {
		return p
	}
	from, to := MovedFolder(p.Root, root, gone)
	moved := func(path string) string { return MovedPath(from, to, path) }
	q := *p
	q.Supervisor.LogDir = moved(p.Supervisor.LogDir)
	q.Programs = slices.Clone(p.Programs)
	for i := range q.Programs {
		pr := &q.Programs[i]
		for _, l := range []**Log{&pr.Stdout, &pr.Stderr} {
			if *l != nil {
				c := **l
				c.Path = moved(c.Path)
				*l = &c
			}
		}
	}
	return &q
}

// MovedFolder is the folder that moved, and where it is now, when a bundle's root moved
// from old to now: old and now themselves, or the outermost folder above old that is
// gone while the two paths end alike below it (b/etc moved to c/etc: b to c, when b is
// gone; an etc moved alone leaves b, and the logs there, in place).
func MovedFolder(old, now string, gone func(path string) bool) (from, to string) {
	from, to = old, now
	for gone != nil && filepath.Base(from) == filepath.Base(to) {
		up, upTo := filepath.Dir(from), filepath.Dir(to)
		if up == from || upTo == to || !gone(up) {
			break
		}
		from, to = up, upTo
	}
	return from, to
}

// MovedPath is path, when under the folder from, under to instead: where a file of a
// bundle made at from is since the bundle moved to to. path itself otherwise, or when
// either is "".
func MovedPath(from, to, path string) string {
	if from == "" || to == "" || from == to {
		return path
	}
	if rel, err := filepath.Rel(from, path); err == nil && filepath.IsLocal(rel) {
		return filepath.Join(to, rel)
	}
	return path
}
