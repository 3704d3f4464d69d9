package launcher

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// defaultPath is supervisord's fallback when neither the program nor the daemon has PATH.
const defaultPath = "/bin:/usr/bin:/usr/local/bin"

// resolve finds the executable for argv0 the way supervisord does: a name with a
// slash is taken as is (relative to dir); a bare name is searched by LookPath.
func resolve(argv0, dir string, env []string) (string, error) {
	if strings.Contains(argv0, "/") {
		path := argv0
		if !filepath.IsAbs(path) && dir != "" {
			path = filepath.Join(dir, path)
		}
		return path, checkExecutable(path)
	}
	return LookPath(argv0, env, os.LookupEnv)
}

// LookPath finds a bare command name in the program's PATH (from env, its final
// environment), else the daemon's (daemonEnv), else supervisord's default; an empty
// entry means the working directory. `starvisor check` uses it too, so the check and
// the launch cannot disagree.
func LookPath(name string, env []string, daemonEnv func(string) (string, bool)) (string, error) {
	search, ok := lookupEnv(env, "PATH")
	if !ok {
		search, ok = daemonEnv("PATH")
	}
	if !ok {
		search = defaultPath
	}
	for _, d := range filepath.SplitList(search) {
		if d == "" {
			d = "."
		}
		path := filepath.Join(d, name)
		if execProblem(path) == "" {
			return path, nil
		}
	}
	return "", fmt.Errorf("can't find command '%s'", name)
}

// execProblem says, as a format for the path, why path cannot be run as a command;
// "" when it can. One stat(2), and access(2) for a file with an x bit: PATH searches
// try many folders, and a miss costs no error value.
func execProblem(path string) string {
	var st syscall.Stat_t
	switch {
	case syscall.Stat(path, &st) != nil:
		return "can't find command '%s'"
	case st.Mode&syscall.S_IFMT == syscall.S_IFDIR:
		return "command at '%s' is a directory"
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Mode&0o111 == 0:
		return "command at '%s' is not executable"
	case syscall.Access(path, 1 /* X_OK */) != nil:
		return "no permission to run command '%s'"
	}
	return ""
}

// checkExecutable says, in supervisord's words, why path cannot be run.
func checkExecutable(path string) error {
	if format := execProblem(path); format != "" {
		return fmt.Errorf(format, path)
	}
	return nil
}

// checkDir reports a missing working directory before forking, in supervisord's words.
func checkDir(dir string) error {
	if dir == "" {
		return nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("couldn't chdir to %s: %s", dir, errnoName(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("couldn't chdir to %s: ENOTDIR", dir)
	}
	return nil
}

// Credential resolves user into the ids to run as and the environment to give, for a
// process run as a program's user (its spawn, its exec probe). Unlike supervisord,
// HOME, USER, LOGNAME and SHELL follow the user, as su - and systemd's User= give them,
// unless the program sets them itself (own).
func Credential(name string, own map[string]string, env []string) (*syscall.Credential, []string, error) {
	if name == "" {
		return nil, env, nil
	}
	u, err := user.Lookup(name)
	if _, unknown := errors.AsType[user.UnknownUserError](err); unknown && isNumber(name) {
		u, err = user.LookupId(name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("unknown user '%s'", name)
	}
	env = append([]string(nil), env...)
	set := map[string]string{"HOME": u.HomeDir, "USER": u.Username, "LOGNAME": u.Username}
	if sh := loginShell(u.Username); sh != "" {
		set["SHELL"] = sh // a tool running $SHELL -c ran the daemon's (root's) choice
	}
	for k, v := range set {
		if _, mine := own[k]; !mine {
			env = setEnv(env, k, v)
		}
	}
	if os.Geteuid() != 0 {
		if u.Uid == strconv.Itoa(os.Geteuid()) {
			return nil, env, nil // already that user
		}
		return nil, nil, fmt.Errorf("can't drop privilege as nonroot user (user %s: starvisor runs as uid %d, not root)", name, os.Geteuid())
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, nil, fmt.Errorf("user '%s': %w", name, err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, nil, fmt.Errorf("user '%s': groups: %w", name, err)
	}
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			cred.Groups = append(cred.Groups, uint32(n))
		}
	}
	return cred, env, nil
}

// loginShell is name's shell in /etc/passwd, which os/user does not give; "" when it
// has none there (a user of another NSS source keeps the inherited SHELL).
func loginShell(name string) string { return shellIn("/etc/passwd", name) }

// shellIn is name's login shell in the passwd file at path.
func shellIn(path, name string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Split(strings.TrimRight(line, "\n"), ":")
		if len(f) == 7 && f[0] == name {
			return cmp.Or(f[6], "/bin/sh") // an empty field is /bin/sh, as login and su have it
		}
	}
	return ""
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- { // the last one wins, as in execve's consumers
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

func setEnv(env []string, key, value string) []string {
	for i, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); ok && k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}

// parseUmask reads an octal umask; -1 means keep the daemon's.
func parseUmask(s string) (int, error) {
	if s == "" {
		return -1, nil
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return 0, fmt.Errorf("invalid umask %q: want octal such as 022", s)
	}
	return int(n), nil
}

var errnoNames = map[syscall.Errno]string{
	syscall.ENOENT: "ENOENT", syscall.EACCES: "EACCES", syscall.ENOEXEC: "ENOEXEC",
	syscall.ENOTDIR: "ENOTDIR", syscall.EPERM: "EPERM", syscall.E2BIG: "E2BIG",
	syscall.ELOOP: "ELOOP", syscall.ETXTBSY: "ETXTBSY", syscall.ENOMEM: "ENOMEM",
	syscall.EAGAIN: "EAGAIN", syscall.EMFILE: "EMFILE", syscall.EINVAL: "EINVAL",
}

// errnoName gives the errno's symbol, as supervisord's messages do.
func errnoName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if name, ok := errnoNames[errno]; ok {
			return name
		}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
