//go:build unix

package siege

import (
	"fmt"
	"os"
	"syscall"
)

// capFDs lowers this process's file-descriptor limit to budget above what
// it uses now, and returns how to restore it. Exhausting the 20,000 or
// 1,000,000 descriptors of a generous host takes longer than a demo, so the
// siege gives both twins the same small budget: what a server near its limit
// has left, the position a connection flood drives it to.
func capFDs(budget int) (restore func(), note string) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		return func() {}, "file-descriptor limit unchanged: " + err.Error()
	}
	used, err := openFDs()
	if err != nil {
		return func() {}, "file-descriptor limit unchanged: " + err.Error()
	}
	lim := old
	lim.Cur = min(uint64(used+budget), old.Cur)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return func() {}, "file-descriptor limit unchanged: " + err.Error()
	}
	return func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) },
		fmt.Sprintf("both twins ran with %d file descriptors to spare (RLIMIT_NOFILE lowered from %d to %d for this scenario; clients and servers share the process)", budget, old.Cur, lim.Cur)
}

func openFDs() (int, error) {
	for _, dir := range []string{"/proc/self/fd", "/dev/fd"} {
		if es, err := os.ReadDir(dir); err == nil {
			return len(es), nil
		}
	}
	return 0, fmt.Errorf("cannot count open file descriptors")
}

// raiseFDs lifts this process's soft file-descriptor limit to its hard
// limit: the botnet child inherits the twins' lowered limit, which is
// theirs to run out of, not the attacker's.
func raiseFDs() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}
