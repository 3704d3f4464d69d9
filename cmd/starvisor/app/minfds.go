package app

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/starvisor/starvisor/engine/launcher"
)

// raiseOpenFiles gives the programs an open-files limit of at least minFDs (supervisor()
// minfds, supervisord's: minfds=65536 is the usual recipe for nginx or Elasticsearch).
// Go raises its own soft limit to the hard one at start and gives its children back
// the soft limit the daemon was started with; when that is already minFDs or more,
// nothing changes. Else a Setrlimit of ours makes them inherit the daemon's instead,
// set to minFDs (or what this many programs need of the daemon itself, when more). As
// root the hard limit is raised too when it is lower; else that is an error, as in
// supervisord. 0 changes nothing.
func raiseOpenFiles(minFDs, programs int) error {
	if minFDs == 0 || childSoftNofile() >= uint64(minFDs) {
		return nil
	}
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return fmt.Errorf("minfds: %w", err)
	}
	want := uint64(max(minFDs, 256+4*programs)) // each program: two pipes and a pidfd
	hard := r.Max
	if r.Max < want {
		if os.Geteuid() != 0 {
			return hardNofileError(minFDs, r.Max)
		}
		r.Max = want
	}
	r.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return fmt.Errorf("minfds: %d open files wanted, above the hard limit %d, which this daemon may not raise (%v; a container without CAP_SYS_RESOURCE?): raise it (ulimit -Hn, LimitNOFILE=) or lower minfds", want, hard, err)
	}
	return nil
}

// hardNofileError: not root, the daemon cannot raise its hard limit to minFDs.
func hardNofileError(minFDs int, hard uint64) error {
	return fmt.Errorf("minfds: %d open files wanted, but the hard limit is %d, which only root raises (an administrator: /etc/security/limits.conf, or LimitNOFILE= in a unit; or lower minfds)", minFDs, hard)
}

// minfdsProblem is check's word on minfds: "" when up can give it.
func minfdsProblem(minFDs int) string {
	var r syscall.Rlimit
	if minFDs == 0 || os.Geteuid() == 0 || syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil || r.Max >= uint64(minFDs) {
		return ""
	}
	return hardNofileError(minFDs, r.Max).Error()
}

// childSoftNofile is the soft open-files limit a child gets (the one the daemon was
// started with, which Go hides once it raised its own): asked of a shell, 0 when that
// fails.
func childSoftNofile() uint64 {
	var out bytes.Buffer
	cmd := exec.Command("/bin/sh", "-c", "ulimit -Sn")
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return 0
	}
	done := launcher.ForkedApart(cmd.Process.Pid) // not an orphan for a namespace's init to reap
	err := cmd.Wait()
	done()
	if err != nil {
		return 0
	}
	v := strings.TrimSpace(out.String())
	if v == "unlimited" {
		return ^uint64(0)
	}
	n, _ := strconv.ParseUint(v, 10, 64)
	return n
}
