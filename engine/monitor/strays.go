package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Stray is a process group left running by an earlier daemon.
type Stray struct {
	Process string // process name it ran as
	Pid     int    // the recorded pid, leader of the group
	Pids    []int  // live members found (the leader may be gone)
	Killed  bool   // its leader outlived its stop signal and stop timeout, and got KILL
	// GroupKilled: it went of its stop signal, but the rest of its group (signalled
	// too: stop_as_group) outlived its stop timeout and got KILL.
	GroupKilled bool
	// LeftKilled: it went (or was gone already), and what it left running was killed at
	// once, as when a program exits or is stopped alone under a live daemon.
	LeftKilled bool
}

// StopSpec is how a stray is stopped: as its program is (stop_signal, stop_as_group,
// stop_timeout), so a database left by a killed daemon shuts down cleanly.
type StopSpec struct {
	Signal  syscall.Signal
	Group   bool          // the signal goes to its whole process group, not the leader alone
	Timeout time.Duration // before KILL, to the whole group
}

// CleanStrays reads the file an earlier daemon left, stops what it recorded that
// still runs, and what it spawned without recording it yet (found by STARVISOR_DAEMON,
// see unrecorded), and returns what it found. A pid counts only when it still has the
// recorded start time, so a recycled pid is never signalled; a group whose leader
// is gone is still found by its pgid (a pgid in use cannot be recycled). Each is
// stopped as StopAs says (TERM to its group, KILL after Grace, for a process it
// does not know), all at once. A corrupt file is reported and replaced; that error
// is not fatal.
func (f *StateFile) CleanStrays(ctx context.Context) ([]Stray, error) {
	return f.clean(ctx, true)
}

// StopLeft stops, as CleanStrays does, what the dead daemon that wrote the file left
// running, and leaves the file naming no daemon and no process: `shutdown` of a bundle
// whose daemon was killed. Nothing, and the file untouched, when that daemon runs.
func (f *StateFile) StopLeft(ctx context.Context) ([]Stray, error) {
	return f.clean(ctx, false)
}

// clean is CleanStrays for a starting daemon (daemon), which records itself in the file,
// and StopLeft for a client, which records nothing.
func (f *StateFile) clean(ctx context.Context, daemon bool) ([]Stray, error) {
	RemoveTemps(f.Path)
	data, err := os.ReadFile(f.Path)
	var old map[string]Entry
	var warn error
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		warn = fmt.Errorf("state file %s: %w", f.name(), errors.Unwrap(err))
	case len(bytes.TrimSpace(data)) == 0:
		// A machine crash can leave it empty (it is written without fsync), and nothing
		// of that boot survives: no error to alarm anyone.
	default:
		if err := json.Unmarshal(data, &old); err != nil {
			old = nil // replaced by this daemon's state below
			warn = fmt.Errorf("state file %s is corrupt, replaced it: %w", f.name(), err)
		}
	}
	prev, hadDaemon := old[daemonKey]
	delete(old, daemonKey)
	if e, ok := parseIdentity(f.Previous); !hadDaemon && ok {
		// The file lost its record (its folder removed, the file corrupt): the daemon
		// the bundle's lock names, if it died, may have left children.
		prev, hadDaemon = e, true
	}
	if hadDaemon && prev.Pid != os.Getpid() {
		if alive, same := incarnation(prev); alive && same {
			// The daemon that wrote it runs: this file is a copy of a running bundle's
			// (cp -r of its folder), whose processes are that daemon's, not strays.
			if !daemon {
				return nil, nil // it runs, and answers elsewhere: not the client's to touch
			}
			f.change(recordSelf)
			return nil, errors.Join(warn, fmt.Errorf("%s was written by a daemon that still runs (pid %d): a copy of a running bundle's; its processes are left alone", f.name(), prev.Pid))
		}
	}
	procs := scanProcs() // one look at /proc for both kinds
	strays := recorded(old, groupsOf(procs))
	if hadDaemon {
		strays = append(strays, unrecorded(prev, strays, procs)...)
		if prev.Pid != os.Getpid() {
			f.PreviousDaemon = prev.Pid
		}
	}
	if len(strays) > 0 && f.Stopping != nil {
		f.Stopping(strays)
	}
	f.stop(ctx, strays)
	// The old entries are dealt with.
	if daemon {
		f.change(recordSelf)
	} else {
		f.change(func(m map[string]Entry) { clear(m) })
	}
	if err := ctx.Err(); err != nil {
		return strays, errors.Join(warn, fmt.Errorf("stopping strays: %w", err))
	}
	return strays, warn
}

