package export

import (
	"fmt"
	"path/filepath"
	"strings"
)

// ServiceUnitName is the unit that runs a deployment's own daemon.
func ServiceUnitName(deploy string) string { return "starvisor-" + unitEscape(deploy) + ".service" }

// ServiceUnit is a systemd unit running `binary up -f script` (both absolute). KillMode=mixed
// sends the stop signal to the daemon alone, so its ordered shutdown stops the programs;
// systemd only kills what is left after TimeoutStopSec. Delegate=yes hands the unit's
// cgroup subtree to the daemon, which (as root on cgroup v2) makes a cgroup per process
// in it: systemd then neither moves those processes nor removes those cgroups.
func ServiceUnit(binary, script, deploy string) File {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `starvisor service install`.\n")
	fmt.Fprintf(&b, "[Unit]\nDescription=starvisor deployment %s\nAfter=network.target\n\n", sdValue(deploy))
	fmt.Fprintf(&b, "[Service]\nType=simple\nExecStart=%s up -f %s\nWorkingDirectory=%s\n", sdWord(binary), sdWord(script), sdValue(filepath.Dir(script)))
	// systemctl reload: the daemon re-reads the script and applies the difference.
	b.WriteString("ExecReload=/bin/kill -HUP $MAINPID\n")
	b.WriteString("Restart=always\nRestartSec=1s\nKillMode=mixed\nKillSignal=SIGTERM\nTimeoutStopSec=90s\nDelegate=yes\n\n")
	b.WriteString("[Install]\nWantedBy=multi-user.target\n")
	return File{Name: ServiceUnitName(deploy), Data: []byte(b.String())}
}
