package launcher

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/starvisor/starvisor/engine/procfs"
)

// Why: process groups plus the subreaper (tree_linux.go) lose a descendant that
// cleared its environment after its parent died, or forked between a scan and the
// signal. A cgroup loses nothing: membership is inherited at fork and cannot be left
// without privilege. So when the daemon runs as root on cgroup v2 with cgroup.kill
// (Linux 5.14), every process gets a cgroup of its own, under one parent per daemon:
//
//	<daemon's own cgroup>/starvisor-<pid>-<start ticks>/<process name>@<n>
//
// The child is cloned straight into it (clone3 CLONE_INTO_CGROUP), so it never runs
// outside. A group signal goes to every pid of cgroup.procs; a group SIGKILL is
// cgroup.kill. Once the main process is reaped, whatever is left in its cgroup is
// killed (systemd's KillMode=control-group) before the exit is reported, so a stop is
// over only when nothing of the program is left.
//
// A cgroup is kept, empty, for the process name's next spawn: on a 2-core VM a mkdir
// plus rmdir costs about 70 µs (under the global cgroup_mutex), a cgroup.kill 15 µs,
// an open and read of cgroup.events 9 µs, which showed in stop-all and restart latency
// when every spawn made and removed one. So an exit costs one read of cgroup.events
// when nothing was left behind (the common case), and a restart no mkdir. Except
// after a cgroup.kill: Linux (6.18 here) SIGKILLs every later clone3
// CLONE_INTO_CGROUP into a cgroup that was ever killed (cgroup_css_set_fork
// samples the kill sequence number of the forking process's cgroup, cgroup_post_fork
// compares it with the target's), so a killed cgroup is removed, off the exit's path,
// and the next spawn gets a new one. Kept cgroups go when the process is removed from
// the plan (Forget) or the launcher closes (Close, at the end of the engine's
// Shutdown). The parent exists while it has children: the last removal takes it too,
// so a daemon that shuts down leaves nothing behind. A daemon killed with SIGKILL
// leaves its parent; the next one removes the empty cgroups of dead daemons when it
// first starts.
//
// No controller is enabled in any subtree_control, so cgroup v2's "no internal
// processes" rule does not apply to the daemon's own cgroup, which holds the daemon.
// Anything that fails (not root, cgroup v1 only, an old kernel, a spawn refused)
// leaves the launcher on process groups, as without cgroups.

const (
	cgroupParentPrefix = "starvisor-"
	drainSync          = 2 * time.Second  // the exit waits this long for the cgroup to empty
	drainMax           = 60 * time.Second // then a goroutine keeps trying this long
)

var errNoKill = errors.New("no cgroup.kill (Linux 5.14 or later needed)")

// cgroups is the per-daemon parent cgroup and its children's bookkeeping.
type cgroups struct {
	base string // the daemon's own cgroup directory
	rel  string // base as /proc/PID/cgroup names it
	name string // the parent's name: starvisor-<pid>-<start ticks>, unique among live daemons

	mu   sync.Mutex
	live int                // child cgroups not yet removed: the parent exists while > 0
	idle map[string]*cgroup // per process name: an empty cgroup kept for its next spawn
	seq  atomic.Uint64
	// removing counts removals of killed cgroups left to a goroutine after the exit was
	// reported (under mu); removeIdle(nil) waits for them on removed.
	removing int
	removed  *sync.Cond
}

// cgroup is one process's cgroup, used by one spawn at a time.
type cgroup struct {
	cgs    *cgroups
	dir    string
	rel    string      // as in the 0:: line of a member's /proc/PID/cgroup
	killed atomic.Bool // cgroup.kill was written: no spawn can live in it any more
}

var system struct {
	once sync.Once
	cgs  *cgroups
	why  error
}

// systemCgroups detects cgroup support for this process, once: every launcher of the
// daemon shares the one parent cgroup.
func systemCgroups() (*cgroups, error) {
	system.once.Do(func() {
		system.cgs, system.why = detectCgroups("/proc/self/mountinfo", "/proc/self/cgroup", os.Geteuid())
		if system.cgs != nil {
			system.cgs.cleanStale()
		}
	})
	return system.cgs, system.why
}

