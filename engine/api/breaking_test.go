package api

import (
	"testing"

	"github.com/matryer/is"
)

// Programs with the same problems are named together: a release's missing folder was
// said once per program, each with the whole list.
func TestAlikeJoinsSharedProblems(t *testing.T) {
	is := is.New(t)
	is.Equal(alike([]string{"beat (dir: gone)", "web (dir: gone)", "api (command: gone)", "worker (dir: gone)", "odd"}),
		[]string{"beat, web, worker (dir: gone)", "api (command: gone)", "odd"})
	is.Equal(len(alike(nil)), 0)
}