// LeftRunning reads, without touching anything, the state file at path of a daemon that
// is gone (killed: SIGKILL, the OOM killer) and returns its pid and the processes it
// recorded that still run, unsupervised; nothing when its daemon still runs or the
// file names none alive. The next up stops them (CleanStrays).
//
// previous is the daemon's identity as the bundle's lock kept it ("pid.start"; "" when
// none): when the file is lost or corrupt, the processes are found by it in their
// environment, as CleanStrays finds them.
func LeftRunning(path, previous string) (daemon int, left []Stray) {
	data, err := os.ReadFile(path)
	var old map[string]Entry
	read := err == nil && json.Unmarshal(data, &old) == nil
	prev, ok := old[daemonKey]
	switch {
	case ok:
	case read:
		return 0, nil // a clean exit cleared it
	default:
		if prev, ok = parseIdentity(previous); !ok {
			return 0, nil
		}
	}
	if alive, same := incarnation(prev); alive && same {
		return 0, nil // it runs: not reachable for another reason
	}
	delete(old, daemonKey)
	procs := scanProcs()
	left = recorded(old, groupsOf(procs))
	left = append(left, unrecorded(prev, left, procs)...)
	return prev.Pid, left
}

// recorded are the strays of the processes a state file records (the daemon's own entry
// taken out) that still run, by name (g: the process groups as they are).
func recorded(entries map[string]Entry, g groups) []Stray {
	var out []Stray
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		e := entries[name]
		if pids := strayPids(e, g); len(pids) > 0 {
			out = append(out, Stray{Process: name, Pid: e.Pid, Pids: pids})
		}
	}
	return out
}

// parseIdentity reads "pid.start" (identity's form).
func parseIdentity(s string) (Entry, bool) {
	p, st, ok := strings.Cut(s, ".")
	pid, err1 := strconv.Atoi(p)
	start, err2 := strconv.ParseInt(st, 10, 64)
	if !ok || err1 != nil || err2 != nil || pid <= 1 {
		return Entry{}, false
	}
	return Entry{Pid: pid, Start: start}, true
}

// strayPids returns the live processes left of entry e: its group's members,
// plus the leader itself if it is still the recorded process.
func strayPids(e Entry, g groups) []int {
	if e.Pid <= 1 || e.Pid == os.Getpid() || e.Pid == syscall.Getpgrp() {
		return nil
	}
	alive, same := incarnation(e)
	if alive && !same {
		return nil // recycled pid: not ours
	}
	pids := slices.Clone(g[e.Pid])
	if alive && !slices.Contains(pids, e.Pid) {
		pids = append(pids, e.Pid) // it left its group
	}
	return pids
}

