package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/shirou/gopsutil/v4/process"
	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/procfs"
)

// spawn starts sh -c script in its own process group, reaped in the background
// and killed (whole group) when the test ends.
func spawn(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	return cmd
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSampleCountsTheTree(t *testing.T) {
	is := is.New(t)
	cmd := spawn(t, "sleep 1000 & while :; do :; done")
	s := New()
	eventually(t, "the sleep child", func() bool { return len(descendants(scanProcs(), cmd.Process.Pid)) == 2 })
	var u = mustSample(t, s, cmd.Process.Pid)
	is.True(u.RSSBytes > 0)
	// The sleep counts in the tree, once its exec is through (mid-exec it has no pages).
	eventually(t, "the sleep in the tree's RSS", func() bool {
		u = mustSample(t, s, cmd.Process.Pid)
		return u.TreeRSSBytes > u.RSSBytes
	})
	eventually(t, "a busy CPU reading", func() bool {
		u = mustSample(t, s, cmd.Process.Pid)
		return u.CPUPercent > 30
	})
	is.True(u.TreeCPUPercent >= u.CPUPercent)
	_, err := s.Sample(1 << 30)
	is.True(err != nil)
}

// SampleGroups adds to a tree the members given for it (a cgroup's daemonized worker,
// re-parented away), and their descendants, each once.
func TestSampleGroupsAddsMembers(t *testing.T) {
	is := is.New(t)
	a := spawn(t, "sleep 1000")
	b := spawn(t, "sleep 1000 & wait") // not a's: another tree, with a child of its own
	eventually(t, "b's child", func() bool { return len(descendants(scanProcs(), b.Process.Pid)) == 2 })
	s := New().(*Sampler)
	var alone, with, bTree engine.Usage
	// Three samples agree once no exec is under way between them (a process mid-exec
	// has no pages yet): a flake under load.
	eventually(t, "steady trees", func() bool {
		alone = s.SampleGroups([]int{a.Process.Pid}, nil)[a.Process.Pid]
		with = s.SampleGroups([]int{a.Process.Pid}, map[int][]int{a.Process.Pid: {b.Process.Pid, a.Process.Pid}})[a.Process.Pid]
		bTree = s.SampleGroups([]int{b.Process.Pid}, nil)[b.Process.Pid]
		// And b's child has pages: mid-exec (sleep replacing the forked sh) it has none.
		return with.TreeRSSBytes == alone.TreeRSSBytes+bTree.TreeRSSBytes && bTree.TreeRSSBytes > bTree.RSSBytes
	})
	is.True(bTree.TreeRSSBytes > bTree.RSSBytes)                       // b's child counts in its tree
	is.Equal(with.TreeRSSBytes, alone.TreeRSSBytes+bTree.TreeRSSBytes) // b's tree added, a's counted once
}

func mustSample(t *testing.T, s interface {
	Sample(int) (engine.Usage, error)
}, pid int) engine.Usage {
	t.Helper()
	u, err := s.Sample(pid)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestStateFileRecordsStartsAndExits(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "state", "procs.json")
	cmd := spawn(t, "exec sleep 1000")
	f := &StateFile{Path: path}
	f.Started("web", cmd.Process.Pid, 0)
	f.Started("db", 999999, 0)
	var got map[string]Entry
	b, err := os.ReadFile(path)
	is.NoErr(err)
	is.NoErr(json.Unmarshal(b, &got))
	is.Equal(got["web"].Pid, cmd.Process.Pid)
	is.True(got["web"].Start > 0)
	f.Exited("db", 12) // another incarnation: kept
	f.Exited("web", cmd.Process.Pid)
	b, _ = os.ReadFile(path)
	got = nil
	is.NoErr(json.Unmarshal(b, &got))
	is.Equal(len(got), 1)
	is.Equal(got["db"].Pid, 999999)
	is.NoErr(f.Err())
}

// A start time handed over by the launcher is recorded as the one read from /proc.
func TestStateFileStartTicksAsProcs(t *testing.T) {
	is := is.New(t)
	cmd := spawn(t, "exec sleep 1000")
	var buf [procfs.BufSize]byte
	st, ok := procfs.Read(cmd.Process.Pid, buf[:])
	is.True(ok)
	f := &StateFile{Path: filepath.Join(t.TempDir(), "state.json")}
	f.Started("read", cmd.Process.Pid, 0)
	f.Started("given", cmd.Process.Pid, st.StartTicks)
	e := f.Entries()
	is.True(e["read"].Start > 0)
	is.Equal(e["given"], e["read"])
}

func TestCleanStraysStopsWhatAnEarlierDaemonLeft(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "procs.json")
	web := spawn(t, "sleep 1000 & exec sleep 1000")            // a group of two
	stubborn := spawn(t, "trap '' TERM; sleep 1000 & wait")    // ignores TERM
	recycled := spawn(t, "exec sleep 1000")                    // same pid, other start time
	orphans := spawn(t, "sleep 1000 & echo $! > "+path+".pid") // leader exits, child stays
	eventually(t, "the orphan", func() bool { _, err := os.Stat(path + ".pid"); return err == nil })
	old := &StateFile{Path: path}
	old.Started("web", web.Process.Pid, 0)
	old.Started("stubborn", stubborn.Process.Pid, 0)
	old.Started("recycled", recycled.Process.Pid, 0)
	old.Started("orphans", orphans.Process.Pid, 0)
	old.Started("gone", 999999, 0)
	// Make "recycled" look like another process that once had this pid.
	e := old.Entries()["recycled"]
	old.change(func(m map[string]Entry) { m["recycled"] = Entry{Pid: e.Pid, Start: e.Start - 5000} })
	eventually(t, "the orphan leader to exit", func() bool { return !leaderAlive(orphans.Process.Pid) })

	f := &StateFile{Path: path, Grace: 300 * time.Millisecond} // the next daemon
	strays, err := f.CleanStrays(context.Background())
	is.NoErr(err)
	names := []string{}
	for _, s := range strays {
		names = append(names, s.Process)
	}
	is.Equal(strings.Join(names, ","), "orphans,stubborn,web")
	is.Equal(len(strays[2].Pids), 2) // web: leader and its child
	is.True(!strays[2].Killed)       // TERM was enough
	is.True(strays[1].Killed)        // stubborn needed KILL
	for _, s := range strays {
		is.True(gone(s, groupsNow()))
	}
	is.True(leaderAlive(recycled.Process.Pid)) // never signalled
	is.Equal(onlySelf(t, path), true)          // replaced by the new daemon's state: itself, no process
}

