//go:build unix

package limiter

import "syscall"

func noFileFinding(maxConns int) []Finding {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return nil
	}
	return noFileFindingFor(uint64(rl.Cur), maxConns)
}
