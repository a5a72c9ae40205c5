//go:build unix

package limiterbench

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) the process has used.
// On a machine shared with other jobs, CPU time per operation moves far less
// than wall time, which also counts the time spent descheduled.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
