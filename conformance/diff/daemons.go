package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/starvisor/starvisor/engine/api"
)

// event is one state change of one process, from either daemon.
type event struct {
	at   time.Time
	proc string
	to   string // STARTING, RUNNING, BACKOFF, EXITED, FATAL, STOPPED
}

// daemon is one supervisor under test, running in its own temp dir.
type daemon interface {
	name() string
	start() error
	events() []event
	started() time.Time // when the daemon was exec'ed
	ctl(verb string, args ...string) (time.Duration, string, error)
	reload() error
	pid(proc string) int
	alive() bool
	stop() (time.Duration, error)
}

// ---- supervisord ----

type supervisord struct {
	dir   string
	cmd   *exec.Cmd
	t0    time.Time
	conf  string
	mu    sync.Mutex
	state map[string]string // last state per process, to tell BACKOFF from EXITED
}

func (s *supervisord) name() string       { return "supervisord" }
func (s *supervisord) started() time.Time { return s.t0 }

func (s *supervisord) start() error {
	s.conf = filepath.Join(s.dir, "supervisord.conf")
	s.cmd = exec.Command("/usr/bin/supervisord", "-n", "-c", s.conf)
	s.cmd.Dir = s.dir
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.t0 = time.Now()
	return s.cmd.Start()
}

var sdLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ (spawned|success|exited|gave up|stopped|spawnerr): '?([^' ]+)'?`)

// events parses supervisord's main log: "2026-11-25 16:52:42,547 INFO spawned: 'x' with pid 1".
func (s *supervisord) events() []event {
	data, _ := os.ReadFile(filepath.Join(s.dir, "sd.log"))
	last := map[string]string{}
	var out []event
	for _, l := range strings.Split(string(data), "\n") {
		m := sdLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		t, err := time.ParseInLocation("2006-01-02 15:04:05,000", m[1], time.Local)
		if err != nil {
			continue
		}
		to := ""
		switch m[2] {
		case "spawned":
			to = "STARTING"
		case "success":
			to = "RUNNING"
		case "exited":
			to = "EXITED"
			if last[m[3]] == "STARTING" {
				to = "BACKOFF"
			}
		case "spawnerr":
			to = "BACKOFF"
		case "gave up":
			to = "FATAL"
		case "stopped":
			to = "STOPPED"
		}
		last[m[3]] = to
		out = append(out, event{at: t, proc: m[3], to: to})
	}
	return out
}

func (s *supervisord) ctl(verb string, args ...string) (time.Duration, string, error) {
	t := time.Now()
	out, err := exec.Command("/usr/bin/supervisorctl", append([]string{"-c", s.conf, verb}, args...)...).CombinedOutput()
	return time.Since(t), strings.TrimSpace(string(out)), err
}

func (s *supervisord) reload() error {
	_, _, err := s.ctl("reload")
	return err
}

func (s *supervisord) pid(proc string) int {
	_, out, _ := s.ctl("pid", proc)
	n, _ := strconv.Atoi(strings.TrimSpace(out))
	return n
}

func (s *supervisord) alive() bool { return s.cmd.ProcessState == nil && pidAlive(s.cmd.Process.Pid) }

// stop sends TERM to the pid in supervisord's own pidfile and waits for it to exit.
func (s *supervisord) stop() (time.Duration, error) {
	return stopByPidfile(s.cmd, filepath.Join(s.dir, "sd.pid"))
}

// ---- starvisor ----

type starvisor struct {
	bin, dir string
	cmd      *exec.Cmd
	out      *os.File
	t0       time.Time
	client   *api.Client
}

func (s *starvisor) name() string       { return "starvisor" }
func (s *starvisor) started() time.Time { return s.t0 }

func (s *starvisor) start() error {
	f, err := os.Create(filepath.Join(s.dir, "up.out"))
	if err != nil {
		return err
	}
	s.out = f
	s.cmd = exec.Command(s.bin, "up", "-f", filepath.Join(s.dir, "deploy.star"))
	s.cmd.Dir, s.cmd.Stdout, s.cmd.Stderr = s.dir, f, f
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.client = api.NewClient(filepath.Join(s.dir, "sv.sock"))
	s.t0 = time.Now()
	return s.cmd.Start()
}

var svLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) (\S+) (\S+) -> (\S+)`)

func (s *starvisor) events() []event {
	data, _ := os.ReadFile(filepath.Join(s.dir, "up.out"))
	var out []event
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		m := svLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		t, err := time.ParseInLocation("2006-01-02T15:04:05.000", m[1], time.Local)
		if err == nil {
			out = append(out, event{at: t, proc: m[2], to: m[4]})
		}
	}
	return out
}

func (s *starvisor) ctl(verb string, args ...string) (time.Duration, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t := time.Now()
	if verb == "status" {
		_, err := s.client.Status(ctx)
		return time.Since(t), "", err
	}
	r, err := s.client.Action(ctx, verb, args)
	var b strings.Builder
	for _, x := range r.Results {
		fmt.Fprintf(&b, "%s: %s\n", x.Name, x.State)
	}
	return time.Since(t), strings.TrimSpace(b.String()), err
}

func (s *starvisor) reload() error {
	pid, err := readPid(filepath.Join(s.dir, "sv.pid"))
	if err != nil {
		return err
	}
	return syscall.Kill(pid, syscall.SIGHUP)
}

func (s *starvisor) pid(proc string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, _ := s.client.Pid(ctx, proc)
	return n
}

func (s *starvisor) alive() bool { return s.cmd.ProcessState == nil && pidAlive(s.cmd.Process.Pid) }

func (s *starvisor) stop() (time.Duration, error) {
	defer s.out.Close()
	return stopByPidfile(s.cmd, filepath.Join(s.dir, "sv.pid"))
}

// ---- helpers ----

func readPid(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// pidAlive reports whether pid runs and is not a zombie.
func pidAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && !strings.HasPrefix(string(stat[i+1:]), " Z")
}

// stopByPidfile sends TERM to the pid the daemon wrote in its pidfile (never to a name),
// waits up to 30 s, then SIGKILLs that pid.
func stopByPidfile(cmd *exec.Cmd, pidfile string) (time.Duration, error) {
	t := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	pid, err := readPid(pidfile)
	if err != nil || pid != cmd.Process.Pid {
		pid = cmd.Process.Pid // the daemon is our child either way
	}
	if cmd.ProcessState != nil {
		return 0, nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return 0, err
	}
	select {
	case <-done:
		return time.Since(t), nil
	case <-time.After(30 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL)
		<-done
		return time.Since(t), errors.New("did not stop within 30s; killed")
	}
}

// reapStrays kills the processes still running our fakeproc from dir (a daemon that
// died leaves its children): matched by the exact path of dir's fakeproc link in argv[0].
func reapStrays(dir string) int {
	self := filepath.Join(dir, "fakeproc")
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		if argv0 == self && pidAlive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			n++
		}
	}
	return n
}

// waitFor polls the daemon's events until cond holds or timeout passes.
func waitFor(d daemon, timeout time.Duration, cond func([]event) bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond(d.events()) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond(d.events())
}