// detectCgroups finds the daemon's own cgroup v2 directory from the mount table and
// its /proc/self/cgroup (both paths are parameters so tests can fake them), or says
// why cgroups cannot be used.
func detectCgroups(mountinfo, selfCgroup string, euid int) (*cgroups, error) {
	if euid != 0 {
		return nil, errors.New("not running as root")
	}
	mnt, mntRoot, err := cgroup2Mount(mountinfo)
	if err != nil {
		return nil, err
	}
	own, err := ownCgroup(selfCgroup)
	if err != nil {
		return nil, err
	}
	rel, ok := strings.CutPrefix(own, mntRoot)
	if !ok || (rel != "" && !strings.HasPrefix(rel, "/") && mntRoot != "/") {
		return nil, fmt.Errorf("own cgroup %s is outside the cgroup2 mount's root %s", own, mntRoot)
	}
	base := filepath.Join(mnt, rel)
	if _, err := os.Stat(filepath.Join(base, "cgroup.procs")); err != nil {
		return nil, fmt.Errorf("own cgroup %s: %w", base, err)
	}
	// The hierarchy's root has no cgroup.kill; the parent's is checked when it is made.
	if path.Clean("/"+rel) != "/" {
		if _, err := os.Stat(filepath.Join(base, "cgroup.kill")); err != nil {
			return nil, errNoKill
		}
	}
	var buf [procfs.BufSize]byte
	self, _ := procfs.Read(os.Getpid(), buf[:])
	return &cgroups{base: base, rel: own, name: fmt.Sprintf("%s%d-%d", cgroupParentPrefix, os.Getpid(), self.StartTicks)}, nil
}

// cgroup2Mount returns the mount point and the mounted root of the first cgroup2
// mount in mountinfo (/sys/fs/cgroup, or /sys/fs/cgroup/unified in hybrid mode).
func cgroup2Mount(mountinfo string) (point, root string, err error) {
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		return "", "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source super
		before, after, ok := strings.Cut(sc.Text(), " - ")
		f, g := strings.Fields(before), strings.Fields(after)
		if !ok || len(f) < 5 || len(g) < 1 || g[0] != "cgroup2" {
			continue
		}
		return unescapeMount(f[4]), unescapeMount(f[3]), nil
	}
	return "", "", errors.New("no cgroup2 mount")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroup reads the cgroup v2 path of the 0:: line of a /proc/PID/cgroup file.
func ownCgroup(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			if !strings.HasPrefix(p, "/") || strings.Contains(p, "/..") {
				return "", fmt.Errorf("own cgroup %q is outside this cgroup namespace", p)
			}
			return p, nil
		}
	}
	return "", errors.New("no cgroup v2 line (0::) in " + file)
}

func (c *cgroups) parent() string { return filepath.Join(c.base, c.name) }

// create makes the cgroup for one spawn of the process named name, and the parent if
// it is not there, and opens the directory for CLONE_INTO_CGROUP. The caller closes fd.
func (c *cgroups) create(name string) (g *cgroup, fd int, err error) {
	c.mu.Lock()
	if c.live == 0 {
		if err := os.Mkdir(c.parent(), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			c.mu.Unlock()
			return nil, -1, err
		}
		if _, err := os.Stat(filepath.Join(c.parent(), "cgroup.kill")); err != nil {
			syscall.Rmdir(c.parent())
			c.mu.Unlock()
			return nil, -1, errNoKill
		}
	}
	c.live++
	c.mu.Unlock()
	leaf := cgroupName(name, c.seq.Add(1))
	g = &cgroup{cgs: c, dir: filepath.Join(c.parent(), leaf), rel: path.Join(c.rel, c.name, leaf)}
	if err := os.Mkdir(g.dir, 0o755); err != nil {
		c.release()
		return nil, -1, err
	}
	fd, err = syscall.Open(g.dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		syscall.Rmdir(g.dir)
		c.release()
		return nil, -1, err
	}
	return g, fd, nil
}

