package builtins_test

import "testing"

func TestVersionStar(t *testing.T) { runStar(t, "version") }
