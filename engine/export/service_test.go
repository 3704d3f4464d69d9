package export

import (
	"strings"
	"testing"
	"time"
)

// The daemon's unit delegates its cgroup subtree: the daemon makes a cgroup per
// process in it (launcher, cgroup mode), which systemd must leave alone.
func TestServiceUnitDelegatesCgroups(t *testing.T) {
	f, err := ServiceUnit(Service{Binary: "/usr/bin/starvisor", Script: "/srv/app/deploy.star", Deploy: "app"})
	if err != nil {
		t.Fatal(err)
	}
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
	f, _ := ServiceUnit(Service{Binary: "/usr/bin/starvisor", Script: "/srv/app/deploy.star", Deploy: "app"})
	unit := string(f.Data)
	if !strings.Contains(unit, "\nExecReload=/bin/kill -HUP $MAINPID\n") {
		t.Errorf("no ExecReload sending SIGHUP:\n%s", unit)
	}
}

// TimeoutStopSec covers the longest shutdown the plan allows, and a daemon stopped with
// starvisor shutdown (exit 0) stays down: the unit killed programs of two 50s levels at
// 90s, and Restart=always brought a stopped bundle back a second later.
func TestServiceUnitStopsAsThePlanAllows(t *testing.T) {
	unit := func(stop time.Duration) string {
		f, _ := ServiceUnit(Service{Binary: "/usr/bin/starvisor", Script: "/srv/app/deploy.star", Deploy: "app", StopWithin: stop})
		return string(f.Data)
	}
	if u := unit(10 * time.Second); !strings.Contains(u, "\nTimeoutStopSec=90s\n") || !strings.Contains(u, "\nRestart=on-failure\n") {
		t.Errorf("short stops: systemd's default 90s, restarted on failure only:\n%s", u)
	}
	if u := unit(100 * time.Second); !strings.Contains(u, "\nTimeoutStopSec=130s\n") {
		t.Errorf("100s of stops, and the daemon's slack:\n%s", u)
	}
}

// A value written as it is into a unit line is refused when it holds a control
// character: a folder named with a newline put ExecStartPre= into root's unit.
func TestServiceUnitRefusesNewlines(t *testing.T) {
	for _, sv := range []Service{
		{Binary: "/usr/bin/starvisor", Script: "/srv/svc\nExecStartPre=/bin/id/deploy.star", Deploy: "svc"},
		{Binary: "/usr/bin/starvisor", Script: "/srv/app/deploy.star", Deploy: "app\nUser=root"},
		{Binary: "/usr/bin/starvisor", Script: "/srv/app/deploy.star", Deploy: `app\`}, // joins the next line
	} {
		if _, err := ServiceUnit(sv); err == nil || !strings.Contains(err.Error(), "holds a control character") && !strings.Contains(err.Error(), "ends with a backslash") {
			t.Errorf("%+v: %v, want a refusal", sv, err)
		}
	}
}
