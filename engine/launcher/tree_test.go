package launcher

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/procfs"
)

// poll waits for cond, checking every few milliseconds, until within passes.
func poll(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// alive reports whether pid is a live process (not a zombie, not gone).
func alive(pid int) bool {
	var buf [procfs.BufSize]byte
	p, ok := procfs.Read(pid, buf[:])
	return ok && p.State != 'Z' && p.State != 'X'
}

// pidFile polls until path holds a pid, and SIGKILLs that pid when the test ends.
func pidFile(t *testing.T, path string) int {
	t.Helper()
	var pid int
	poll(t, 5*time.Second, path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	t.Cleanup(func() {
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return pid
}

func ppidOf(pid int) int {
	var buf [procfs.BufSize]byte
	p, _ := procfs.Read(pid, buf[:])
	return p.Ppid
}

// zombieChildren lists this process's children in state Z.
func zombieChildren() []int {
	var out []int
	for _, p := range procfs.Scan() {
		if p.Ppid == os.Getpid() && p.State == 'Z' {
			out = append(out, p.Pid)
		}
	}
	return out
}

// escaping starts a program named name (in its environment, as the engine sets it)
// that leaves a descendant in a new session under a live parent (linked) and a
// double-forked, setsid'd one whose parents have exited (orphan).
func escaping(t *testing.T, l engine.Launcher, name string) (h engine.Handle, linked, orphan int) {
	t.Helper()
	dir := t.TempDir()
	spec := shell(`
setsid sh -c 'sleep 1000 & echo $! > "$D/linked.pid"; wait' &
( setsid sh -c 'sleep 1000 & echo $! > "$D/orphan.pid"' & )
exec sleep 1000`)
	spec.Env = append(spec.Env, "D="+dir, engine.EnvProcessName+"="+name)
	h = startWith(t, l, spec)
	linked = pidFile(t, filepath.Join(dir, "linked.pid"))
	orphan = pidFile(t, filepath.Join(dir, "orphan.pid"))
	poll(t, 5*time.Second, "the orphan's adoption", func() bool { return ppidOf(orphan) == os.Getpid() })
	return h, linked, orphan
}

// A group signal reaches descendants that left the process group: in process group
// mode one through ppid links, one adopted by the subreaper and found by its
// program's name; in cgroup mode both through the cgroup. Another program's orphan
// is left alone.
func TestGroupSignalReachesEscapedDescendants(t *testing.T) {
	t.Run("process groups", func(t *testing.T) { groupSignalReachesEscaped(t, processGroups()) })
	t.Run("cgroups", func(t *testing.T) { groupSignalReachesEscaped(t, cgroupLauncher(t)) })
}

func groupSignalReachesEscaped(t *testing.T, l engine.Launcher) {
	tag := fmt.Sprintf("tree-%d-", os.Getpid())
	h, linked, orphan := escaping(t, l, tag+"a")
	_, _, other := escaping(t, l, tag+"b")
	var buf [procfs.BufSize]byte
	for _, pid := range []int{linked, orphan} {
		if p, _ := procfs.Read(pid, buf[:]); p.Pgid == h.Pid() {
			t.Fatalf("descendant %d is still in the program's group: the test proves nothing", pid)
		}
	}

	if err := h.Signal(syscall.SIGTERM, true); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, h); e.Signal != syscall.SIGTERM {
		t.Errorf("exit %+v, want SIGTERM", e)
	}
	poll(t, 5*time.Second, "the escaped descendants to die", func() bool { return !alive(linked) && !alive(orphan) })
	if !alive(other) {
		t.Errorf("the other program's orphan %d died with this one", other)
	}
}

// Without the group flag only the process itself is signalled (supervisord's S22); once
// it is gone, what it left behind is killed, in process group mode as in cgroup mode
// (TestCgroupKillsLeftoversWhenMainExits): they ran on unsupervised, and each restart
// made more. Another program's orphan is left alone.
func TestLeftoversDieWithTheProgram(t *testing.T) {
	tag := fmt.Sprintf("solo-%d-", os.Getpid())
	h, linked, orphan := escaping(t, processGroups(), tag+"a")
	_, _, other := escaping(t, processGroups(), tag+"b")
	if err := h.Signal(syscall.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, h); !e.LeftKilled { // reported once they were sent SIGKILL, and said
		t.Errorf("exit %+v: want what it left killed", e)
	}
	poll(t, 5*time.Second, "the descendants to die with the program", func() bool { return !alive(linked) && !alive(orphan) })
	if !alive(other) {
		t.Errorf("the other program's orphan %d died with this one", other)
	}
}

// In process group mode a program's members are the orphans of its the daemon adopted
// (a worker that daemonized, outside the child's tree): memory_max weighs them too, as
// cgroup mode weighs the whole cgroup. Another program's orphan is not one of them.
func TestMembersAreTheAdoptedOrphansInProcessGroupMode(t *testing.T) {
	tag := fmt.Sprintf("members-%d-", os.Getpid())
	h, linked, orphan := escaping(t, processGroups(), tag+"a")
	_, _, other := escaping(t, processGroups(), tag+"b")
	got := h.(engine.MemberLister).Members()
	if !slices.Contains(got, orphan) || slices.Contains(got, other) || slices.Contains(got, linked) {
		t.Fatalf("members %v: want the orphan %d (not the other program's %d; the linked %d is in the tree already)", got, orphan, other, linked)
	}
}

// A group stop's exit comes once the whole group is gone: a member still finishing
// its work when the leader (a wrapper shell) is gone gets its time, with one SIGTERM
// (a second cuts many programs' graceful exit short), in both modes.
func TestGroupStopWaitsForTheRestOfTheGroup(t *testing.T) {
	t.Run("process groups", func(t *testing.T) { groupStopWaits(t, processGroups()) })
	t.Run("cgroups", func(t *testing.T) { groupStopWaits(t, cgroupLauncher(t)) })
}

func groupStopWaits(t *testing.T, l engine.Launcher) {
	dir := t.TempDir()
	spec := shell(`( trap 'echo TERM >> "$D/terms"; while [ ! -e "$D/finish" ]; do sleep 0.01; done; echo done > "$D/finished"; exit 0' TERM
		echo $(exec sh -c 'echo $PPID') > "$D/member.pid"; while :; do sleep 0.01; done ) &
		exec sleep 1000`)
	spec.Env = append(spec.Env, "D="+dir, engine.EnvProcessName+fmt.Sprintf("=fin-%d", os.Getpid()))
	spec.Program.StopAsGroup = true
	h := startWith(t, l, spec)
	pidFile(t, filepath.Join(dir, "member.pid"))
	if err := h.Signal(syscall.SIGTERM, true); err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Second, "the member to get SIGTERM", func() bool { return exists(filepath.Join(dir, "terms")) })
	poll(t, 5*time.Second, "the leader to be gone", func() bool { return !alive(h.Pid()) })
	select {
	case e := <-h.Done():
		t.Fatalf("exit %+v reported while a member of the group still works", e)
	default:
	}
	if err := os.WriteFile(filepath.Join(dir, "finish"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, h); e.Signal != syscall.SIGTERM {
		t.Errorf("exit %+v, want the leader's SIGTERM", e)
	}
	if !exists(filepath.Join(dir, "finished")) {
		t.Error("the member did not finish its work: killed")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "terms")); string(b) != "TERM\n" {
		t.Errorf("the member got %q, want one SIGTERM", b)
	}
}

// A member that ignores the stop signal holds the exit until the SIGKILL that follows
// stop_timeout (the engine's); during a group stop that SIGKILL goes to the
// group even when sent to the process alone.
func TestGroupStopEndsWithTheKill(t *testing.T) {
	for _, group := range []bool{true, false} {
		t.Run(fmt.Sprint("process groups, kill group=", group), func(t *testing.T) { groupStopKill(t, processGroups(), group) })
		t.Run(fmt.Sprint("cgroups, kill group=", group), func(t *testing.T) { groupStopKill(t, cgroupLauncher(t), group) })
	}
}

func groupStopKill(t *testing.T, l engine.Launcher, group bool) {
	dir := t.TempDir()
	spec := shell(`(trap '' TERM; exec sleep 1000) & echo $! > "$D/member.pid"; exec sleep 1000`)
	spec.Env = append(spec.Env, "D="+dir, engine.EnvProcessName+fmt.Sprintf("=ign-%d-%v", os.Getpid(), group))
	spec.Program.StopAsGroup = true
	h := startWith(t, l, spec)
	member := pidFile(t, filepath.Join(dir, "member.pid"))
	poll(t, 5*time.Second, "the member to ignore TERM", func() bool { return ignoresTerm(member) })
	if err := h.Signal(syscall.SIGTERM, true); err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Second, "the leader to be gone", func() bool { return !alive(h.Pid()) })
	select {
	case e := <-h.Done():
		t.Fatalf("exit %+v reported while a member ignoring the stop runs", e)
	default:
	}
	if err := h.Signal(syscall.SIGKILL, group); err != nil {
		t.Fatal(err)
	}
	wait(t, h)
	// Gone, or in its last moments: a process past releasing its memory has no
	// environment left to tell whose it is, and its state turns Z a moment later.
	poll(t, 5*time.Second, "the member to be gone after the kill", func() bool { return !alive(member) })
}

// ignoresTerm reads /proc/PID/status: SigIgn has SIGTERM's bit.
func ignoresTerm(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigIgn:\t"); ok {
			mask, err := strconv.ParseUint(v, 16, 64)
			return err == nil && mask&(1<<(syscall.SIGTERM-1)) != 0
		}
	}
	return false
}

