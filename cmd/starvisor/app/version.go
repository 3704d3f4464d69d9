package app

import (
	"fmt"
	"runtime/debug"
)

// Version is set at build time:
//
//	go build -ldflags "-X github.com/starvisor/starvisor/cmd/starvisor/app.Version=v1.2.3" ./cmd/starvisor
//
// When empty, the module version recorded by the go tool is used, else "dev".
var Version string

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints "starvisor <version>".
func (VersionCmd) Run(d *Deps) error {
	_, err := fmt.Fprintf(d.Stdout, "starvisor %s\n", version())
	return err
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
