package conformance

import "github.com/rogpeppe/go-internal/testscript"

// stateCommands are the verbs that observe a running daemon (waitstate, ...).
var stateCommands = map[string]func(ts *testscript.TestScript, neg bool, args []string){}
