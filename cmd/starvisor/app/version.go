package app

import (
	"fmt"
	"os"
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
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	// A build from a checkout: its commit, so two builds (an upgrade in place) are
	// told apart; both said "dev".
	rev, modified := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		// No commit recorded (-buildvcs=false): when the binary was built, which two
		// builds differ by.
		if exe, err := os.Executable(); err == nil {
			if st, err := os.Stat(exe); err == nil {
				return "dev-" + st.ModTime().UTC().Format("20060102T150405")
			}
		}
		return "dev"
	}
	v := "dev-" + rev[:min(len(rev), 12)]
	if modified {
		v += "-modified"
	}
	return v
}