// A state file copied from a running bundle (cp -r of its folder) names a daemon that
// still runs: its processes are that daemon's, and the copy's daemon leaves them alone.
func TestCleanStraysLeavesALiveDaemonsProcesses(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "state.json")
	web := spawn(t, "exec sleep 1000")
	other := spawn(t, "exec sleep 1000") // stands for the running daemon
	start, ok := startMillis(other.Process.Pid)
	is.True(ok)
	old := &StateFile{Path: path}
	old.Started("web", web.Process.Pid, 0)
	old.change(func(m map[string]Entry) { m[daemonKey] = Entry{Pid: other.Process.Pid, Start: start} })

	f := &StateFile{Path: path, Grace: 300 * time.Millisecond}
	strays, err := f.CleanStrays(context.Background())
	is.True(err != nil && strings.Contains(err.Error(), "still runs"))
	is.Equal(len(strays), 0)
	is.True(leaderAlive(web.Process.Pid))
	is.Equal(onlySelf(t, path), true)
}

// onlySelf reports whether the state file at path records this daemon and no process.
func onlySelf(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	var m map[string]Entry
	if err != nil || json.Unmarshal(b, &m) != nil {
		t.Fatalf("state file: %q, %v", b, err)
	}
	return len(m) == 1 && m[daemonKey] == self()
}

func TestCorruptStateFileIsReportedAndReplaced(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "procs.json")
	is.NoErr(os.WriteFile(path, []byte(`{"web": {"pid": 12`), 0o644))
	f := &StateFile{Path: path}
	strays, err := f.CleanStrays(context.Background())
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "corrupt"))
	is.Equal(len(strays), 0)
	var m map[string]Entry
	b, _ := os.ReadFile(path)
	is.NoErr(json.Unmarshal(b, &m)) // valid again
	strays, err = f.CleanStrays(context.Background())
	is.NoErr(err)
	is.Equal(len(strays), 0)
}

// The start time the state file records is gopsutil's CreateTime, to the millisecond:
// state files written before starvisor computed it itself still match.
func TestStartMillisIsGopsutilsCreateTime(t *testing.T) {
	is := is.New(t)
	cmd := spawn(t, "exec sleep 1000")
	got, ok := startMillis(cmd.Process.Pid)
	is.True(ok)
	p, err := process.NewProcess(int32(cmd.Process.Pid))
	is.NoErr(err)
	want, err := p.CreateTime()
	is.NoErr(err)
	is.Equal(got, want)
	_, ok = startMillis(1 << 30) // no such pid
	is.True(!ok)
}

