//go:build lockorder || race

package lockorder

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// wdClock is the watchdog's coarse clock: nanoseconds since wdEpoch plus
// one, advanced once per tick, and 0 while no watchdog runs. Acquisitions
// read it (one atomic load) instead of calling time.Now, and record stacks
// only while it is non-zero.
var (
	wdClock atomic.Int64
	wdEpoch = time.Now()
	wd      struct {
		mu   sync.Mutex
		stop chan struct{}
	}
)

// SetWatchdog starts the watchdog: one goroutine that wakes every
// threshold/4 (at least 1ms, at most 1s) and passes f a Report for every
// lock held, or waited for, longer than threshold; each hold or wait is
// reported once. Durations are read off a clock that advances once per
// wake-up, so a report can come up to one interval early (after 3/4 of
// the threshold at worst). f runs on the watchdog goroutine with no lock
// held.
// While the watchdog runs, every acquisition also records its stack (about
// a microsecond), so enable it in tests and staging rather than in hot
// benchmarks. Only acquisitions made while it runs are tracked.
//
// stop stops the watchdog and waits for its goroutine to exit; it is safe
// to call more than once. SetWatchdog returns an error for a non-positive
// threshold or nil f, and ErrWatchdogRunning if one already runs. In
// production builds it starts nothing.
func SetWatchdog(threshold time.Duration, f func(Report)) (stop func(), err error) {
	if err := validateWatchdog(threshold, f); err != nil {
		return nil, err
	}
	wd.mu.Lock()
	defer wd.mu.Unlock()
	if wd.stop != nil {
		return nil, ErrWatchdogRunning
	}
	stopc, done := make(chan struct{}), make(chan struct{})
	wd.stop = stopc
	interval := min(max(threshold/4, time.Millisecond), time.Second)
	wdClock.Store(int64(time.Since(wdEpoch)) + 1)
	go watch(threshold, interval, f, stopc, done)
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stopc)
			<-done
			wd.mu.Lock()
			wd.stop = nil
			wd.mu.Unlock()
		})
	}, nil
}

func watch(threshold, interval time.Duration, f func(Report), stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	defer wdClock.Store(0)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		now := int64(time.Since(wdEpoch)) + 1
		wdClock.Store(now)
		reports := overdue(now, int64(threshold))
		confirmLeaks(reports)
		for _, r := range reports {
			f(r)
		}
	}
}

type snapshot struct {
	key     uintptr
	class   string
	gid     int64
	waiting bool
	since   int64
	pcs     []uintptr
	due     bool
}

// overdue scans every held-lock stack, one shard lock at a time, and
// returns the reports for holds and waits that crossed the threshold.
func overdue(now, threshold int64) []Report {
	var snaps []snapshot
	for i := range shards {
		s := &shards[i]
		s.mu.Lock()
		for _, gl := range s.m {
			for _, e := range gl.held {
				// acquired stores since before state, so loading them
				// in the other order never pairs "held" with the wait's
				// start. A wait and the hold that follows it are separate
				// findings: since restarts at the acquisition.
				state := e.state.Load()
				since := e.since.Load()
				if since == 0 {
					continue
				}
				due := now-since >= threshold && e.reported&(1<<state) == 0
				if due {
					e.reported |= 1 << state
				}
				snaps = append(snaps, snapshot{
					key: e.key, class: e.class.String(), gid: e.gid,
					waiting: state == stateWaiting, since: since,
					pcs: append([]uintptr(nil), e.pcs...), due: due,
				})
			}
		}
		s.mu.Unlock()
	}
	var reports []Report
	for _, sn := range snaps {
		if !sn.due {
			continue
		}
		r := Report{Class: sn.class, Goroutine: sn.gid, Waiting: sn.waiting, For: time.Duration(now - sn.since), Stack: stackString(sn.pcs)}
		if sn.waiting {
			for _, h := range snaps {
				if h.key == sn.key && !h.waiting {
					r.HolderGoroutine, r.HolderStack = h.gid, stackString(h.pcs)
					break
				}
			}
		}
		reports = append(reports, r)
	}
	return reports
}

// confirmLeaks asks Go's leak profile, when there is one, whether the
// waiters reported are blocked forever. It costs a garbage collection, so
// it runs only on ticks that report a wait.
func confirmLeaks(reports []Report) {
	waits := false
	for _, r := range reports {
		waits = waits || r.Waiting
	}
	if !waits {
		return
	}
	leaked, ok := leakedGoroutines()
	if !ok {
		return
	}
	for i := range reports {
		_, reports[i].Leaked = leaked[reports[i].Goroutine]
	}
}

func stackString(pcs []uintptr) string {
	var b strings.Builder
	writeStack(&b, pcs, "")
	return b.String()
}

var groups atomic.Uint64

func newGroup() uint64 { return groups.Add(1) }
