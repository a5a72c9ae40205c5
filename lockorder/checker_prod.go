//go:build !lockorder && !race

package lockorder

import "time"

// hold is the record of an acquisition in progress; nothing in production.
type hold struct{}

func (hold) acquired() {}
func (hold) abandon()  {}

func (t *TimedMutex) enter(uint64) hold { return hold{} }
func (t *TimedMutex) enteredTry()       {}
func (t *TimedMutex) leave()            {}

func newGroup() uint64 { return 0 }

// Stats returns a snapshot of the order checker's counters. In production
// builds (this one) checking is not compiled in and it returns the zero
// CheckerStats.
func Stats() CheckerStats { return CheckerStats{} }

// SetWatchdog starts the watchdog in checking builds: one goroutine that
// wakes every threshold/4 (at least 1ms, at most 1s) and passes f a Report
// for every lock held, or waited for, longer than threshold, with the
// holder's acquisition stack; stop stops it and waits for its goroutine.
// It returns an error for a non-positive threshold or nil f, and
// ErrWatchdogRunning if one already runs.
//
// In production builds (this one) acquisitions are not tracked:
// SetWatchdog validates its arguments, starts nothing and returns a no-op
// stop function.
func SetWatchdog(threshold time.Duration, f func(Report)) (stop func(), err error) {
	if err := validateWatchdog(threshold, f); err != nil {
		return nil, err
	}
	return func() {}, nil
}

// classState is empty: production builds keep no graph.
//
//lint:ignore U1000 embedded in Class so that both builds share its definition
type classState struct{}

func joinGroup(uint64) (restore func()) { return func() {} }
