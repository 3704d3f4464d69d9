package plan

import (
	"strings"
	"testing"
)

// A name near another by a typo gets it as a hint; a generated one (longer than a
// person types) does not: comparing thousands of them with every name took minutes.
func TestNearestName(t *testing.T) {
	names := []string{"migrate", "worker", "service-frontend-component-19", strings.Repeat("x", 100) + "2"}
	for d, want := range map[string]string{
		"migrat":                        "migrate",
		"service-frontend-componnet-19": "service-frontend-component-19",
		"db":                            "",
		strings.Repeat("x", 100) + "1":  "",
	} {
		if got := nearestName(d, names); got != want {
			t.Errorf("nearestName(%.40q) = %.40q, want %.40q", d, got, want)
		}
	}
}
