package app

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/starvisor/starvisor/engine/api"
	"github.com/starvisor/starvisor/engine/monitor"
)

// LsCmd lists the bundles whose daemons run for this user, as `pm2 ls` does for its
// apps: each daemon holds a lock in the user's runtime folder (rootLockPath) naming
// its socket, so no registry is kept.
type LsCmd struct {
	JSON bool `name:"json" help:"Print a JSON list ({\"script\", \"pid\", \"socket\", \"processes\", \"running\", \"failed\"}; for a daemon that gave no figures, they are null and \"trouble\" says why)."`
}

// lsRow is one running daemon.
type lsRow struct {
	Script    string `json:"script"`
	Pid       int    `json:"pid"`
	Socket    string `json:"socket"`
	Processes int    `json:"processes"`
	Running   int    `json:"running"` // RUNNING, or a job done
	Failed    int    `json:"failed"`  // FATAL, BACKOFF, or blocked
	// Trouble: why the daemon holding the lock gave no figures ("" when it did): it does
	// not answer (hung, stopped), or its socket is gone (the bundle moved).
	Trouble string `json:"trouble,omitempty"`
	// MovedFrom: where the bundle was when its daemon started, for one moved since (its
	// figures asked on the socket where it is now).
	MovedFrom string `json:"moved_from,omitempty"`
}

// lsJSONRow is a row of ls --json: the figures null for a daemon that gave none (its
// trouble says why), where 0 read as "none failed" for a daemon nobody could ask.
type lsJSONRow struct {
	Script    string `json:"script"`
	Pid       int    `json:"pid"`
	Socket    string `json:"socket"`
	Processes *int   `json:"processes"`
	Running   *int   `json:"running"`
	Failed    *int   `json:"failed"`
	Trouble   string `json:"trouble,omitempty"`
	MovedFrom string `json:"moved_from,omitempty"`
}

func lsJSON(rows []lsRow) []lsJSONRow {
	out := make([]lsJSONRow, len(rows))
	for i, r := range rows {
		out[i] = lsJSONRow{Script: r.Script, Pid: r.Pid, Socket: r.Socket, Trouble: r.Trouble, MovedFrom: r.MovedFrom}
		if r.Trouble == "" {
			out[i].Processes, out[i].Running, out[i].Failed = &r.Processes, &r.Running, &r.Failed
		}
	}
	return out
}

// lsDirs are the folders ls reads locks from: runDirs, and, where XDG_RUNTIME_DIR is not
// set (su -, cron, sudo -iu), the login session's folder it names elsewhere: a daemon
// started from an ssh login locked its bundle in /run/user/<uid>, and ls from cron
// said none ran.
func lsDirs(uid int, xdg string) []string {
	dirs := runDirsFor(uid, xdg)
	if uid != 0 && xdg == "" {
		dirs = append(dirs, fmt.Sprintf("/run/user/%d/starvisor-%d", uid, uid))
	}
	return dirs
}