// A daemon killed between spawning a child and recording it leaves a child the state
// file does not list; its environment names the daemon (STARVISOR_DAEMON), which the
// file does record, so the next daemon stops it, with its group. A process naming
// another daemon, or the same one while it is alive, is left alone.
func TestCleanStraysFindsUnrecordedChildren(t *testing.T) {
	is := is.New(t)
	dead := Entry{Pid: 999999, Start: 1} // no such process: the daemon is gone
	withEnv := func(daemon, script string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Env = append(os.Environ(), engine.EnvDaemon+"="+daemon, engine.EnvProcessName+"=web")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		is.NoErr(cmd.Start())
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
		return cmd
	}
	orphan := withEnv(identity(dead), "sleep 1000 & exec sleep 1000") // a child and its grandchild
	other := withEnv(identity(Entry{Pid: 999998, Start: 1}), "exec sleep 1000")
	eventually(t, "the grandchild", func() bool { return len(groupMembers(orphan.Process.Pid)) == 2 })
	path := filepath.Join(t.TempDir(), "state.json")
	is.NoErr(os.WriteFile(path, []byte(`{"starvisor:daemon": {"pid": 999999, "start": 1}}`), 0o644))

	strays, err := (&StateFile{Path: path, Grace: time.Second}).CleanStrays(context.Background())
	is.NoErr(err)
	is.Equal(len(strays), 1)
	is.Equal(strays[0].Process, "web")
	is.Equal(strays[0].Pid, orphan.Process.Pid)
	is.Equal(len(strays[0].Pids), 2)
	is.True(gone(strays[0], groupsNow()))
	is.True(leaderAlive(other.Process.Pid))
	is.True(onlySelf(t, path))

	// The daemon recorded is this process, alive: nothing of it is a stray.
	mine := withEnv(Self(), "exec sleep 1000")
	strays, err = (&StateFile{Path: path, Grace: time.Second}).CleanStrays(context.Background())
	is.NoErr(err)
	is.Equal(len(strays), 0)
	is.True(leaderAlive(mine.Process.Pid))
}

// After Release (a clean shutdown) the file no longer names the daemon.
func TestReleaseForgetsTheDaemon(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "state.json")
	f := &StateFile{Path: path}
	_, err := f.CleanStrays(context.Background())
	is.NoErr(err)
	is.True(onlySelf(t, path))
	f.Release()
	b, err := os.ReadFile(path)
	is.NoErr(err)
	is.Equal(strings.TrimSpace(string(b)), "{}")
}

// Strays are stopped as their programs are (StopAs): a database that shuts down cleanly
// on INT gets INT and its stop timeout, not TERM and KILL 2 s later; one that outlives
// its own stop timeout is killed. A process StopAs does not know gets TERM and Grace.
func TestCleanStraysStopThemAsTheirPrograms(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean")
	db := spawn(t, "trap '' TERM; trap 'sleep 0.5; echo clean > "+clean+"; exit 0' INT; while :; do sleep 0.05; done")
	stubborn := spawn(t, "trap '' TERM INT; while :; do sleep 0.05; done")
	plain := spawn(t, "exec sleep 1000")
	path := filepath.Join(dir, "state.json")
	old := &StateFile{Path: path}
	old.Started("db", db.Process.Pid, 0)
	old.Started("stubborn", stubborn.Process.Pid, 0)
	old.Started("plain", plain.Process.Pid, 0)

	f := &StateFile{Path: path, Grace: 200 * time.Millisecond, StopAs: func(process string) (StopSpec, bool) {
		switch process {
		case "db":
			return StopSpec{Signal: syscall.SIGINT, Timeout: 10 * time.Second}, true
		case "stubborn":
			return StopSpec{Signal: syscall.SIGINT, Group: true, Timeout: 300 * time.Millisecond}, true
		}
		return StopSpec{}, false
	}}
	strays, err := f.CleanStrays(context.Background())
	is.NoErr(err)
	killed := map[string]bool{}
	for _, s := range strays {
		killed[s.Process] = s.Killed
		is.True(gone(s, groupsNow()))
	}
	is.Equal(killed, map[string]bool{"db": false, "stubborn": true, "plain": false})
	b, err := os.ReadFile(clean)
	is.NoErr(err)
	is.Equal(string(b), "clean\n") // its INT handler ran to the end
}

