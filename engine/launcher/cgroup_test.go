package launcher

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/procfs"
)

// cgroupLauncher is a launcher in cgroup mode; the test is skipped where the machine
// does not allow it (not root, no cgroup v2, no cgroup.kill).
func cgroupLauncher(t *testing.T) *Launcher {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("cgroup mode needs root")
	}
	cgs, why := systemCgroups()
	if cgs == nil {
		t.Skipf("no cgroup mode here: %v", why)
	}
	l := &Launcher{cgs: cgs}
	t.Cleanup(func() {
		// after startWith's cleanups (registered later, run first): nothing is running
		l.Close()
	})
	return l
}

// empty says whether the cgroup directory exists and holds no process.
func emptyCgroup(t *testing.T, dir string) bool {
	t.Helper()
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	return err == nil && len(procs) == 0 && populated(filepath.Join(dir, "cgroup.events")) == 0
}

// daemonized starts, with l, a program that leaves a double-forked, setsid'd
// grandchild (its own session and process group: a process group kill cannot reach
// it) adopted by this process, then runs script. It returns the handle, the
// grandchild's pid and the directory in $D.
func daemonized(t *testing.T, l engine.Launcher, script string) (engine.Handle, int, string) {
	t.Helper()
	dir := t.TempDir()
	spec := shell(`( setsid sh -c 'sleep 1000 & echo $! > "$D/g.pid"' & ); ` + script)
	spec.Env = append(spec.Env, "D="+dir, engine.EnvProcessName+"=grp:web/0")
	h := startWith(t, l, spec)
	g := pidFile(t, filepath.Join(dir, "g.pid"))
	poll(t, 5*time.Second, "the grandchild's adoption", func() bool { return ppidOf(g) == os.Getpid() })
	var buf [procfs.BufSize]byte
	if p, _ := procfs.Read(g, buf[:]); p.Pgid == h.Pid() || p.Sid == h.Pid() {
		t.Fatalf("grandchild %+v is in the program's group or session: the test proves nothing", p)
	}
	return h, g, dir
}

