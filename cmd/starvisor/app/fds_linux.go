package app

import (
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// closeInheritedOnExec marks every descriptor above stderr close-on-exec. The daemon and
// its programs must not hold what the caller left open: a deploy script's flock would
// stay held, and `x=$(starvisor up --detach 7>&1)` would wait for ever on its pipe.
// (supervisord closes 3..minfds in each child.) Go's own descriptors are close-on-exec
// already; this reaches those inherited at exec.
func closeInheritedOnExec() {
	if unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	ents, err := os.ReadDir("/proc/self/fd") // before Linux 5.11
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
