package app

import (
	"sync/atomic"

	"github.com/garrison-go/garrison/changuard"

	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/lockorder"
	"github.com/garrison-go/garrison/spawn"
	"github.com/garrison-go/garrison/timeout"
)

// Stats is what GET /debug/garrison serves: the Stats of every garrison
// primitive in the service, as plain values, ready for any metrics system.
type Stats struct {
	Listener  *limiter.ListenerStats `json:"listener,omitempty"` // nil until Serve
	RateLimit RateLimitStats         `json:"rate_limit"`
	Jobs      spawn.Stats            `json:"jobs"`
	Upstream  UpstreamStats          `json:"upstream"`
	LockOrder LockOrderStats         `json:"lockorder"`
	Usage     UsageStats             `json:"usage"`
}

// RateLimitStats covers the two request middlewares.
type RateLimitStats struct {
	PerIP            limiter.KeyedStats `json:"per_ip"`
	RateRejected     int64              `json:"rate_rejected"`      // 429s
	InFlightRejected int64              `json:"in_flight_rejected"` // 503s from the concurrency cap
}

// UsageStats is the billing counters and their guard's lock counters.
type UsageStats struct {
	Usage
	Lock changuard.GuardedStats `json:"lock"`
}

// UpstreamStats counts calls to the payment provider by outcome.
type UpstreamStats struct {
	Op          string                `json:"op"`
	Calls       int64                 `json:"calls"`
	Timeouts    int64                 `json:"timeouts"`
	LastTimeout string                `json:"last_timeout,omitempty"`
	Watchdog    timeout.WatchdogStats `json:"watchdog"`
	Stuck       []timeout.Stuck       `json:"stuck,omitempty"`
}

// LockOrderStats is the order checker's state (Checker.Enabled says
// whether checking is compiled in), the last report it delivered, and the
// journal lock's contention counters.
type LockOrderStats struct {
	Checker lockorder.CheckerStats `json:"checker"`
	Last    string                 `json:"last_report,omitempty"`
	Journal lockorder.TimedStats   `json:"journal_lock"`
}

// Stats returns a snapshot of every primitive's counters.
func (a *App) Stats() Stats {
	s := Stats{
		RateLimit: RateLimitStats{
			PerIP:            a.perIP.Stats(),
			RateRejected:     a.rateRejected.Load(),
			InFlightRejected: a.inFlightRejected.Load(),
		},
		Jobs: a.jobs.Stats(),
		Upstream: UpstreamStats{
			Op:       chargeOp,
			Calls:    a.upstream.calls.Load(),
			Timeouts: a.upstream.timeouts.Load(),
			Watchdog: a.upstream.watchdog.Stats(),
			Stuck:    a.upstream.watchdog.Stuck(),
		},
		LockOrder: LockOrderStats{Checker: lockorder.Stats(), Journal: a.ledger.journal.mu.Stats()},
		Usage:     UsageStats{Usage: a.Usage(), Lock: a.ledger.usage.Stats()},
	}
	if p := a.upstream.lastTimeout.Load(); p != nil {
		s.Upstream.LastTimeout = *p
	}
	if p := a.lockOrderLog.last.Load(); p != nil {
		s.LockOrder.Last = *p
	}
	a.mu.Lock()
	ln := a.ln
	a.mu.Unlock()
	if ln != nil {
		ls := ln.Stats()
		s.Listener = &ls
	}
	return s
}

// lockOrderLog keeps the last report RecordLockOrder saw.
type lockOrderLog struct {
	last atomic.Pointer[string]
}

// RecordLockOrder is a lockorder handler: install it with
// lockorder.SetHandler(app.RecordLockOrder) so that a checking build logs
// each inversion and counts it on /debug/garrison instead of panicking.
func (a *App) RecordLockOrder(err *lockorder.OrderError) {
	msg := err.Error()
	a.lockOrderLog.last.Store(&msg)
	a.cfg.Logger.Printf("lockorder: %v", err)
}

// UpstreamTimeouts counts provider calls that ran out of time.
func (a *App) UpstreamTimeouts() int64 { return a.upstream.timeouts.Load() }
