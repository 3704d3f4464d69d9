package api

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Root's client sends nothing to a listener another user planted where a script puts the
// socket, in a folder anyone may write (a shared /tmp): it took root's status for its
// forged answer, and an apply's plan with the programs' environment. That user's daemon
// in a folder of its own is still reached: root controls every user's daemons.
func TestRootSendsNothingToAPlantedSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("another user's listener wants root")
	}
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skip("no " + python)
	}
	dir, err := os.MkdirTemp("", "svplant")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(dir, 0o755)) // reachable by nobody
	shared, own := filepath.Join(dir, "shared"), filepath.Join(dir, "own")
	must(os.Mkdir(shared, 0o777))
	must(os.Chmod(shared, 0o777|os.ModeSticky))
	must(os.Mkdir(own, 0o700))
	must(os.Chown(own, 65534, 65534))
	script := filepath.Join(dir, "listen.py")
	must(os.WriteFile(script, []byte(`import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
while True:
    c, _ = s.accept()
    c.recv(65536)
    c.close()
`), 0o644))
	listen := func(sock string) {
		cmd := exec.Command(python, script, sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}, Setpgid: true}
		must(cmd.Start())
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
		for deadline := time.Now().Add(10 * time.Second); ; {
			// Connecting, not the file: it is there from the bind, before the listen.
			if c, err := net.Dial("unix", sock); err == nil {
				c.Close()
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no listener at %s", sock)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	planted := filepath.Join(shared, "sv.sock")
	listen(planted)
	_, err = NewClient(planted).Status(ctx)
	if err == nil || !strings.Contains(err.Error(), "runs as uid 65534, and its folder "+shared+" is uid 0's, mode 01777: anyone could have put it there, nothing sent to it") {
		t.Errorf("a planted socket: %v", err)
	}
	theirs := filepath.Join(own, "sv.sock")
	listen(theirs)
	if _, err = NewClient(theirs).Status(ctx); err != nil && strings.Contains(err.Error(), "anyone could have put it there") {
		t.Errorf("that user's own socket refused: %v", err)
	}
	// But not for a bundle of root's: its daemon would be root's (a script pointing its
	// socket into that user's folder, where the user listens).
	cl := NewClient(theirs)
	cl.Expect = []uint32{0}
	if _, err = cl.Status(ctx); err == nil || !strings.Contains(err.Error(), "runs as uid 65534, and the bundle's script is uid 0's: its daemon would be that user's or root's, nothing sent to it (--socket reaches it on purpose)") {
		t.Errorf("another user's listener for root's bundle: %v", err)
	}
}