// An adopted orphan is reaped when it exits: no zombie child remains. (Process group
// mode: in cgroup mode the orphan dies with the program, see cgroup_test.go.)
func TestAdoptedOrphansAreReaped(t *testing.T) {
	dir := t.TempDir()
	// It exits once the grandchild left its group (else that dies with it), and has no
	// name to find its orphans by: the grandchild lives on, to exit by itself.
	spec := shell(`( setsid sh -c 'echo $$ > "$D/g.pid"; while [ ! -e "$D/go" ]; do sleep 0.01; done' & ); while [ ! -s "$D/g.pid" ]; do sleep 0.01; done; exit 0`)
	spec.Env = append(spec.Env, "D="+dir)
	h := startWith(t, processGroups(), spec)
	if e := wait(t, h); e.Code != 0 {
		t.Fatalf("exit %+v", e)
	}
	g := pidFile(t, filepath.Join(dir, "g.pid"))
	poll(t, 5*time.Second, "the grandchild's adoption", func() bool { return ppidOf(g) == os.Getpid() })
	before := orphans.reaped.Load()
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Second, "the grandchild to be reaped", func() bool {
		var buf [procfs.BufSize]byte
		_, exists := procfs.Read(g, buf[:]) // a zombie still exists; reaped, it is gone
		return !exists
	})
	if orphans.reaped.Load() == before {
		t.Error("the orphan reaper reaped nothing")
	}
	var zs []int
	poll(t, 5*time.Second, "no zombie children", func() bool { zs = zombieChildren(); return len(zs) == 0 })
}

