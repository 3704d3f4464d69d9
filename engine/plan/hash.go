package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
)

// HashProgram returns "sha256:<hex>" over every field of pr that affects how its
// process runs. apply restarts exactly the processes whose hash changed, so
// these fields are left out:
//   - hash and pos: the hash itself, and where the script declared the program
//     (moving a declaration down a file must not restart it);
//   - priority and depends_on: they decide when the process starts relative to
//     others, not what runs; changing a priority must not restart anything;
//   - ready: it says when dependents may start, not how this process runs;
//   - group: it is how the CLI addresses processes ("web:*");
//   - numprocs and numprocs_start: how many siblings a process has; it sees only its
//     own number (process_num), so scaling a pool adds or removes processes and
//     leaves the others running;
//   - autostart: whether the daemon starts the process by itself, not how it runs
//     (apply starts a stopped process whose autostart was turned on);
//   - a log's max_bytes, backups and timestamps: the daemon rotates and stamps, the
//     process only writes into a pipe; its path stays in.
//
// The bytes hashed are exactly json.Marshal of hashedProgram (hash_test.go):
// fields in a fixed order, map keys sorted, every field omitempty, so that a
// field added to Program later, while at its zero value, leaves every existing
// hash unchanged and upgrading starvisor does not restart everything. They are
// written by hand: json.Marshal made hashing most of Finish's cost (~10 ms of
// 14 ms for 1,000 programs); TestHashMatchesJSON holds the two to the same bytes.
func HashProgram(pr Program) string {
	var buf [1024]byte
	sum := sha256.Sum256(appendHashed(buf[:0], &pr))
	var out [len("sha256:") + 2*sha256.Size]byte
	n := copy(out[:], "sha256:")
	hex.Encode(out[n:], sum[:])
	return string(out[:])
}

// appendHashed writes the compact JSON of pr's hashed fields, leaving out
// zero values (omitempty).
func appendHashed(b []byte, pr *Program) []byte {
	var o compactObject
	b = append(b, '{')
	b = o.str(b, "name", pr.Name)
	b = o.str(b, "process_name", pr.ProcessName)
	b = o.num(b, "process_num", int64(pr.ProcessNum))
	b = o.str(b, "group", pr.Group) // the process sees it: STARVISOR_GROUP_NAME
	if len(pr.Command) > 0 {
		b = append(o.key(b, "command"), '[')
		for i, s := range pr.Command {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendHashString(b, s)
		}
		b = append(b, ']')
	}
	b = o.str(b, "directory", pr.Directory)
	if len(pr.Env) > 0 {
		b = appendHashMap(o.key(b, "env"), pr.Env)
	}
	b = o.flag(b, "inherit_env", pr.InheritEnv)
	b = o.str(b, "user", pr.User)
	b = o.str(b, "umask", pr.Umask)
	b = o.log(b, "stdout", pr.Stdout)
	b = o.log(b, "stderr", pr.Stderr)
	b = o.flag(b, "redirect_stderr", pr.RedirectStderr)
	return append(b, '}')
}

// compactObject writes the members of one compact JSON object, comma-separated.
type compactObject struct{ n int }

// key starts a member named name (the plan's field names need no escaping).
func (o *compactObject) key(b []byte, name string) []byte {
	if o.n > 0 {
		b = append(b, ',')
	}
	o.n++
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func (o *compactObject) str(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	return appendHashString(o.key(b, name), v)
}

func (o *compactObject) num(b []byte, name string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(o.key(b, name), v, 10)
}

func (o *compactObject) flag(b []byte, name string, v bool) []byte {
	if !v {
		return b
	}
	return append(o.key(b, name), "true"...)
}

// log writes a Log in full (its fields are not omitempty), or nothing when nil.
func (o *compactObject) log(b []byte, name string, l *Log) []byte {
	if l == nil {
		return b
	}
	b = append(o.key(b, name), `{"path":`...)
	b = appendHashString(b, l.Path)
	return append(b, '}')
}

// appendHashMap writes m compactly with its keys sorted, as encoding/json does.
func appendHashMap(b []byte, m map[string]string) []byte {
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendHashString(b, k), ':')
		b = appendHashString(b, m[k])
	}
	return append(b, '}')
}

// hashPlain marks the bytes json.Marshal copies into a string as they are:
// encode.go's plain, less <, > and &, which it escapes (HTML-safe by default).
var hashPlain = func() [256]bool {
	t := plain
	t['<'], t['>'], t['&'] = false, false, false
	return t
}()

// appendHashString writes s as json.Marshal does: appendString's escapes, and
// <, > and & as \u003c, \u003e and \u0026.
func appendHashString(b []byte, s string) []byte { return appendEscaped(b, s, &hashPlain) }

// hashExcluded are the JSON names of the Program fields HashProgram leaves out.
var hashExcluded = map[string]bool{
	"hash": true, "pos": true, "priority": true, "depends_on": true, "ready": true,
	"numprocs": true, "numprocs_start": true, "autostart": true,
	// The daemon's policy, which the process cannot see: taken in place by an apply (a
	// longer stop_timeout must not first stop it with the old one).
	"autorestart": true, "exit_codes": true, "start_secs": true, "start_retries": true,
	"backoff": true, "backoff_max": true, "stop_signal": true, "stop_timeout": true,
	"stop_as_group": true, "kill_as_group": true, "memory_max": true,
}
