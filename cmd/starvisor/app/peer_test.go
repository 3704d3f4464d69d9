package app

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
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
