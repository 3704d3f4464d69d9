// Package fakeproc is a small scriptable child process for the conformance suite, so the
// scenarios need neither sh nor sleep and behave the same on every machine.
//
// Verbs are chained in argv and run left to right (argv prints the rest of the
// arguments, one a line, and ends the run):
//
//	fakeproc print hello ready web.ready trap TERM sleep 1h
//
// Verbs: print TEXT, stderr TEXT, write-lines N, exit CODE, sleep DURATION, trap SIG
// (ignore it), catch SIG FILE (append its name to FILE on each arrival), exit-on SIG CODE,
// ready FILE / pid FILE (write the pid), stamp FILE (write the time), append FILE TEXT,
// listen ADDR, env, umask, pwd, id, close-stdio, spawn-grandchild PIDFILE (same process
// group), spawn-holder PIDFILE (same group, holding our stdout/stderr), daemonize
// PIDFILE (setsid), argv (print the remaining arguments and end).
//
// An argument error exits 2 with a message on stderr.
package fakeproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// verb is one step: it consumes its arguments from args and says how many it used.
// A non-nil exit ends the run with that code.
type verb struct {
	nargs int
	run   func(p *proc, args []string) (exit *int, err error)
}

type proc struct {
	stdout, stderr io.Writer
	listeners      []net.Listener

	mu      sync.Mutex
	caught  map[os.Signal]string // signal -> file to append its name to
	exitOn  map[os.Signal]int    // signal -> exit code
	handled map[os.Signal]bool   // a goroutine serves this signal
}

var verbs = map[string]verb{
	"print":            {1, func(p *proc, a []string) (*int, error) { _, err := fmt.Fprintln(p.stdout, a[0]); return nil, err }},
	"stderr":           {1, func(p *proc, a []string) (*int, error) { _, err := fmt.Fprintln(p.stderr, a[0]); return nil, err }},
	"write-lines":      {1, writeLines},
	"exit":             {1, exit},
	"sleep":            {1, sleep},
	"trap":             {1, trap},
	"ready":            {1, ready},
	"listen":           {1, listen},
	"env":              {0, printEnv},
	"umask":            {0, printUmask},
	"pwd":              {0, pwd},
	"pid":              {1, func(p *proc, a []string) (*int, error) { return nil, writeAtomic(a[0], strconv.Itoa(os.Getpid())) }},
	"spawn-grandchild": {1, spawnGrandchild},
	"spawn-holder":     {1, spawnHolder},
	"daemonize":        {1, daemonize},
	"catch":            {2, catch},
	"exit-on":          {2, exitOn},
	"append":           {2, appendLine},
	"close-stdio":      {0, closeStdio},
	"id":               {0, printID},
	"stamp":            {1, stamp},
	"argv":             {0, nil}, // handled in run: prints the rest of argv
}

// Main runs the verbs in args (args excludes the program name) and returns the exit code.
func Main(args []string) int {
	return run(args, os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
	p := &proc{stdout: stdout, stderr: stderr}
	defer func() {
		for _, l := range p.listeners {
			l.Close()
		}
	}()
	for len(args) > 0 {
		name := args[0]
		v, ok := verbs[name]
		if !ok {
			fmt.Fprintf(stderr, "fakeproc: unknown verb %q\n", name)
			return 2
		}
		if name == "argv" {
			for _, a := range args[1:] {
				fmt.Fprintln(p.stdout, a)
			}
			return 0
		}
		if len(args)-1 < v.nargs {
			fmt.Fprintf(stderr, "fakeproc: %s: want %d argument(s)\n", name, v.nargs)
			return 2
		}
		code, err := v.run(p, args[1:1+v.nargs])
		if err != nil {
			fmt.Fprintf(stderr, "fakeproc: %s: %v\n", name, err)
			return 2
		}
		if code != nil {
			return *code
		}
		args = args[1+v.nargs:]
	}
	return 0
}

func writeLines(p *proc, a []string) (*int, error) {
	n, err := strconv.Atoi(a[0])
	if err != nil || n < 0 {
		return nil, fmt.Errorf("want a count, got %q", a[0])
	}
	w := bufio.NewWriter(p.stdout)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, "line %d\n", i)
	}
	return nil, w.Flush()
}

func exit(_ *proc, a []string) (*int, error) {
	code, err := strconv.Atoi(a[0])
	if err != nil || code < 0 || code > 255 {
		return nil, fmt.Errorf("want an exit code 0..255, got %q", a[0])
	}
	return &code, nil
}

func sleep(_ *proc, a []string) (*int, error) {
	d, err := time.ParseDuration(a[0])
	if err != nil {
		return nil, err
	}
	time.Sleep(d)
	return nil, nil
}

var signals = map[string]syscall.Signal{
	"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "HUP": syscall.SIGHUP,
	"QUIT": syscall.SIGQUIT, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2,
}

// trap ignores a signal, like a service that does not stop when asked to.
func trap(_ *proc, a []string) (*int, error) {
	sig, ok := signals[a[0]]
	if !ok {
		return nil, fmt.Errorf("unknown signal %q", a[0])
	}
	signal.Ignore(sig)
	return nil, nil
}

