//go:build unix

package redisstorebench

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used, user and system: the
// client-side cost of a decision, which the load of other processes on a
// shared machine barely changes, unlike wall time.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
