package app

import (
	"fmt"
	"testing"

	"github.com/matryer/is"
)

// up --detach's wait line names a few processes per state past a dozen (290 made one
// 7 KB line).
func TestCondensed(t *testing.T) {
	is := is.New(t)
	is.Equal(condensed([]string{"a (STARTING)", "b (BACKOFF)"}), "a (STARTING), b (BACKOFF)")
	var many []string
	for i := range 14 {
		many = append(many, fmt.Sprintf("w%d (STARTING)", i))
	}
	many = append(many, "web (RUNNING, not ready yet)")
	is.Equal(condensed(many), "15 processes (14 STARTING: w0, w1, w2, …; 1 RUNNING, not ready yet: web)")
}
