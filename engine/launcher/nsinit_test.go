package launcher

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// As a namespace's init (unshare --pid --fork: its session reads 0), the daemon cannot
// tell an orphan from its own forks by session or group: every child but the launcher's
// and those it forked apart is an orphan to reap. They stayed zombies for good.
func TestNamespaceInitReapsEveryOrphan(t *testing.T) {
	becomeSubreaper()
	if !orphans.active {
		t.Skip("not a subreaper here")
	}
	orphans.init.Store(true)
	defer orphans.init.Store(false)
	var out strings.Builder
	cmd := exec.Command("/bin/sh", "-c", "sleep 0.2 & echo $!")
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := ForkedApart(cmd.Process.Pid) // the shell is this test's to wait for, not reaped
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the fork apart was reaped from under its Wait: %v", err)
	}
	done()
	orphan := strings.TrimSpace(out.String())
	poll(t, 10*time.Second, "the orphan "+orphan+" reaped", func() bool {
		_, err := os.Stat("/proc/" + orphan)
		return err != nil
	})
}
