package plan

import "testing"

// MovedPath moves only paths inside the old folder: a sibling sharing its name's prefix
// (/srv/apple beside /srv/app) stays.
func TestMovedPath(t *testing.T) {
	for path, want := range map[string]string{
		"/srv/app/log/w.log": "/opt/app2/log/w.log",
		"/srv/app":           "/opt/app2",
		"/srv/apple/x.log":   "/srv/apple/x.log",
		"/var/log/w.log":     "/var/log/w.log",
	} {
		if got := MovedPath("/srv/app", "/opt/app2", path); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	if got := MovedPath("/srv/app", "", "/srv/app/x"); got != "/srv/app/x" {
		t.Errorf("no new root: %s", got)
	}
}

// A bundle whose script is in etc/ moved with its folder: the folder that moved is the
// outermost one gone, so logs beside etc/ (here("../log/x.log")) follow it; an etc/
// moved alone leaves the folder above, still there, in place.
func TestMovedFolder(t *testing.T) {
	gone := func(path string) bool { return path == "/srv/b1" || path == "/srv/b1/etc" }
	for _, c := range []struct{ old, now, from, to string }{
		{"/srv/b1/etc", "/srv/b2/etc", "/srv/b1", "/srv/b2"},
		{"/srv/b1/etc", "/opt/b1/etc", "/srv/b1", "/opt/b1"},   // /srv is still there
		{"/srv/b0/etc", "/opt/etc", "/srv/b0/etc", "/opt/etc"}, // /srv/b0 is still there
		{"/srv/b1/etc", "/srv/b1/conf", "/srv/b1/etc", "/srv/b1/conf"},
	} {
		if from, to := MovedFolder(c.old, c.now, gone); from != c.from || to != c.to {
			t.Errorf("MovedFolder(%s, %s) = %s, %s; want %s, %s", c.old, c.now, from, to, c.from, c.to)
		}
	}
	p := &Plan{Root: "/srv/b1/etc", Programs: []Program{{Stdout: &Log{Path: "/srv/b1/log/x.log"}}}}
	if got := p.LogsMoved("/srv/b2/etc", gone).Programs[0].Stdout.Path; got != "/srv/b2/log/x.log" {
		t.Errorf("LogsMoved: %s", got)
	}
}

// A variable reads as a secret by its name, or as a URL with a password in it: notes
// name it without its values.
func TestSecretValue(t *testing.T) {
	for _, c := range []struct {
		k, v string
		want bool
	}{
		{"DB_PASSWORD", "x", true}, {"api_token", "x", true}, {"AWS_SECRET_ACCESS_KEY", "x", true},
		{"DATABASE_URL", "postgres://app:pw@db/app", true}, {"LIVE_URL", "http://127.0.0.1:8000/", false},
		{"NOTE", "see http://host/a:b@c", false}, {"MODE", "prod", false},
		{"DB_PW", "x", true}, {"GITHUB_PAT", "x", true}, {"DBPASSWORD", "x", true},
		{"PG_CONN", "host=db user=app password=hunter2", true}, {"HOOK", "https://h/x?access_token=abc", true},
		{"MONKEY_MODE", "on", false}, {"DESIGN_DIR", "d", false}, {"BYPASS_CACHE", "1", false},
	} {
		if got := SecretValue(c.k, c.v); got != c.want {
			t.Errorf("SecretValue(%q, %q) = %v, want %v", c.k, c.v, got, c.want)
		}
	}
	if got := EnvDiff("MODE", "prod", true, "", false, "running"); got != `MODE="prod" (running: unset)` {
		t.Errorf("EnvDiff: %s", got)
	}
	if got := EnvDiff("API_KEY", "a", true, "", false, "running"); got != "API_KEY set (running: unset; not shown: a secret, by its name or its value)" {
		t.Errorf("EnvDiff: %s", got)
	}
}