func cgroupOf(t *testing.T, pid int) string {
	t.Helper()
	p, err := ownCgroup("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// A group stop kills the daemonized grandchild, which left the process group and
// the session, and empties the process's cgroup, which is kept for a restart; Close
// removes it, and the parent with the last child.
func TestCgroupStopKillsDaemonizedGrandchild(t *testing.T) {
	l := cgroupLauncher(t)
	h, g, _ := daemonized(t, l, "exec sleep 1000")
	cg := h.(*handle).cg
	if cg == nil {
		t.Fatalf("no cgroup: %s", l.Describe())
	}
	if want := filepath.Join(l.cgs.parent(), "grp:web_0@"); !strings.HasPrefix(cg.dir, want) || !exists(cg.dir) {
		t.Fatalf("cgroup dir %s, want %s<n>", cg.dir, want)
	}
	for _, pid := range []int{h.Pid(), g} {
		if got := cgroupOf(t, pid); got != cg.rel {
			t.Fatalf("pid %d in cgroup %s, want %s", pid, got, cg.rel)
		}
	}

	if err := h.Signal(syscall.SIGTERM, true); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, h); e.Signal != syscall.SIGTERM {
		t.Errorf("exit %+v, want SIGTERM", e)
	}
	<-h.(*handle).finished
	// The exit is reported once the cgroup is empty: nothing to wait for.
	if alive(g) {
		t.Errorf("grandchild %d alive after the stop", g)
	}
	// kept, or (if the grandchild was still there to be killed) being removed
	if procs, err := os.ReadFile(filepath.Join(cg.dir, "cgroup.procs")); err == nil && len(procs) > 0 {
		t.Errorf("cgroup %s not empty after the stop: %s", cg.dir, procs)
	}
	poll(t, 5*time.Second, "no zombie children", func() bool { return len(zombieChildren()) == 0 })
	if err := h.Signal(syscall.SIGTERM, true); err != nil { // gone: not an error
		t.Error(err)
	}
	l.Close()
	if exists(cg.dir) {
		t.Errorf("cgroup %s still there after Close", cg.dir)
	}
	if exists(l.cgs.parent()) {
		t.Errorf("parent cgroup %s still there after Close with no process left", l.cgs.parent())
	}
}

// When the main process exits, whatever it left in its cgroup is killed, whether it
// was stopped alone (no group flag) or exited on its own.
func TestCgroupKillsLeftoversWhenMainExits(t *testing.T) {
	l := cgroupLauncher(t)
	t.Run("stopped alone", func(t *testing.T) {
		h, g, _ := daemonized(t, l, "exec sleep 1000")
		if err := h.Signal(syscall.SIGTERM, false); err != nil {
			t.Fatal(err)
		}
		wait(t, h)
		if alive(g) {
			t.Errorf("grandchild %d outlived the program", g)
		}
	})
	t.Run("exited", func(t *testing.T) {
		h, g, dir := daemonized(t, l, `while [ ! -e "$D/go" ]; do sleep 0.01; done; exit 0`)
		if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		e := wait(t, h)
		if e.Code != 0 || !e.LeftKilled { // said: under supervisord it ran on
			t.Fatalf("exit %+v: want code 0, and what it left killed", e)
		}
		if alive(g) {
			t.Errorf("grandchild %d outlived the program", g)
		}
		poll(t, 5*time.Second, "no zombie children", func() bool { return len(zombieChildren()) == 0 })
	})
	t.Run("exited alone", func(t *testing.T) {
		if e := wait(t, startWith(t, l, shell("exit 0"))); e.LeftKilled {
			t.Errorf("exit %+v: nothing was left", e)
		}
	})
}

// The parent cgroup lives while any process of the launcher runs or has its cgroup
// kept; Close takes it once nothing runs.
func TestCgroupParentFollowsItsChildren(t *testing.T) {
	l := cgroupLauncher(t)
	a := runs(t, l, "a")
	b := runs(t, l, "b")
	if !exists(l.cgs.parent()) {
		t.Fatal("no parent cgroup")
	}
	stop(t, a)
	l.Close() // b still runs: its cgroup stays, and the parent
	if exists(a.(*handle).cg.dir) {
		t.Error("a's kept cgroup not removed by Close")
	}
	if !exists(l.cgs.parent()) || !exists(b.(*handle).cg.dir) {
		t.Fatal("cgroup removed while a process still runs in it")
	}
	stop(t, b)
	if exists(b.(*handle).cg.dir) {
		t.Error("closed launcher kept b's cgroup")
	}
	if exists(l.cgs.parent()) {
		t.Fatal("parent cgroup left after its last process, with the launcher closed")
	}
}

// named is shell(script) for the process named name, with $D a new directory.
func named(t *testing.T, name, script string) (engine.Spec, string) {
	spec := shell(script)
	dir := t.TempDir()
	spec.Env = append(spec.Env, engine.EnvProcessName+"="+name, "D="+dir)
	return spec, dir
}

// runs starts a program named name that touches $D/ran, and returns once it has: it
// was not killed at birth.
func runs(t *testing.T, l *Launcher, name string) engine.Handle {
	t.Helper()
	spec, dir := named(t, name, `echo > "$D/ran"; exec sleep 1000`)
	h := startWith(t, l, spec)
	poll(t, 5*time.Second, "the program's first step", func() bool { return exists(filepath.Join(dir, "ran")) })
	return h
}

// stop SIGTERMs the main process alone and waits until its handle is finished.
func stop(t *testing.T, h engine.Handle) {
	t.Helper()
	if err := h.Signal(syscall.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	wait(t, h)
	<-h.(*handle).finished
}

// A process name keeps its cgroup across restarts: the second spawn is cloned into
// the first one's cgroup, left empty by the first exit. Another name has its own; a
// late group signal to the first run does not reach the second; a cgroup whose
// leftovers had to be killed is removed and the next spawn gets (and runs in) a new
// one; Forget removes a name's kept cgroup; Close the rest and the parent.
func TestCgroupReusedAcrossRestarts(t *testing.T) {
	l := cgroupLauncher(t)
	h1 := runs(t, l, "grp:web/0")
	cg := h1.(*handle).cg
	other := runs(t, l, "other")
	if oc := other.(*handle).cg; oc == nil || cg == nil || oc.dir == cg.dir {
		t.Fatalf("cgroups %v and %v", cg, oc)
	}
	stop(t, h1)
	if !emptyCgroup(t, cg.dir) {
		t.Fatalf("cgroup %s not there and empty after the exit", cg.dir)
	}

	h2, g2, _ := daemonized(t, l, "exec sleep 1000")
	if got := h2.(*handle).cg; got != cg {
		t.Fatalf("second spawn in %v, want the first one's %s", got, cg.dir)
	}
	for _, pid := range []int{h2.Pid(), g2} {
		if got := cgroupOf(t, pid); got != cg.rel {
			t.Fatalf("pid %d in cgroup %s, want %s", pid, got, cg.rel)
		}
	}
	if err := h1.Signal(syscall.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	if !alive(h2.Pid()) || !alive(g2) {
		t.Fatal("a group signal to an exited handle killed the next run in the same cgroup")
	}
	stop(t, h2) // the grandchild is left over: killed with the cgroup
	if alive(g2) {
		t.Fatalf("grandchild %d outlived the second run", g2)
	}
	poll(t, 5*time.Second, "the killed cgroup's removal", func() bool { return !exists(cg.dir) })

	h3 := runs(t, l, "grp:web/0")
	c3 := h3.(*handle).cg
	if c3 == cg || c3.dir == cg.dir {
		t.Fatal("a killed cgroup was used again")
	}
	stop(t, h3)
	if !emptyCgroup(t, c3.dir) {
		t.Fatalf("cgroup %s not kept after an exit with nothing left", c3.dir)
	}
	l.Forget("grp:web/0")
	if exists(c3.dir) {
		t.Error("Forget left the cgroup")
	}
	h4 := runs(t, l, "grp:web/0")
	if h4.(*handle).cg.dir == c3.dir {
		t.Error("a spawn after Forget reused the removed cgroup")
	}
	stop(t, h4)
	stop(t, other)
	l.Close()
	for _, h := range []engine.Handle{h4, other} {
		if exists(h.(*handle).cg.dir) {
			t.Errorf("cgroup %s left after Close", h.(*handle).cg.dir)
		}
	}
	if exists(l.cgs.parent()) {
		t.Error("parent cgroup left after Close")
	}
}

// The kernel quirk the launcher works around (see cgroup_linux.go): a spawn into a
// cgroup that was once killed is SIGKILLed at birth. After a group SIGKILL the next
// spawn of the name runs.
func TestCgroupSpawnAfterGroupKill(t *testing.T) {
	l := cgroupLauncher(t)
	h1 := runs(t, l, "k")
	if err := h1.Signal(syscall.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, h1); e.Signal != syscall.SIGKILL {
		t.Fatalf("exit %+v", e)
	}
	<-h1.(*handle).finished
	runs(t, l, "k")
}

// Two spawns of one name at once get a cgroup each; once both exit one is kept and
// the other removed.
func TestCgroupSameNameAtOnce(t *testing.T) {
	l := cgroupLauncher(t)
	a, b := runs(t, l, "twin"), runs(t, l, "twin")
	ca, cb := a.(*handle).cg, b.(*handle).cg
	if ca == nil || cb == nil || ca.dir == cb.dir {
		t.Fatalf("cgroups %v and %v", ca, cb)
	}
	stop(t, a)
	stop(t, b)
	// the second is removed off the exit's path
	poll(t, 5*time.Second, "exactly one cgroup kept", func() bool { return exists(ca.dir) != exists(cb.dir) })
	if cc := runs(t, l, "twin").(*handle).cg; cc != ca && cc != cb {
		t.Errorf("third spawn in a new cgroup %s", cc.dir)
	}
}

// writeFake writes a fake mountinfo and /proc/self/cgroup and returns their paths.
func writeFake(t *testing.T, mountinfo, cgroup string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	mi, cg := filepath.Join(dir, "mountinfo"), filepath.Join(dir, "cgroup")
	os.WriteFile(mi, []byte(mountinfo), 0o644)
	os.WriteFile(cg, []byte(cgroup), 0o644)
	return mi, cg
}

// fakeCgroupDir makes dir look like a cgroup directory to detection.
func fakeCgroupDir(t *testing.T, dir string, kill bool) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cgroup.procs"), nil, 0o644)
	if kill {
		os.WriteFile(filepath.Join(dir, "cgroup.kill"), nil, 0o644)
	}
}

func TestCgroupDetection(t *testing.T) {
	root := t.TempDir()
	mnt := filepath.Join(root, "sys fs", "unified")
	escaped := strings.ReplaceAll(mnt, " ", `\040`)
	v1 := "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
	v2 := "41 31 0:38 / " + escaped + " rw,relatime - cgroup2 cgroup2 rw\n"
	fakeCgroupDir(t, mnt, false) // the hierarchy's root has no cgroup.kill
	fakeCgroupDir(t, filepath.Join(mnt, "svc"), true)
	fakeCgroupDir(t, filepath.Join(mnt, "old"), false)

	for _, tc := range []struct {
		name, mountinfo, cgroup string
		euid                    int
		base, why               string
	}{
		{"hybrid", v1 + v2, "1:name=systemd:/\n0::/svc\n", 0, filepath.Join(mnt, "svc"), ""},
		{"hierarchy root (cgroup.kill checked later)", v2, "0::/\n", 0, mnt, ""},
		{"not root", v1 + v2, "0::/svc\n", 1000, "", "not running as root"},
		{"no cgroup2 mount", v1, "0::/svc\n", 0, "", "no cgroup2 mount"},
		{"cgroup v1 only", v1 + v2, "1:name=systemd:/\n", 0, "", "no cgroup v2 line"},
		{"no such cgroup", v2, "0::/gone\n", 0, "", "gone/cgroup.procs"},
		{"old kernel", v2, "0::/old\n", 0, "", errNoKill.Error()},
		{"outside the namespace", v2, "0::/../x\n", 0, "", "outside this cgroup namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mi, cg := writeFake(t, tc.mountinfo, tc.cgroup)
			cgs, err := detectCgroups(mi, cg, tc.euid)
			switch {
			case tc.why == "" && err != nil:
				t.Fatalf("not detected: %v", err)
			case tc.why == "" && cgs.base != tc.base:
				t.Fatalf("base %q, want %q", cgs.base, tc.base)
			case tc.why != "" && (err == nil || !strings.Contains(err.Error(), tc.why)):
				t.Fatalf("got %v, %v; want an error with %q", cgs, err, tc.why)
			}
			if cgs != nil && !strings.HasPrefix(cgs.name, cgroupParentPrefix+strconv.Itoa(os.Getpid())+"-") {
				t.Errorf("parent name %q", cgs.name)
			}
		})
	}
	// The real machine: detection either works or says why (for the debug line).
	cgs, why := systemCgroups()
	t.Logf("this machine: cgroups %v, why not: %v; %s", cgs != nil, why, (&Launcher{cgs: cgs, why: why}).Describe())
}

// A launcher whose cgroup cannot take a process (here a plain directory, as a
// kernel without CLONE_INTO_CGROUP would refuse) starts it anyway, in process group
// mode, and stays there.
func TestCgroupSpawnFailureFallsBack(t *testing.T) {
	base := t.TempDir()
	cgs := &cgroups{base: base, rel: "/", name: cgroupParentPrefix + "fake"}
	fakeCgroupDir(t, cgs.parent(), true) // passes the cgroup.kill check
	l := &Launcher{cgs: cgs}
	h := startWith(t, l, shell("exec sleep 1000"))
	if h.(*handle).cg != nil || l.cgroups() != nil {
		t.Fatalf("still in cgroup mode: %s", l.Describe())
	}
	if !strings.Contains(l.Describe(), "spawn into a cgroup") {
		t.Errorf("describe: %s", l.Describe())
	}
	var buf [procfs.BufSize]byte
	if p, ok := procfs.Read(h.Pid(), buf[:]); !ok || p.Pgid != h.Pid() {
		t.Errorf("not in a process group of its own: %+v", p)
	}
	ents, _ := os.ReadDir(cgs.parent())
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("failed spawn's cgroup %s left behind", e.Name())
		}
	}
	if err := h.Signal(syscall.SIGTERM, true); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, h); e.Signal != syscall.SIGTERM {
		t.Errorf("exit %+v", e)
	}
}