// ready writes FILE (its content is the pid) by rename, so a watcher never sees it half written.
func ready(_ *proc, a []string) (*int, error) {
	return nil, writeAtomic(a[0], strconv.Itoa(os.Getpid()))
}

func writeAtomic(name, content string) error {
	tmp := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+".tmp")
	if err := os.WriteFile(tmp, []byte(content+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// listen accepts and closes connections on ADDR until the process ends.
func listen(p *proc, a []string) (*int, error) {
	l, err := net.Listen("tcp", a[0])
	if err != nil {
		return nil, err
	}
	p.listeners = append(p.listeners, l)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return nil, nil
}

func printEnv(p *proc, _ []string) (*int, error) {
	env := os.Environ()
	sort.Strings(env)
	for _, kv := range env {
		if _, err := fmt.Fprintln(p.stdout, kv); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func printUmask(p *proc, _ []string) (*int, error) {
	m := syscall.Umask(0)
	syscall.Umask(m)
	_, err := fmt.Fprintf(p.stdout, "%04o\n", m)
	return nil, err
}

func pwd(p *proc, _ []string) (*int, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintln(p.stdout, wd)
	return nil, err
}

// spawnGrandchild starts "fakeproc sleep 1h" in this process's group and writes its pid to
// PIDFILE; it is not waited for, so only a group signal from the supervisor reaches it.
func spawnGrandchild(_ *proc, a []string) (*int, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "sleep", "1h")
	cmd.Args[0] = "fakeproc" // testscript picks the command by the basename of argv[0]
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return nil, writeAtomic(a[0], strconv.Itoa(cmd.Process.Pid))
}

// spawnHolder is spawnGrandchild with the grandchild holding this process's stdout and
// stderr, so the pipes stay open after this process exits.
func spawnHolder(_ *proc, a []string) (*int, error) {
	return nil, startGrandchild(a[0], func(c *exec.Cmd) { c.Stdout, c.Stderr = os.Stdout, os.Stderr })
}

// daemonize starts "fakeproc sleep 1h" in a session of its own (setsid), out of reach of
// any process-group signal, and writes its pid to PIDFILE.
func daemonize(_ *proc, a []string) (*int, error) {
	return nil, startGrandchild(a[0], func(c *exec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{Setsid: true} })
}

func startGrandchild(pidfile string, setup func(*exec.Cmd)) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "sleep", "1h")
	cmd.Args[0] = "fakeproc"
	setup(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	return writeAtomic(pidfile, strconv.Itoa(cmd.Process.Pid))
}

// catch appends the signal's name to FILE each time SIG arrives, and carries on.
func catch(p *proc, a []string) (*int, error) {
	sig, ok := signals[a[0]]
	if !ok {
		return nil, fmt.Errorf("unknown signal %q", a[0])
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.caught == nil {
		p.caught = map[os.Signal]string{}
	}
	p.caught[sig] = a[1]
	p.handle(sig)
	return nil, nil
}

// exitOn exits with CODE when SIG arrives (after catch has recorded it).
func exitOn(p *proc, a []string) (*int, error) {
	sig, ok := signals[a[0]]
	if !ok {
		return nil, fmt.Errorf("unknown signal %q", a[0])
	}
	code, err := strconv.Atoi(a[1])
	if err != nil || code < 0 || code > 255 {
		return nil, fmt.Errorf("want an exit code 0..255, got %q", a[1])
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exitOn == nil {
		p.exitOn = map[os.Signal]int{}
	}
	p.exitOn[sig] = code
	p.handle(sig)
	return nil, nil
}

// handle starts the one goroutine that serves sig (records it, then exits if asked), so
// catch and exit-on on the same signal cannot race; p.mu is held.
func (p *proc) handle(sig os.Signal) {
	if p.handled[sig] {
		return
	}
	if p.handled == nil {
		p.handled = map[os.Signal]bool{}
	}
	p.handled[sig] = true
	c := make(chan os.Signal, 4)
	signal.Notify(c, sig)
	go func() {
		for s := range c {
			p.mu.Lock()
			file, rec := p.caught[s]
			code, ex := p.exitOn[s]
			p.mu.Unlock()
			name := s.String()
			for n, v := range signals {
				if v == s {
					name = n
				}
			}
			if rec {
				_ = appendTo(file, name)
			}
			if ex {
				os.Exit(code)
			}
		}
	}()
}

func appendLine(_ *proc, a []string) (*int, error) { return nil, appendTo(a[0], a[1]) }

func appendTo(name, line string) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, line)
	return errors.Join(err, f.Close())
}

// closeStdio closes fds 1 and 2, like a daemon that detaches from its output before it
// dies; later output is discarded.
func closeStdio(p *proc, _ []string) (*int, error) {
	p.stdout, p.stderr = io.Discard, io.Discard
	return nil, errors.Join(syscall.Close(1), syscall.Close(2))
}

func printID(p *proc, _ []string) (*int, error) {
	_, err := fmt.Fprintf(p.stdout, "uid=%d gid=%d\n", os.Getuid(), os.Getgid())
	return nil, err
}

// stamp writes the current time (RFC 3339, nanoseconds) to FILE, so a scenario can
// compare the daemon's event times with the moment the process did something.
func stamp(_ *proc, a []string) (*int, error) {
	return nil, writeAtomic(a[0], time.Now().Format(time.RFC3339Nano))
}
