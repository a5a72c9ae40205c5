//go:build unix

package limiter

import (
	"strconv"
	"syscall"
)

func noFileFinding() []Finding {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return nil
	}
	if rl.Cur >= PreflightMinNoFile {
		return nil
	}
	return []Finding{{
		Setting: "RLIMIT_NOFILE",
		Value:   strconv.FormatUint(uint64(rl.Cur), 10),
		Want:    ">= " + strconv.Itoa(PreflightMinNoFile),
		Why:     "every connection holds a file descriptor; at the limit Accept fails for everyone",
	}}
}