// Own children keep their exits: the orphan reaper never takes them, even while
// it reaps their adopted orphans exiting at the same moment.
func TestOrphanReaperLeavesOwnChildren(t *testing.T) {
	for i := range 50 {
		script := "exit 7"
		if i%2 == 1 {
			script = "setsid -f sh -c 'exit 3'; exit 7" // and an orphan in a session of its own
		}
		if e := wait(t, start(t, shell(script))); e.Code != 7 {
			t.Fatalf("run %d: exit %+v, want code 7 (the exit was stolen)", i, e)
		}
	}
}

// At shutdown, the orphans adopted from the programs that no stop could tell apart (they
// left the group and cleared the environment naming their program) are stopped: TERM,
// then KILL after the grace for one that ignores it. They outlived the daemon.
func TestStopAdoptedLeavesNoEscapee(t *testing.T) {
	dir := t.TempDir()
	spec := shell(`( setsid env -i D="$D" sh -c 'trap "" TERM; echo $$ > "$D/g.pid"; while :; do sleep 0.05; done' & ); while [ ! -s "$D/g.pid" ]; do sleep 0.01; done; exit 0`)
	spec.Env = append(spec.Env, "D="+dir)
	l := processGroups()
	h := startWith(t, l, spec)
	if e := wait(t, h); e.Code != 0 {
		t.Fatalf("exit %+v", e)
	}
	g := pidFile(t, filepath.Join(dir, "g.pid"))
	poll(t, 5*time.Second, "the grandchild's adoption", func() bool { return ppidOf(g) == os.Getpid() })
	stopped := l.StopAdopted(200 * time.Millisecond)
	if !slices.Contains(stopped, g) {
		t.Errorf("stopped %v, want %d among them", stopped, g)
	}
	if alive(g) {
		t.Errorf("escapee %d still alive", g)
	}
}

// An orphan of a program that leads a process group of its own in the daemon's session
// (setpgid without setsid: bash's set -m, Python's process_group=0) is reaped once it
// dies with its program. It looked like a fork of the daemon's own, and was left a
// zombie for each crash or stop of such a program, for the daemon's life.
func TestGroupLeaderOrphansAreReaped(t *testing.T) {
	t.Run("process groups", func(t *testing.T) { groupLeaderReaped(t, processGroups()) })
	t.Run("cgroups", func(t *testing.T) { groupLeaderReaped(t, cgroupLauncher(t)) })
	t.Run("stopped, process groups", func(t *testing.T) { groupLeaderStoppedReaped(t, processGroups()) })
}

