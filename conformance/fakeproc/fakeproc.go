// Package fakeproc is a small scriptable child process for the conformance suite, so the
// scenarios need neither sh nor sleep and behave the same on every machine.
//
// Verbs are chained in argv and run left to right:
//
//	fakeproc print hello ready web.ready trap TERM sleep 1h
//
// An argument error exits 2 with a message on stderr.
package fakeproc

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
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