// stop stops the strays at once, each as its spec says, and returns once all are gone,
// each given its stop timeout before KILL, or ctx ended. As under a live daemon, once
// the leader of one stopped alone (not stop_as_group) is gone, what it left running
// is killed at once: it was not signalled, and nothing waits for it.
func (f *StateFile) stop(ctx context.Context, strays []Stray) {
	grace := f.Grace
	if grace <= 0 {
		grace = 2 * time.Second
	}
	start := time.Now()
	g := groupsNow()
	deadlines := make([]time.Time, len(strays))
	group := make([]bool, len(strays))
	for i, s := range strays {
		spec := StopSpec{Signal: syscall.SIGTERM, Group: true, Timeout: grace}
		if f.StopAs != nil {
			if sp, ok := f.StopAs(s.Process); ok {
				spec = sp
			}
		}
		deadlines[i], group[i] = start.Add(spec.Timeout), spec.Group
		switch {
		case spec.Group:
			signal(s, spec.Signal, g)
		case leaderAlive(s.Pid):
			syscall.Kill(s.Pid, spec.Signal)
		default:
			continue // its leftovers are killed below
		}
		signal(s, syscall.SIGCONT, g) // one stopped (kill -STOP) takes it only once continued
	}
	killed := func(s Stray) bool { return s.Killed || s.GroupKilled || s.LeftKilled }
	var killedAt time.Time
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		now, left := time.Now(), false
		g = groupsNow() // one scan a round, not one a stray
		for i := range strays {
			s := &strays[i]
			if gone(*s, g) {
				continue
			}
			left = true
			if killed(*s) {
				continue
			}
			alive := leaderAlive(s.Pid)
			// What it left: its group's others as scanned. The leader may have died since
			// the scan, which then listed it: that alone is no leftover.
			others := slices.ContainsFunc(g[s.Pid], func(pid int) bool { return pid != s.Pid })
			switch {
			case !alive && !others:
				continue // gone since the scan
			case !alive && !group[i]:
				s.LeftKilled = true
			case now.After(deadlines[i]):
				s.Killed, s.GroupKilled = alive, !alive
			default:
				continue
			}
			signal(*s, syscall.SIGKILL, g)
			killedAt = now
		}
		if !left || !killedAt.IsZero() && now.Sub(killedAt) > grace && !slices.ContainsFunc(strays, func(s Stray) bool { return !killed(s) && !gone(s, g) }) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-f.Hurry:
			// Killed now, as a second Ctrl-C kills a stop under way.
			for i := range deadlines {
				deadlines[i] = time.Time{}
			}
			f.Hurry = nil // said once: a nil channel blocks
		case <-tick.C:
		}
	}
}

// signal sends sig to the stray's group, and to its leader should it have left it (g:
// the groups as they are).
func signal(s Stray, sig syscall.Signal, g groups) {
	syscall.Kill(-s.Pid, sig)
	if slices.Contains(s.Pids, s.Pid) && !slices.Contains(g[s.Pid], s.Pid) {
		syscall.Kill(s.Pid, sig) // the leader left its group
	}
}

func gone(s Stray, g groups) bool { return len(g[s.Pid]) == 0 && !leaderAlive(s.Pid) }

func leaderAlive(pid int) bool {
	st, ok := readStat(pid)
	return ok && !st.Zombie()
}

// RemoveTemps deletes the temporary copies an atomic write of path leaves when the
// daemon dies between creating and renaming one: natefinch/atomic names them path
// followed by digits, in the same folder. Only a starting daemon calls this, before it
// writes the file itself, so none of them is in use.
func RemoveTemps(path string) {
	matches, _ := filepath.Glob(path + "[0-9]*")
	for _, m := range matches {
		if digits := strings.TrimPrefix(m, path); strings.Trim(digits, "0123456789") == "" {
			os.Remove(m)
		}
	}
}

// ByProcess is strays as people read them: one per process name (a program's leftovers
// were found as several groups: its background jobs, a worker that made a group of its
// own, each read as another copy of the program), its pid a live one (a group's leader
// may be gone: its pid named no process). For messages only: stops go group by group.
func ByProcess(strays []Stray) []Stray {
	var out []Stray
	at := map[string]int{}
	for _, s := range strays {
		if s.Pid > 0 && !leaderAlive(s.Pid) && len(s.Pids) > 0 {
			s.Pid = s.Pids[0]
		}
		i, ok := at[s.Process]
		if !ok {
			at[s.Process] = len(out)
			s.Pids = slices.Clone(s.Pids)
			out = append(out, s)
			continue
		}
		m := &out[i]
		m.Pids = append(m.Pids, s.Pids...)
		m.Killed = m.Killed || s.Killed
		m.GroupKilled = m.GroupKilled || s.GroupKilled
		m.LeftKilled = m.LeftKilled || s.LeftKilled
	}
	return out
}
