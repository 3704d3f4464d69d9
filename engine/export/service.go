package export

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
)

// ServiceUnitName is the unit that runs a deployment's own daemon.
func ServiceUnitName(deploy string) string { return "starvisor-" + unitEscape(deploy) + ".service" }

// ServiceUnit is a systemd unit running `binary up -f script` (both absolute). KillMode=mixed
// sends the stop signal to the daemon alone, so its ordered shutdown stops the programs;
// systemd only kills what is left after TimeoutStopSec. Delegate=yes hands the unit's
// cgroup subtree to the daemon, which (as root on cgroup v2) makes a cgroup per process
// in it: systemd then neither moves those processes nor removes those cgroups.
//
// libs (name -> absolute folder) are the library roots the script loads, given to `up` as
// --lib; env the variables it reads with host.env, as they are now: at boot, systemd's
// environment has neither, and the script would fail, or pick other settings. user: a
// unit of a user's own systemd manager (systemctl --user), which has no network.target
// nor multi-user.target: it is wanted by default.target.
func ServiceUnit(binary, script, deploy string, libs, env map[string]string, user bool) File {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `starvisor service install`.\n")
	fmt.Fprintf(&b, "[Unit]\nDescription=starvisor deployment %s\n", sdValue(deploy))
	if !user {
		b.WriteString("After=network.target\n")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "[Service]\nType=simple\nExecStart=%s up -f %s", sdWord(binary), sdWord(script))
	for _, name := range slices.Sorted(maps.Keys(libs)) {
		fmt.Fprintf(&b, " --lib %s", sdWord(name+"="+libs[name]))
	}
	fmt.Fprintf(&b, "\nWorkingDirectory=%s\n", sdValue(filepath.Dir(script)))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(&b, "Environment=%s\n", sdEnv(k+"="+env[k]))
	}
	// systemctl reload: the daemon re-reads the script and applies the difference.
	b.WriteString("ExecReload=/bin/kill -HUP $MAINPID\n")
	b.WriteString("Restart=always\nRestartSec=1s\nKillMode=mixed\nKillSignal=SIGTERM\nTimeoutStopSec=90s\nDelegate=yes\n\n")
	if user {
		b.WriteString("[Install]\nWantedBy=default.target\n")
	} else {
		b.WriteString("[Install]\nWantedBy=multi-user.target\n")
	}
	return File{Name: ServiceUnitName(deploy), Data: []byte(b.String())}
}
