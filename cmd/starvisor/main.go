// Command starvisor runs and watches long-lived services described by a Starlark deploy
// script. All the work is in package app, so tests can run the CLI in-process.
package main

import (
	"os"

	"github.com/starvisor/starvisor/cmd/starvisor/app"
)

func main() { os.Exit(app.Main(os.Args[1:])) }
