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
	cred, uid := nobody(t)
	bin := starvisorBin(t)
	dir, sock := startDaemon(t, sleepers(1), 1)
	// nobody must reach the binary and the socket: open the folders on the way.
	openUp(t, 0o755, filepath.Dir(bin), dir, filepath.Dir(sock))
	openUp(t, 0o666, sock)
	code, out := runAs(t, cred, bin, "status", "--socket", sock)
	if code != ExitFailure || !strings.Contains(out, "permission denied: uid "+uid+" may not control a daemon owned by uid 0") {
		t.Fatalf("as nobody: exit %d, output:\n%s", code, out)
	}
	code, out = runAs(t, nil, bin, "status", "--socket", sock) // root itself is admitted
	if code != ExitOK || !strings.Contains(out, "RUNNING") {
		t.Fatalf("as root: exit %d, output:\n%s", code, out)
	}
}

// nobody is the credential of user nobody and its uid, for a CLI run as another user;
// the test is skipped unless it runs as root (which may switch to it) and nobody exists.
func nobody(t *testing.T) (*syscall.Credential, string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: the CLI must run as another uid (nobody)")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, u.Uid
}

// openUp gives paths mode, so another user reaches them.
func openUp(t *testing.T, mode os.FileMode, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
}

// runAs runs the binary bin with args as cred (nil: as this process), from /, and
// returns its exit code and output.
func runAs(t *testing.T, cred *syscall.Credential, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
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

// The client refuses a socket served by another user (not root, not itself) before it
// sends anything: a squatter's listener where the script or a lock file points would get
// the request, an apply's plan and its environment included. The listener is made by a
// thread of this test running as uid 1 (a socket's peer is who called listen), the CLI
// runs as nobody.
func TestClientRefusesAnotherUsersSocket(t *testing.T) {
	cred, uid := nobody(t)
	bin := starvisorBin(t)
	dir := t.TempDir()
	openUp(t, 0o777, filepath.Dir(bin), filepath.Dir(dir), dir)
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
	openUp(t, 0o777, sock)
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
	code, out := runAs(t, cred, bin, "status", "--socket", sock)
	if code == ExitOK || !strings.Contains(out, "runs as uid 1, neither you (uid "+uid+") nor root: nothing sent") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	if b := <-sent; len(b) > 0 {
		t.Fatalf("the listener was sent %q", b)
	}
}