// A parent cgroup without cgroup.kill (a kernel before 5.14 mounted at the hierarchy
// root) sends the launcher back to process groups, and the parent is not left behind.
func TestCgroupWithoutKillFallsBack(t *testing.T) {
	cgs := &cgroups{base: t.TempDir(), rel: "/", name: cgroupParentPrefix + "fake"}
	l := &Launcher{cgs: cgs}
	h := startWith(t, l, shell("exit 0"))
	wait(t, h)
	if l.cgroups() != nil || !strings.Contains(l.Describe(), "cgroup.kill") {
		t.Fatalf("still in cgroup mode: %s", l.Describe())
	}
	if exists(cgs.parent()) {
		t.Error("parent left behind")
	}
}

func TestCgroupName(t *testing.T) {
	long := strings.Repeat("x", 300)
	for in, want := range map[string]string{
		"web:0": "web:0@7", "a/b": "a_b@7", ".": ".@7", "..": "..@7", "": "process@7",
		"cgroup.procs": "cgroup.procs@7", "é\n": "___@7", long: long[:100] + "@7",
	} {
		if got := cgroupName(in, 7); got != want {
			t.Errorf("cgroupName(%q) = %q, want %q", in, got, want)
		}
	}
}

// The empty parents of dead daemons are removed; a live daemon's and anything not
// ours are left.
func TestCgroupCleanStale(t *testing.T) {
	base := t.TempDir()
	var buf [procfs.BufSize]byte
	initStat, _ := procfs.Read(1, buf[:])
	dead := filepath.Join(base, cgroupParentPrefix+"999999999-5")
	recycled := filepath.Join(base, cgroupParentPrefix+"1-"+strconv.FormatUint(initStat.StartTicks+1, 10))
	live := filepath.Join(base, cgroupParentPrefix+"1-"+strconv.FormatUint(initStat.StartTicks, 10))
	busy := filepath.Join(base, cgroupParentPrefix+"999999998-5")
	other := filepath.Join(base, "system.slice")
	for _, d := range []string{filepath.Join(dead, "web@1"), filepath.Join(dead, "web@2"), recycled, live, other} {
		os.MkdirAll(d, 0o755)
	}
	fakeCgroupDir(t, filepath.Join(busy, "web@1"), false) // rmdir refuses it, as a populated cgroup
	cgs := &cgroups{base: base, name: cgroupParentPrefix + "self"}
	cgs.cleanStale()
	for d, want := range map[string]bool{dead: false, recycled: false, live: true, other: true, busy: true} {
		if exists(d) != want {
			t.Errorf("%s exists %v, want %v", filepath.Base(d), !want, want)
		}
	}
}

func TestMountinfoUnescape(t *testing.T) {
	if got := unescapeMount(`/a\040b\134c\0`); got != `/a b\c\0` {
		t.Errorf("got %q", got)
	}
}
