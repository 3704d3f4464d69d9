package launcher

import (
	"bytes"
	"os"
	"strings"
)

// MissingInterpreter returns the interpreter a script's #! line names when that does not
// exist: a virtualenv's console scripts (venv/bin/gunicorn) name the python they were
// made with by its absolute path, which a moved bundle no longer has, and exec then
// says ENOENT of a file that is plainly there.
func MissingInterpreter(path string) (string, bool) {
	fields := Shebang(path)
	if len(fields) == 0 {
		return "", false
	}
	if _, err := os.Stat(fields[0]); err == nil {
		return "", false
	}
	return fields[0], true
}

// Shebang is the #! line of the script at path as its words (interpreter first); nil
// when it has none.
func Shebang(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	buf := make([]byte, 256) // the kernel reads no more of a #! line either
	n, _ := f.Read(buf)
	line, _, _ := bytes.Cut(buf[:n], []byte("\n"))
	rest, ok := bytes.CutPrefix(line, []byte("#!"))
	if !ok {
		return nil
	}
	return strings.Fields(string(rest))
}