func (c *LsCmd) Run(d *Deps) error {
	var locks []string
	for _, dir := range lsDirs(os.Geteuid(), os.Getenv("XDG_RUNTIME_DIR")) {
		if err := ownRunDir(dir); err != nil {
			if !os.IsNotExist(err) {
				fmt.Fprintf(d.Stderr, "starvisor: warning: lock folder skipped: %v\n", err)
			}
			continue
		}
		found, _ := filepath.Glob(filepath.Join(dir, "*.lock"))
		locks = append(locks, found...)
	}
	seen := map[string]bool{} // a bundle reached through a symlink holds two locks
	var held []string         // the locks, one per daemon
	var dead []lsRow          // daemons gone (killed) whose programs run on
	for _, lock := range locks {
		if sock := lockedSocketAt(lock, ""); sock != "" && !seen[sock] {
			seen[sock] = true
			held = append(held, lock)
		} else if row, ok := lsDead(lock); ok && !seen[row.Socket] {
			seen[row.Socket] = true
			dead = append(dead, row)
		}
	}
	rows := make([]lsRow, len(held))
	var wg sync.WaitGroup
	for i, lock := range held {
		wg.Go(func() { rows[i] = lsLock(lock) }) // at once: a hung one costs its timeout once
	}
	wg.Wait()
	rows = append(rows, dead...)

	slices.SortFunc(rows, func(a, b lsRow) int { return strings.Compare(a.Script, b.Script) })
	if c.JSON {
		b, err := json.MarshalIndent(lsJSON(rows), "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(d.Stdout, "%s\n", b)
		return nil
	}
	if len(rows) == 0 {
		fmt.Fprintln(d.Stderr, "starvisor: no daemon runs (for this user)")
		return nil
	}
	table := [][]string{{"BUNDLE", "PID", "RUNNING", "FAILED", "SOCKET"}}
	for _, r := range rows {
		counts, failed := fmt.Sprintf("%d/%d", r.Running, r.Processes), strconv.Itoa(r.Failed)
		if r.Trouble != "" {
			counts, failed = "-", "-"
		}
		table = append(table, []string{r.Script, strconv.Itoa(r.Pid), counts, failed, r.Socket})
	}
	if err := writeColumns(d.Stdout, table); err != nil {
		return err
	}
	for _, r := range rows {
		if r.Trouble != "" {
			fmt.Fprintf(d.Stderr, "starvisor: ls: the daemon (pid %d) on %s %s\n", r.Pid, r.Socket, r.Trouble)
		}
		if r.MovedFrom != "" {
			fmt.Fprintf(d.Stderr, "starvisor: ls: %s moved there from %s while its daemon (pid %d) ran: starvisor apply there takes its new paths\n", filepath.Dir(r.Script), r.MovedFrom, r.Pid)
		}
	}
	return nil
}

// lsLock is the row of the daemon holding lock: its figures, or why there are none,
// with its pid from the lock (a hung daemon is the one looked for: said, not left out).
func lsLock(lock string) lsRow {
	sock := lockedSocketAt(lock, "")
	row, ok := lsDaemon(sock)
	if ok {
		return row
	}
	// The script as the daemon wrote it in its lock, when it did.
	row = lsRow{Script: cmp.Or(lockLine(lock, lockScript), "?"), Socket: sock, Trouble: cmp.Or(row.Trouble, "does not answer")}
	if b, err := os.ReadFile(lock); err == nil {
		if _, id, ok := strings.Cut(string(b), "\n"); ok {
			pid, _, _ := strings.Cut(strings.TrimSpace(id), ".")
			row.Pid, _ = strconv.Atoi(pid)
		}
	}
	if now := movedTo(strconv.Itoa(row.Pid), row.Script); !isSocket(sock) && now != "" {
		// Its socket where the bundle is now, when it was in the bundle's folder: the
		// row as any other, at the path that is there (it showed the old one, no figures).
		old := filepath.Dir(row.Script)
		if rel, err := filepath.Rel(old, sock); err == nil && filepath.IsLocal(rel) {
			if moved, ok := lsDaemon(filepath.Join(now, rel)); ok {
				if filepath.Dir(moved.Script) != now { // an apply there took the new paths already
					moved.MovedFrom = old
				}
				moved.Script = filepath.Join(now, filepath.Base(row.Script))
				return moved
			}
		}
		row.Trouble = "moved with its bundle's folder to " + now
	} else if !isSocket(sock) && row.Pid <= 0 {
		row.Trouble = "has no socket there any more (its bundle moved, or its folder was removed)"
	} else if !isSocket(sock) {
		row.Trouble = fmt.Sprintf("has no socket there any more (its bundle moved, or its folder was removed: `kill -USR2 %d` makes it again)", row.Pid)
	}
	return row
}

// lsDead is the row of a bundle whose daemon died (its lock kept, no one holding it:
// a clean exit removes it) leaving processes running, unsupervised: after an OOM kill
// of the daemon, ls said no daemon ran, and only status in the bundle told.
func lsDead(lock string) (lsRow, bool) {
	sock, id := lockLine(lock, lockSocket), lockLine(lock, lockIdentity)
	if sock == "" || id == "" || lockHeld(lock) {
		return lsRow{}, false
	}
	dir := stateDirOf(sock)
	if err := safeStateDir(dir); err != nil {
		return lsRow{}, false
	}
	daemon, left := monitor.LeftRunning(filepath.Join(dir, "state.json"), id)
	if len(left) == 0 {
		return lsRow{}, false
	}
	n := 0
	for _, s := range left {
		n += max(len(s.Pids), 1)
	}
	return lsRow{Script: cmp.Or(lockLine(lock, lockScript), "?"), Pid: daemon, Socket: sock,
		Trouble: fmt.Sprintf("is gone (killed?), and %s of its still run, unsupervised: starvisor up --detach there stops them, then starts the plan", plural(n, "process"))}, true
}

// lsDaemon asks the daemon on sock for its bundle, pid and states; false when it does
// not answer in time (with, as Trouble, why when it said: it is starting).
func lsDaemon(sock string) (lsRow, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cl := api.NewClient(sock)
	var starting string
	cl.Starting = func(msg string) { starting = msg }
	p, err := cl.Plan(ctx)
	if err != nil {
		// Answering, not serving yet: why ("is starting: stopping what ..."), after the
		// daemon and its pid, which the row says.
		if rest, ok := strings.CutPrefix(starting, "the daemon (pid "); ok {
			_, starting, _ = strings.Cut(rest, ") ")
		}
		return lsRow{Trouble: starting}, false
	}
	pid, _ := cl.Pid(ctx, "")
	st, err := cl.States(ctx)
	if err != nil {
		return lsRow{}, false
	}
	row := lsRow{Script: filepath.Join(p.Root, p.Entry), Pid: pid, Socket: sock, Processes: len(st.Programs)}
	look := newReadiness(p, st.Programs)
	for _, ps := range st.Programs {
		switch { // failed as status's exit code counts it: RUNNING whose probe gave up too
		case failing(ps):
			row.Failed++
		case ps.State == "RUNNING" || look.done(ps.Name): // a job done (a migration) is no process down
			row.Running++
		}
	}
	return row, true
}