// A stray stopped alone (not stop_as_group) is stopped as a live daemon stops its
// program: once its leader is gone, what it left running is killed at once, not after
// its stop timeout (an hour here: CleanStrays would run into ctx's deadline); one that
// ignores its stop signal still gets its stop timeout. A group stop gives the whole
// group the timeout.
func TestCleanStraysKillWhatAGoneLeaderLeftAtOnce(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	orphanFile := filepath.Join(dir, "orphan")
	forker := spawn(t, "sleep 1000 & sleep 1000 & wait")                                 // dies of TERM, its children do not get it
	orphans := spawn(t, "sleep 1000 & echo $! > "+orphanFile)                            // leader exits before the stop
	stubborn := spawn(t, "trap '' TERM; sleep 1000 & echo > "+dir+"/trap; wait")         // ignores TERM
	wrapper := spawn(t, `sh -c "trap '' TERM; echo > `+dir+`/inner; sleep 1000" & wait`) // its child ignores TERM
	eventually(t, "the children", func() bool {
		_, err1 := os.Stat(orphanFile)
		_, err2 := os.Stat(dir + "/trap")
		_, err3 := os.Stat(dir + "/inner")
		return len(groupMembers(forker.Process.Pid)) == 3 && err1 == nil && err2 == nil && err3 == nil
	})
	eventually(t, "the orphans' leader to exit", func() bool { return !leaderAlive(orphans.Process.Pid) })
	path := filepath.Join(dir, "state.json")
	old := &StateFile{Path: path}
	old.Started("forker", forker.Process.Pid, 0)
	old.Started("orphans", orphans.Process.Pid, 0)
	old.Started("stubborn", stubborn.Process.Pid, 0)
	old.Started("wrapper", wrapper.Process.Pid, 0)

	f := &StateFile{Path: path, StopAs: func(process string) (StopSpec, bool) {
		switch process {
		case "stubborn":
			return StopSpec{Signal: syscall.SIGTERM, Timeout: 300 * time.Millisecond}, true
		case "wrapper":
			return StopSpec{Signal: syscall.SIGTERM, Group: true, Timeout: 300 * time.Millisecond}, true
		}
		return StopSpec{Signal: syscall.SIGTERM, Timeout: time.Hour}, true
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	strays, err := f.CleanStrays(ctx)
	is.NoErr(err)
	how := map[string]string{}
	for _, s := range strays {
		is.True(gone(s, groupsNow()))
		how[s.Process] = fmt.Sprint(s.Killed, s.GroupKilled, s.LeftKilled)
	}
	is.Equal(how, map[string]string{
		"forker":   "false false true", // leftovers killed at once
		"orphans":  "false false true",
		"stubborn": "true false false", // its own pid got KILL
		"wrapper":  "false true false", // the rest of its group got KILL
	})
}

// A child found by its environment whose group leader has a higher pid (pids wrapped
// around: the scan meets it first) is one stray with its leader, not a stray of its own
// beside another of the same program.
func TestUnrecordedGroupIsFoundWhole(t *testing.T) {
	is := is.New(t)
	dead := identity(Entry{Pid: 999999, Start: 1})
	dir := t.TempDir()
	leaderFile := filepath.Join(dir, "leader")
	start := func(args ...string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), engine.EnvDaemon+"="+dead, engine.EnvProcessName+"=web")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		is.NoErr(cmd.Start())
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() { syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); <-done })
		return cmd
	}
	// The member starts first (the lower pid), then moves into the leader's group.
	member := start("python3", "-c", `import os, time
while not os.path.exists(`+strconv.Quote(leaderFile)+`): time.sleep(0.01)
os.setpgid(0, int(open(`+strconv.Quote(leaderFile)+`).read()))
time.sleep(1000)`)
	leader := start("sleep", "1000")
	is.True(member.Process.Pid < leader.Process.Pid)
	is.NoErr(os.WriteFile(leaderFile+".tmp", []byte(strconv.Itoa(leader.Process.Pid)), 0o644))
	is.NoErr(os.Rename(leaderFile+".tmp", leaderFile))
	eventually(t, "the member to join the group", func() bool { return len(groupMembers(leader.Process.Pid)) == 2 })

	path := filepath.Join(dir, "state.json")
	is.NoErr(os.WriteFile(path, []byte(`{"starvisor:daemon": {"pid": 999999, "start": 1}}`), 0o644))
	strays, err := (&StateFile{Path: path, Grace: time.Second}).CleanStrays(context.Background())
	is.NoErr(err)
	is.Equal(len(strays), 1)
	is.Equal(strays[0].Pid, leader.Process.Pid)
	is.Equal(len(strays[0].Pids), 2)
	is.True(gone(strays[0], groupsNow()))
}

// groupMembers returns the live (non-zombie) processes of process group pgid.
func groupMembers(pgid int) []int { return groupsNow()[pgid] }

// Hurry closed kills the strays left at once, their stop timeouts cut short: a second
// Ctrl-C of an up stopping what a killed daemon left.
func TestCleanStraysHurried(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	stubborn := spawn(t, "trap '' TERM; while :; do sleep 0.05; done")
	path := filepath.Join(dir, "state.json")
	old := &StateFile{Path: path}
	old.Started("stubborn", stubborn.Process.Pid, 0)
	hurry := make(chan struct{})
	f := &StateFile{Path: path, Hurry: hurry, StopAs: func(string) (StopSpec, bool) {
		return StopSpec{Signal: syscall.SIGTERM, Group: true, Timeout: time.Hour}, true
	}}
	f.Stopping = func([]Stray) { close(hurry) } // as soon as they are being stopped
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	strays, err := f.CleanStrays(ctx)
	is.NoErr(err) // not ctx's end: the hour was cut short
	is.Equal(len(strays), 1)
	is.True(strays[0].Killed)
}
