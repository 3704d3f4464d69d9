package app

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// run runs the CLI in-process with a fixed environment.
func run(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(args, &Deps{
		Stdout: &out, Stderr: &errOut,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Signals:   notify,
	})
	return code, out.String(), errOut.String()
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.star", `program(name = "web", command = ["/bin/sh"], stdout = None)`+"\n")
	bad := write("bad.star", "program(\n")
	missingCmd := write("missing.star", `program(name = "web", command = ["no-such-tool-x"], stdout = None)`+"\n")
	env := map[string]string{"PATH": "/usr/bin:/bin"}
	broken := filepath.Join(dir, "a\nb")
	if err := os.Mkdir(broken, 0o755); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name     string
		args     []string
		code     int
		out, err string // regexps; "" means must be empty
	}{
		{"no verb", nil, ExitUsage, "", "expected one of"},
		{"unknown flag", []string{"plan", "--nope"}, ExitUsage, "", "unknown flag --nope"},
		{"unknown flag names the verb's help", []string{"stop", "--wait", "5s", "x"}, ExitUsage, "", "run 'starvisor stop --help' for usage"},
		{"bad --lib", []string{"plan", "-f", good, "--lib", "nodir"}, ExitUsage, "", "nodir"},
		{"negative wait", []string{"restart", "--wait=-5s", "web"}, ExitUsage, "", "^starvisor: --wait -5s: give 0 or more\nrun 'starvisor restart --help' for usage\n$"},
		{"negative timeout", []string{"shutdown", "--timeout=-1s"}, ExitUsage, "", "--timeout -1s: give 0 or more"},
		{"help", []string{"--help"}, ExitOK, "Usage: starvisor", ""},
		{"version", []string{"version"}, ExitOK, `^starvisor \S+\n$`, ""},
		{"--version", []string{"--version"}, ExitOK, `^starvisor \S+\n$`, ""},
		// A flag given no value, a duration no unit: said in words, not the parser's.
		{"flag without value", []string{"plan", "-f"}, ExitUsage, "", "^starvisor: --file: needs a value\n"},
		{"duration without unit", []string{"start", "--wait", "5", "x"}, ExitUsage, "", `^starvisor: --wait: "5" is not a duration: give it a unit, such as 30s`},
		// Flags of another mode are refused, not ignored.
		{"up in a folder whose name holds a newline", []string{"up", "-f", broken}, ExitFailure, "", `holds a line break, which the bundle's lock cannot record: rename the folder`},
		{"an empty name", []string{"stop", ""}, ExitUsage, "", "^starvisor: stop: an empty name selects nothing"},
		{"an empty name to status", []string{"status", "web", ""}, ExitUsage, "", "^starvisor: status: an empty name selects nothing"},
		{"up --detach --logs", []string{"up", "--detach", "--logs", "-f", good}, ExitUsage, "", "^starvisor: up: --logs is for the foreground"},
		{"plan --socket", []string{"plan", "--socket", "/x.sock", "-f", good}, ExitUsage, "", "^starvisor: plan: --socket goes with --diff"},
		{"import --force", []string{"import", "--force", good}, ExitUsage, "", "^starvisor: import: --force goes with -o FILE"},
		{"plan", []string{"plan", "-f", good}, ExitOK, `(?m)^web\s+/bin/sh\s`, ""},
		{"plan json", []string{"plan", "-f", good, "--json"}, ExitOK, `"process_name": "web"`, ""},
		{"plan syntax error", []string{"plan", "-f", bad}, ExitFailure, "", `(?m)^/\S*/bad.star:2:1: `}, // from elsewhere: where it is
		{"plan missing file", []string{"plan", "-f", filepath.Join(dir, "nope.star")}, ExitUsage, "", "^starvisor: .*/nope.star: no such file \\(-f names the deploy script, or its folder\\)\n$"},
		{"maintail", []string{"maintail", "-f"}, ExitUsage, "", "(?m)^maintail here is: starvisor logs --daemon \\[-f\\] "},
		{"add", []string{"add", "extra"}, ExitUsage, "", "^starvisor: unexpected argument add\nadd here is: starvisor apply \\(the script adds and removes programs\\)\nrun 'starvisor --help' for usage\n$"},
		{"remove", []string{"remove", "extra"}, ExitUsage, "", "(?m)^remove here is: starvisor apply \\(the script adds and removes programs\\)$"},
		{"apply NAME", []string{"apply", "-f", good, "web"}, ExitUsage, "", "^starvisor: unexpected argument web\napply takes no names: it applies the whole script; starvisor plan --diff shows what it would change\nrun 'starvisor apply --help' for usage\n$"},
		{"check ok", []string{"check", "-f", good}, ExitOK, "^ok: 1 program\n$", ""},
		{"check problem", []string{"check", "-f", missingCmd}, ExitFailure, "", `program "web": command: "no-such-tool-x" not found in PATH`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := run(t, env, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, c.code, errOut)
			}
			for _, s := range []struct{ what, got, want string }{{"stdout", out, c.out}, {"stderr", errOut, c.err}} {
				if s.want == "" && s.got != "" {
					t.Errorf("%s = %q, want it empty", s.what, s.got)
				}
				if s.want != "" && !regexp.MustCompile(s.want).MatchString(s.got) {
					t.Errorf("%s = %q, want a match for %q", s.what, s.got, s.want)
				}
			}
		})
	}
}
