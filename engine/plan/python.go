package plan

import (
	"path/filepath"
	"regexp"
	"strings"
)

// pythonName matches an interpreter's file name: python, python3, python3.12, pypy3.
var pythonName = regexp.MustCompile(`^(python|pypy)[0-9.]*$`)

// BufferedPython says whether pr runs a Python interpreter whose output is block-buffered
// through the pipe to its log: no -u among its options, and PYTHONUNBUFFERED set neither
// by the program nor, when it inherits the daemon's environment, by inherited (nil: not
// known). Its lines then reach the log 8 KiB at a time, a probe.log waits for them in
// vain, and those still buffered die with it at a stop.
func (pr *Program) BufferedPython(inherited func(string) (string, bool)) bool {
	if len(pr.Command) == 0 || !pythonName.MatchString(filepath.Base(pr.Command[0])) {
		return false
	}
	if pr.Env["PYTHONUNBUFFERED"] != "" {
		return false
	}
	if _, set := pr.Env["PYTHONUNBUFFERED"]; !set && pr.InheritEnv && inherited != nil {
		if v, ok := inherited("PYTHONUNBUFFERED"); ok && v != "" {
			return false
		}
	}
	for _, arg := range pr.Command[1:] {
		switch {
		case arg == "-" || !strings.HasPrefix(arg, "-") || strings.HasPrefix(arg, "--"):
			return true // the script, or stdin: the options are over
		case arg == "-m" || arg == "-c" || arg == "-X" || arg == "-W":
			return true // what follows is the module, the code or an option's value
		case !strings.ContainsAny(arg[1:], "cmXW") && strings.ContainsRune(arg[1:], 'u'):
			return false // -u, or -u among other flags (-Bu)
		}
	}
	return true
}
