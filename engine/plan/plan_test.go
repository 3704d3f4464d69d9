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
