// Package stdlib holds the Starlark libraries shipped inside the starvisor binary, loaded
// from deploy scripts as load("@stdlib//python.star", "python").
//
// Files here are transparent to relative paths: a path given to a builtin from a stdlib
// function resolves against the folder of the script that called into the stdlib (see
// builtins/doc.go), so the libraries never need the caller to pass absolute paths.
package stdlib

import "embed"

// FS holds every stdlib .star file (tests included, so Go tests can run them).
//
//go:embed *.star
var FS embed.FS