// take returns an empty cgroup for a spawn of the process named name, opened for
// CLONE_INTO_CGROUP: the one kept from its last run, else a new one. The caller
// closes fd.
func (c *cgroups) take(name string) (g *cgroup, fd int, err error) {
	c.mu.Lock()
	g = c.idle[name]
	delete(c.idle, name)
	c.mu.Unlock()
	if g != nil {
		fd, err = syscall.Open(g.dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err == nil {
			return g, fd, nil
		}
		g.dispose() // removed by someone else: forget it, make another
	}
	return c.create(name)
}

// keep puts g, empty, back for the next spawn of name and says true, unless it was
// killed (see the top) or name already has a kept one (two spawns of one name at
// once): then the caller removes it.
func (c *cgroups) keep(name string, g *cgroup) bool {
	if g.killed.Load() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle[name] != nil {
		return false
	}
	if c.idle == nil {
		c.idle = map[string]*cgroup{}
	}
	c.idle[name] = g
	return true
}

// removeLater removes g from a goroutine, so that an exit is not held by rmdir;
// removeIdle(nil) waits for it.
func (c *cgroups) removeLater(g *cgroup) {
	c.mu.Lock()
	c.removing++
	c.mu.Unlock()
	go func() {
		g.dispose()
		c.mu.Lock()
		if c.removing--; c.removing == 0 && c.removed != nil {
			c.removed.Broadcast()
		}
		c.mu.Unlock()
	}()
}

// removeIdle removes the kept cgroups of names, or, when names is nil, every kept one
// and waits for the removals in progress. Spawns that are running keep theirs until
// they exit.
func (c *cgroups) removeIdle(names []string) {
	if names == nil {
		defer func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.removed == nil {
				c.removed = sync.NewCond(&c.mu)
			}
			for c.removing > 0 {
				c.removed.Wait()
			}
		}()
	}
	var gone []*cgroup
	c.mu.Lock()
	if names == nil {
		for _, g := range c.idle {
			gone = append(gone, g)
		}
		clear(c.idle)
	}
	for _, n := range names {
		if g := c.idle[n]; g != nil {
			gone = append(gone, g)
			delete(c.idle, n)
		}
	}
	c.mu.Unlock()
	for _, g := range gone {
		g.dispose()
	}
}

// release forgets one child cgroup, removing the parent with the last one.
func (c *cgroups) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live--; c.live == 0 {
		syscall.Rmdir(c.parent()) // EBUSY if a child could not be removed: left for cleanStale
	}
}

// cgroupName makes a directory name from a process name: no '/', never "." or "..",
// never a cgroup interface file's name (the @n suffix), at most about 100 bytes.
func cgroupName(name string, n uint64) string {
	b := []byte(name)
	if len(b) > 100 {
		b = b[:100]
	}
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '-' || c == '.' || c == ':'
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		b = []byte("process")
	}
	return string(b) + "@" + strconv.FormatUint(n, 10)
}

// cleanStale removes the empty cgroups left by daemons that died (SIGKILL): parents
// named for a pid that is gone or now another process. Populated ones stay (their
// processes are the next daemon's state file's business); rmdir refuses them.
func (c *cgroups) cleanStale() {
	for _, d := range c.deadParents() {
		removeTree(filepath.Join(c.base, d.name))
	}
}

// deadParent is the parent cgroup of a daemon that is gone.
type deadParent struct {
	name string // starvisor-<pid>-<start ticks>
	pid  int
}

