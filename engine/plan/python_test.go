package plan

import "testing"

// A Python program writes its output through a pipe 8 KiB at a time unless -u or
// PYTHONUNBUFFERED says otherwise: check warns of it, and a probe.log timeout says it.
func TestBufferedPython(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	set := func(k string) (string, bool) { return "1", k == "PYTHONUNBUFFERED" }
	for _, c := range []struct {
		argv    []string
		env     map[string]string
		inherit bool
		from    func(string) (string, bool)
		want    bool
	}{
		{argv: []string{"python3", "app.py"}, want: true},
		{argv: []string{"/srv/venv/bin/python", "-m", "app"}, want: true},
		{argv: []string{"python3.12", "-B", "app.py"}, want: true},
		{argv: []string{"python3", "app.py", "-u"}, want: true}, // the script's own option
		{argv: []string{"python3", "-m", "-u"}, want: true},     // a module named -u, if any
		{argv: []string{"python3", "-u", "app.py"}},
		{argv: []string{"/usr/bin/pypy3", "-Bu", "-m", "app"}},
		{argv: []string{"python3", "app.py"}, env: map[string]string{"PYTHONUNBUFFERED": "1"}},
		{argv: []string{"python3", "app.py"}, inherit: true, from: set},
		{argv: []string{"python3", "app.py"}, inherit: false, from: set, want: true}, // inherits nothing
		{argv: []string{"python3", "app.py"}, inherit: true, from: none, want: true},
		{argv: []string{"gunicorn", "app:wsgi"}},
		{argv: []string{"sh", "-c", "python3 app.py"}},
	} {
		pr := Program{Command: c.argv, Env: c.env, InheritEnv: c.inherit}
		if got := pr.BufferedPython(c.from); got != c.want {
			t.Errorf("%q env %v inherit %v: %v, want %v", c.argv, c.env, c.inherit, got, c.want)
		}
	}
}