// The same helper, its parent still there when a group stop reaches them both: it dies
// adopted a moment after its parent, and is reaped (a zombie at each stop, as non-root).
func groupLeaderStoppedReaped(t *testing.T, l engine.Launcher) {
	dir := t.TempDir()
	// A parent that never reaps it (python's Popen waits only when asked), in a group of
	// its own (preexec_fn=os.setpgrp, as process_group=0 does).
	spec := shell(`exec python3 -c 'import os, signal, subprocess, time
p = subprocess.Popen(["sleep", "1000"], preexec_fn=os.setpgrp)
open(os.environ["D"] + "/g.pid", "w").write("%d\n" % p.pid)
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
time.sleep(1000)'`)
	spec.Env = append(spec.Env, "D="+dir, engine.EnvProcessName+"="+fmt.Sprintf("leader-stop-%d", os.Getpid()))
	h := startWith(t, l, spec)
	g := pidFile(t, filepath.Join(dir, "g.pid"))
	if err := h.Signal(syscall.SIGTERM, true); err != nil {
		t.Fatal(err)
	}
	wait(t, h)
	var buf [procfs.BufSize]byte
	poll(t, 5*time.Second, "the helper killed and reaped", func() bool {
		_, exists := procfs.Read(g, buf[:])
		return !exists
	})
}

func groupLeaderReaped(t *testing.T, l engine.Launcher) {
	dir := t.TempDir()
	// bash's job control (dash has none without a terminal) gives the job a group.
	spec := shell(`bash -c 'set -m; sleep 1000 & echo $! > "$D/g.pid"'; while [ ! -e "$D/go" ]; do sleep 0.01; done; exit 0`)
	spec.Env = append(spec.Env, "D="+dir, engine.EnvProcessName+"="+fmt.Sprintf("leader-%d", os.Getpid()))
	h := startWith(t, l, spec)
	g := pidFile(t, filepath.Join(dir, "g.pid"))
	var buf [procfs.BufSize]byte
	// Its own group, in its program's session (each program has one: see Start), never
	// the daemon's: an orphan by that alone.
	if p, _ := procfs.Read(g, buf[:]); p.Pgid != g || p.Sid != h.Pid() {
		t.Fatalf("the helper leads group %d in session %d: want its own group in its program's session %d", p.Pgid, p.Sid, h.Pid())
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wait(t, h) // the program exits; what it left dies with it
	poll(t, 5*time.Second, "the helper killed and reaped", func() bool {
		_, exists := procfs.Read(g, buf[:]) // a zombie still exists; reaped, it is gone
		return !exists
	})
}

// A group stop's SIGCONT reaches every process its signal did: a descendant that left
// the group (setsid) and was stopped (SIGSTOP) got the TERM and stayed frozen, its
// handler never run, until the SIGKILL after stop_timeout. (Cgroup mode signals the
// cgroup, all of it.)
func TestGroupContinueReachesEscapedDescendants(t *testing.T) {
	dir := t.TempDir()
	spec := shell(`setsid sh -c 'trap "echo term > \"$D/term\"; exit 0" TERM; echo $$ > "$D/s.pid"; while :; do sleep 0.01; done' & wait`)
	spec.Env = append(spec.Env, "D="+dir)
	h := startWith(t, processGroups(), spec)
	escaped := pidFile(t, filepath.Join(dir, "s.pid"))
	var buf [procfs.BufSize]byte
	if p, _ := procfs.Read(escaped, buf[:]); p.Pgid == h.Pid() {
		t.Fatalf("descendant %d is still in the program's group: the test proves nothing", escaped)
	}
	if err := syscall.Kill(escaped, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Second, "the descendant to stop", func() bool {
		p, _ := procfs.Read(escaped, buf[:])
		return p.State == 'T'
	})
	if err := h.Signal(syscall.SIGTERM, true); err != nil {
		t.Fatal(err)
	}
	h.(interface{ Continue(bool) }).Continue(true)
	poll(t, 5*time.Second, "the descendant's TERM handler", func() bool {
		_, err := os.Stat(filepath.Join(dir, "term"))
		return err == nil
	})
}

// Each program leads a session of its own, so it has no controlling terminal: under a
// foreground up, one run as another user could open root's terminal and type into its
// shell (TIOCSTI).
func TestProgramLeadsItsOwnSession(t *testing.T) {
	h := startWith(t, processGroups(), shell(`exec sleep 1000`))
	var buf [procfs.BufSize]byte
	p, ok := procfs.Read(h.Pid(), buf[:])
	if !ok || p.Sid != h.Pid() || p.Pgid != h.Pid() {
		t.Fatalf("program %d: session %d, group %d: want both its own", h.Pid(), p.Sid, p.Pgid)
	}
	if err := h.Signal(syscall.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	wait(t, h)
}