// deadParents lists the parent cgroups beside this daemon's whose daemon is gone (its
// pid free, another process's, or a zombie: a killed daemon not yet reaped).
func (c *cgroups) deadParents() []deadParent {
	ents, _ := os.ReadDir(c.base)
	var buf [procfs.BufSize]byte
	var out []deadParent
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), cgroupParentPrefix)
		pidS, ticksS, ok2 := strings.Cut(rest, "-")
		pid, err1 := strconv.Atoi(pidS)
		ticks, err2 := strconv.ParseUint(ticksS, 10, 64)
		if !ok || !ok2 || err1 != nil || err2 != nil || !e.IsDir() || e.Name() == c.name {
			continue
		}
		if p, alive := procfs.Read(pid, buf[:]); alive && !p.Zombie() && p.StartTicks == ticks {
			continue // another live daemon's
		}
		out = append(out, deadParent{e.Name(), pid})
	}
	return out
}

// killLeftovers kills what is left in the cgroups of the dead daemon pid (this
// bundle's previous one, from its state file) and removes them: a descendant that
// left its process group and cleared its environment is found by nothing else. A
// live daemon's (the pid reused by another daemon) are left alone. It returns how many
// processes it killed.
func (c *cgroups) killLeftovers(pid int) int {
	killed := 0
	for _, d := range c.deadParents() {
		if d.pid != pid {
			continue
		}
		parent := filepath.Join(c.base, d.name)
		kids, _ := os.ReadDir(parent)
		for _, k := range kids {
			if !k.IsDir() {
				continue
			}
			g := &cgroup{cgs: c, dir: filepath.Join(parent, k.Name())}
			if pids, _ := g.procs(); len(pids) > 0 {
				killed += len(pids)
				g.kill()
				waitEmpty(filepath.Join(g.dir, "cgroup.events"), time.Now().Add(drainSync))
			}
		}
		removeTree(parent)
	}
	return killed
}

// removeTree removes a cgroup and its descendant cgroups, deepest first; populated
// ones stay (EBUSY).
func removeTree(dir string) error {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			removeTree(filepath.Join(dir, e.Name()))
		}
	}
	return syscall.Rmdir(dir)
}

