package export

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// ServiceUnitName is the unit that runs a deployment's own daemon.
func ServiceUnitName(deploy string) string { return "starvisor-" + unitEscape(deploy) + ".service" }

// Service is what the unit of a deployment's own daemon runs.
type Service struct {
	Binary, Script string // both absolute: `Binary up -f Script`
	Deploy         string // the deployment's name, in the unit's
	// Libs (name -> absolute folder) are the library roots the script loads, given to
	// `up` as --lib; Env the variables it reads with host.env, as they are now: at boot,
	// systemd's environment has neither, and the script would fail, or pick other
	// settings.
	Libs, Env map[string]string
	// User: a unit of a user's own systemd manager (systemctl --user), which has no
	// network.target nor multi-user.target: it is wanted by default.target.
	User bool
	// StopWithin is the longest the daemon's shutdown may take (plan.WorstStop):
	// TimeoutStopSec covers it, or systemd kills programs in the middle of their stop.
	StopWithin time.Duration
}

// stopSlack is added to Service.StopWithin for the daemon's own exit; 90s (systemd's
// default) at least.
const stopSlack = 30 * time.Second

// ServiceUnit is a systemd unit running the daemon. KillMode=mixed sends the stop signal
// to the daemon alone, so its ordered shutdown stops the programs; systemd only kills
// what is left after TimeoutStopSec. Delegate=yes hands the unit's cgroup subtree to the
// daemon, which (as root on cgroup v2) makes a cgroup per process in it: systemd then
// neither moves those processes nor removes those cgroups. Restart=on-failure: a daemon
// that crashed comes back, one that `starvisor shutdown` stopped (exit 0) stays down, as
// asked (Restart=always brought it back a second later).
func ServiceUnit(sv Service) (File, error) {
	// Written as they are (Description=, WorkingDirectory=): a folder named with a newline
	// put a directive of its own into root's unit.
	if err := errors.Join(unitSafe("the deployment's name", sv.Deploy), unitSafe("the script's folder", filepath.Dir(sv.Script))); err != nil {
		return File{}, fmt.Errorf("service: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `starvisor service install`.\n")
	fmt.Fprintf(&b, "[Unit]\nDescription=starvisor deployment %s\n", sdValue(sv.Deploy))
	if !sv.User {
		b.WriteString("After=network.target\n")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "[Service]\nType=simple\nExecStart=%s up -f %s", sdWord(sv.Binary), sdWord(sv.Script))
	for _, name := range slices.Sorted(maps.Keys(sv.Libs)) {
		fmt.Fprintf(&b, " --lib %s", sdWord(name+"="+sv.Libs[name]))
	}
	fmt.Fprintf(&b, "\nWorkingDirectory=%s\n", sdValue(filepath.Dir(sv.Script)))
	for _, k := range slices.Sorted(maps.Keys(sv.Env)) {
		fmt.Fprintf(&b, "Environment=%s\n", sdEnv(k+"="+sv.Env[k]))
	}
	// systemctl reload: the daemon re-reads the script and applies the difference.
	b.WriteString("ExecReload=/bin/kill -HUP $MAINPID\n")
	stop := max(90*time.Second, sv.StopWithin+stopSlack)
	fmt.Fprintf(&b, "Restart=on-failure\nRestartSec=1s\nKillMode=mixed\nKillSignal=SIGTERM\nTimeoutStopSec=%s\nDelegate=yes\n\n", sdDuration(plan.Duration(stop)))
	if sv.User {
		b.WriteString("[Install]\nWantedBy=default.target\n")
	} else {
		b.WriteString("[Install]\nWantedBy=multi-user.target\n")
	}
	return File{Name: ServiceUnitName(sv.Deploy), Data: []byte(b.String())}, nil
}
