package app

import (
	"fmt"
	"os"
	"syscall"
)

// raiseOpenFiles gives the programs an open-files limit of at least minFDs (supervisor()
// minfds, supervisord's: minfds=65536 is the usual recipe for nginx or Elasticsearch).
// Go raises its own soft limit to the hard one at start and gives its children back
// the original soft limit; a Setrlimit of ours makes them inherit the daemon's instead,
// which is set to minFDs, or what this many programs need of the daemon itself when
// that is more. As root the hard limit is raised too when it is lower; else that is
// an error, as in supervisord. 0 changes nothing.
func raiseOpenFiles(minFDs, programs int) error {
	if minFDs == 0 {
		return nil
	}
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return fmt.Errorf("minfds: %w", err)
	}
	want := uint64(max(minFDs, 256+4*programs)) // each program: two pipes and a pidfd
	if r.Max < want {
		if os.Geteuid() != 0 {
			return fmt.Errorf("minfds: %d open files wanted, but the hard limit is %d (raise it, as root or with ulimit -Hn / LimitNOFILE=)", minFDs, r.Max)
		}
		r.Max = want
	}
	r.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return fmt.Errorf("minfds: %d: %w", want, err)
	}
	return nil
}
