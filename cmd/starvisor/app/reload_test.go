package app

import "testing"

// The reason a failed reload keeps (status: "the last reload failed (...)") is the
// script's error line, or the crash's own line: a Go trace's last line named memory.go.
func TestErrorLine(t *testing.T) {
	for _, c := range []struct{ stderr, want string }{
		{"hello\ndeploy.star:3:5: undefined: x\nTraceback (most recent call last):\n  deploy.star:3:5: in <toplevel>\n", "deploy.star:3:5: undefined: x"},
		{"fatal error: runtime: out of memory\n\nruntime stack:\nruntime.throw(...)\n\t/usr/local/go/src/runtime/panic.go:1229 +0x48\n", "evaluating the script crashed: fatal error: runtime: out of memory"},
	} {
		if got := errorLine(c.stderr); got != c.want {
			t.Errorf("errorLine(%q) = %q, want %q", c.stderr, got, c.want)
		}
	}
}
