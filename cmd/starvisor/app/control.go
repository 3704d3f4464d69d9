package app

// ControlVerbs are the verbs that talk to a running daemon over its socket.
type ControlVerbs struct{}
