package app

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
)

// apply and plan --diff of a bundle of root's send nothing to another user's listener
// where its script puts the socket, in a folder of that user's: they sent it the whole
// plan, the programs' secrets with it (status and stop refused it already).
func TestApplySendsNothingToAnotherUsersListener(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("another user's listener wants root")
	}
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skip("no " + python)
	}
	is := is.New(t)
	dir, err := os.MkdirTemp("", "svforeign")
	is.NoErr(err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	is.NoErr(os.Chmod(dir, 0o755))
	theirs := filepath.Join(dir, "theirs")
	is.NoErr(os.Mkdir(theirs, 0o700))
	is.NoErr(os.Chown(theirs, 65534, 65534))
	got := filepath.Join(theirs, "got")
	listener := filepath.Join(dir, "listen.py")
	is.NoErr(os.WriteFile(listener, []byte(`import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
while True:
    c, _ = s.accept()
    open(sys.argv[2], "ab").write(c.recv(65536))
    c.close()
`), 0o644))
	sock := filepath.Join(theirs, "sv.sock")
	cmd := exec.Command(python, listener, sock, got)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}, Setpgid: true}
	is.NoErr(cmd.Start())
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no listener")
		}
		time.Sleep(10 * time.Millisecond)
	}
	bundle := filepath.Join(dir, "bundle")
	is.NoErr(os.Mkdir(bundle, 0o755))
	script := filepath.Join(bundle, "deploy.star")
	is.NoErr(os.WriteFile(script, []byte(`supervisor(socket = "`+sock+`")
program(name = "a", command = ["/bin/sleep", "1"], env = {"SECRET": "s3cr3t"})
`), 0o644))
	for _, verb := range [][]string{{"apply"}, {"plan", "--diff"}} {
		code, _, errOut := run(t, nil, append(verb, "-f", script)...)
		is.True(code != ExitOK)                                                                      // verb
		is.True(strings.Contains(errOut, "and the bundle's script is uid 0's: its daemon would be")) // errOut
	}
	// up says whose listener it is, not "a daemon is already running".
	code, _, errOut := run(t, nil, "up", "--detach", "-f", script)
	is.True(code != ExitOK)
	is.True(strings.Contains(errOut, "not a daemon of yours")) // errOut
	if b, _ := os.ReadFile(got); strings.Contains(string(b), "s3cr3t") {
		t.Errorf("the listener got the plan:\n%s", b)
	}
}
