package lockorder

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrWatchdogRunning is returned by SetWatchdog while a watchdog runs.
var ErrWatchdogRunning = errors.New("lockorder: a watchdog is already running; stop it first")

// A Report is a watchdog finding: a lock held, or waited for, longer than
// the threshold.
type Report struct {
	Class     string
	Goroutine int64 // the holder, or the waiter when Waiting
	// Waiting is true when Goroutine has been waiting for the lock (and
	// still is), false when it has been holding it.
	Waiting bool
	// For is how long, measured with the watchdog's coarse clock (one
	// tick, a quarter of the threshold, of precision).
	For time.Duration
	// Stack is Goroutine's stack when it started to wait or acquired.
	Stack string
	// For a wait: a goroutine holding the lock (0 if none was recorded,
	// e.g. it was acquired before the watchdog started) and its
	// acquisition stack.
	HolderGoroutine int64
	HolderStack     string
	// Leaked is true when Go's goroutine leak profile confirmed that
	// Goroutine is blocked forever (a partial deadlock); always false
	// when the profile is not available (see LeakProfileAvailable).
	Leaked bool
}

// String returns a multi-line description of r.
func (r Report) String() string {
	var b strings.Builder
	d := r.For.Round(time.Millisecond)
	if r.Waiting {
		fmt.Fprintf(&b, "goroutine %d has waited %v for lock %s, since:\n%s", r.Goroutine, d, r.Class, indent(r.Stack))
	} else {
		fmt.Fprintf(&b, "goroutine %d has held lock %s for %v, since:\n%s", r.Goroutine, r.Class, d, indent(r.Stack))
	}
	if r.Leaked {
		b.WriteString("blocked forever: confirmed by Go's goroutine leak profile\n")
	}
	if r.Waiting && r.HolderGoroutine != 0 {
		fmt.Fprintf(&b, "held by goroutine %d, acquired at:\n%s", r.HolderGoroutine, indent(r.HolderStack))
	}
	return strings.TrimRight(b.String(), "\n")
}

func indent(s string) string {
	if s == "" {
		return "        (no stack recorded)\n"
	}
	return "        " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n        ") + "\n"
}

func validateWatchdog(threshold time.Duration, f func(Report)) error {
	if threshold <= 0 {
		return fmt.Errorf("lockorder: SetWatchdog: threshold must be positive, got %v", threshold)
	}
	if f == nil {
		return errors.New("lockorder: SetWatchdog: nil report function")
	}
	return nil
}
