package export

import (
	"strings"
	"testing"
)

// The daemon's unit delegates its cgroup subtree: the daemon makes a cgroup per
// process in it (launcher, cgroup mode), which systemd must leave alone.
func TestServiceUnitDelegatesCgroups(t *testing.T) {
	f := ServiceUnit("/usr/bin/starvisor", "/srv/app/deploy.star", "app", nil, nil, false)
	unit := string(f.Data)
	if f.Name != "starvisor-app.service" {
		t.Errorf("name %q", f.Name)
	}
	_, service, ok := strings.Cut(unit, "[Service]\n")
	service, _, _ = strings.Cut(service, "\n[")
	if !ok || !strings.Contains(service, "\nDelegate=yes\n") || !strings.Contains(service, "\nKillMode=mixed\n") {
		t.Errorf("no Delegate=yes (and KillMode=mixed) in [Service]:\n%s", unit)
	}
}

// systemctl reload sends the daemon SIGHUP: it re-reads the script and applies it.
func TestServiceUnitReloads(t *testing.T) {
	unit := string(ServiceUnit("/usr/bin/starvisor", "/srv/app/deploy.star", "app", nil, nil, false).Data)
	if !strings.Contains(unit, "\nExecReload=/bin/kill -HUP $MAINPID\n") {
		t.Errorf("no ExecReload sending SIGHUP:\n%s", unit)
	}
}
