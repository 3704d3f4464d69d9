package app

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A request from another uid is refused by the daemon even when the socket's mode would
// let it connect: run the real CLI as nobody against a root daemon whose socket folder and
// socket are opened up for this test.
func TestOtherUIDRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: the client must run as another uid (nobody)")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	bin := starvisorBin(t)
	dir, sock := startDaemon(t, sleepers(1), 1)
	// nobody must reach the binary and the socket: open the folders on the way.
	for _, p := range []string{filepath.Dir(bin), dir, filepath.Dir(sock)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	run := func(cred *syscall.Credential) (int, string) {
		cmd := exec.Command(bin, "status", "--socket", sock)
		cmd.Dir = "/"
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), out.String()
	}
	code, out := run(&syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)})
	if code != ExitFailure || !strings.Contains(out, "permission denied: uid "+nobody.Uid+" may not control a daemon owned by uid 0") {
		t.Fatalf("as nobody: exit %d, output:\n%s", code, out)
	}
	code, out = run(nil) // root itself is admitted
	if code != ExitOK || !strings.Contains(out, "RUNNING") {
		t.Fatalf("as root: exit %d, output:\n%s", code, out)
	}
}

// The client refuses a socket served by another user (not root, not itself) before it
// sends anything: a squatter's listener where the script or a lock file points would get
// the request, an apply's plan and its environment included. The listener is made by a
// thread of this test running as uid 1 (a socket's peer is who called listen), the CLI
// runs as nobody.
func TestClientRefusesAnotherUsersSocket(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: listener and client must run as two other uids")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	bin := starvisorBin(t)
	dir := t.TempDir()
	for _, p := range []string{filepath.Dir(bin), filepath.Dir(dir), dir} {
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "evil.sock")
	type listened struct {
		l   net.Listener
		err error
	}
	ch := make(chan listened)
	go func() {
		// Never unlocked: the thread, its effective uid changed, ends with this goroutine.
		runtime.LockOSThread()
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), 1, ^uintptr(0)); e != 0 {
			ch <- listened{err: e}
			return
		}
		l, err := net.Listen("unix", sock)
		ch <- listened{l, err}
	}()
	got := <-ch
	if got.err != nil {
		t.Fatal(got.err)
	}
	defer got.l.Close()
	if err := os.Chmod(sock, 0o777); err != nil {
		t.Fatal(err)
	}
	sent := make(chan []byte, 1)
	go func() {
		c, err := got.l.Accept()
		if err != nil {
			sent <- nil
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second)) // a client that sends waits for an answer
		b, _ := io.ReadAll(c)
		sent <- b
	}()
	cmd := exec.Command(bin, "status", "--socket", sock)
	cmd.Dir = "/"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	cmd.Run()
	if cmd.ProcessState.ExitCode() == ExitOK || !strings.Contains(out.String(), "runs as uid 1, neither you (uid "+nobody.Uid+") nor root: nothing sent") {
		t.Fatalf("exit %d, output:\n%s", cmd.ProcessState.ExitCode(), out.String())
	}
	if b := <-sent; len(b) > 0 {
		t.Fatalf("the listener was sent %q", b)
	}
}