// procs lists the pids in the cgroup; a removed cgroup has none.
func (g *cgroup) procs() ([]int, error) {
	data, err := os.ReadFile(filepath.Join(g.dir, "cgroup.procs"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pids []int
	for f := range strings.FieldsSeq(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// kill SIGKILLs every process of the cgroup at once, forks in flight included.
func (g *cgroup) kill() error {
	g.killed.Store(true)
	f, err := os.OpenFile(filepath.Join(g.dir, "cgroup.kill"), os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed: nothing left to kill
	}
	if err != nil {
		return err
	}
	_, err = f.Write([]byte("1"))
	return errors.Join(err, f.Close())
}

// signal sends sig to every process of the cgroup: the main one through its handle,
// the others through pidfds checked to be still in the cgroup, so a pid recycled
// since cgroup.procs was read is never hit.
func (g *cgroup) signal(h *handle, sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		return g.kill()
	}
	// Once, to what is there: a process forked since (a shutdown handler's own helper)
	// must not get the stop signal too, as kill(-pgid) would not send it. SIGKILL, above,
	// takes forks in flight as well.
	pids, err := g.procs()
	if err != nil {
		return err
	}
	var first error
	for _, pid := range pids {
		if pid == h.pid && !h.reaped {
			if err := h.signalSelf(sig); err != nil && first == nil {
				first = err
			}
			continue
		}
		g.signalMember(pid, sig)
	}
	return first
}

func (g *cgroup) signalMember(pid int, sig syscall.Signal) {
	fd, _, e := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	if e != 0 {
		return // gone (clone3 into a cgroup implies a kernel with pidfd_open)
	}
	defer syscall.Close(int(fd))
	if own, err := ownCgroup("/proc/" + strconv.Itoa(pid) + "/cgroup"); err != nil || own != g.rel {
		return // the pid was recycled before the pidfd was opened
	}
	syscall.Syscall6(sysPidfdSendSignal, fd, uintptr(sig), 0, 0, 0, 0)
}

// drain kills what is left in the cgroup once the main process is reaped and waits
// for it to empty: empty when it is (then it can be kept for the next spawn); killed
// when something was left. Most
// programs leave nothing, so one read of cgroup.events usually settles it, without
// cgroup.kill. A cgroup that does not empty within drainSync (a process stuck in D
// state) is finished and removed by a goroutine, and drain says false.
func (g *cgroup) drain() (empty, killed bool) {
	events := filepath.Join(g.dir, "cgroup.events")
	if populated(events) == 0 {
		return true, false
	}
	g.kill()
	if waitEmpty(events, time.Now().Add(drainSync)) {
		return true, true
	}
	go func() {
		g.kill() // forks that raced the first kill
		g.finish(time.Now().Add(drainMax))
	}()
	return false, true
}

// discard removes a cgroup whose spawn failed: nothing runs in it.
func (g *cgroup) discard() {
	if !g.finish(time.Now().Add(drainSync)) {
		g.cgs.release()
	}
}

// dispose removes an empty cgroup that is no longer wanted: at once when rmdir takes
// it, else (a task still dying, or one moved in from outside) within drainSync, else
// from a goroutine that kills what is there first.
func (g *cgroup) dispose() {
	if err := syscall.Rmdir(g.dir); err == nil || err == syscall.ENOENT {
		g.cgs.release()
		return
	}
	if g.finish(time.Now().Add(drainSync)) {
		return
	}
	go func() {
		g.kill()
		g.finish(time.Now().Add(drainMax))
	}()
}

// finish waits until the cgroup is empty, then removes it and releases it; false when
// the deadline passed first (nothing released).
func (g *cgroup) finish(deadline time.Time) bool {
	if !waitEmpty(filepath.Join(g.dir, "cgroup.events"), deadline) {
		return false
	}
	for {
		err := removeTree(g.dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			break
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond) // a dying task may keep it busy a moment after populated 0
	}
	g.cgs.release()
	return true
}

// populated reads cgroup.events once: 0 when the cgroup (and its descendants) holds
// no process or is gone, 1 when it does or the file cannot be read.
func populated(events string) int {
	fd, err := syscall.Open(events, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return 0
		}
		return 1
	}
	defer syscall.Close(fd)
	var buf [256]byte
	n, err := syscall.Pread(fd, buf[:], 0)
	if err != nil || !bytes.Contains(buf[:n], []byte("populated 0")) {
		return 1
	}
	return 0
}

// waitEmpty waits until cgroup.events says "populated 0" (true), or deadline. The
// kernel signals POLLPRI on the file when the value changes, so this blocks in ppoll
// rather than polling on a timer. A missing file is an empty (removed) cgroup.
func waitEmpty(events string, deadline time.Time) bool {
	fd, err := syscall.Open(events, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return errors.Is(err, syscall.ENOENT)
	}
	defer syscall.Close(fd)
	var buf [256]byte
	for {
		n, err := syscall.Pread(fd, buf[:], 0)
		if err != nil {
			return false
		}
		if bytes.Contains(buf[:n], []byte("populated 0")) {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		pfd := struct {
			fd             int32
			events, revent int16
		}{int32(fd), 0x2 /* POLLPRI */, 0}
		ts := syscall.NsecToTimespec(int64(left))
		syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	}
}

// Cgroups says whether a launcher made now puts each process in a cgroup of its own
// (nil), or why not. It makes and removes a scratch cgroup, so the answer includes what
// only an attempt shows (cgroup.kill, permissions). Tests choose their expectations by it.
func Cgroups() error {
	cgs, why := systemCgroups()
	if cgs == nil {
		return why
	}
	g, fd, err := cgs.create("probe")
	if err != nil {
		return err
	}
	syscall.Close(fd)
	g.discard()
	return nil
}

// diedInProgramCgroup says whether process pid was in one of this daemon's program
// cgroups: a zombie keeps the cgroup it died in, when its environment is gone.
func diedInProgramCgroup(pid int) bool {
	cgs, _ := systemCgroups()
	if cgs == nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	prefix := path.Join(cgs.rel, cgs.name) + "/"
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
			return strings.HasPrefix(rest, prefix)
		}
	}
	return false
}
