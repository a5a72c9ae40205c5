package app

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/garrison-go/garrison/changuard"

	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/lockorder"
	"github.com/garrison-go/garrison/spawn"
	"github.com/garrison-go/garrison/timeout"
)

// AdminMux returns the operator's endpoints, to be served on a listener of
// their own bound to loopback (see main.go), never on the public port:
// they show stacks, lock-order reports and every limit's counters, which
// tell an attacker exactly how close a limit is.
//
//	GET /debug/garrison   Stats as JSON, every key in snake_case
//	GET /metrics          the same figures in the Prometheus text format
//	GET /healthz          "ok"
//
// Register further endpoints (pprof, say) on the returned mux.
func (a *App) AdminMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /debug/garrison", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, a.Stats()) })
	mux.HandleFunc("GET /metrics", a.ServeMetrics)
	return mux
}

// Stats is what GET /debug/garrison serves: the Stats of every garrison
// primitive in the service, as plain values, ready for any metrics system.
// It marshals to JSON with snake_case keys throughout, and the listener's
// rejections by reason label ("ip-conns": 12, "preempted": 3), never as a
// bare array.
type Stats struct {
	Listener  *limiter.ListenerStats `json:"listener,omitempty"` // nil until Serve
	RateLimit RateLimitStats         `json:"rate_limit"`
	Login     LoginStats             `json:"login"`
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

// LoginStats covers POST /login's limit per user name.
type LoginStats struct {
	Limit      limiter.KeyedStats `json:"limit"`       // per user name
	PerAddress limiter.KeyedStats `json:"per_address"` // per client address
	Rejected   int64              `json:"rejected"`    // 429s from either
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
		Login: LoginStats{Limit: a.loginLimit.Stats(), PerAddress: a.loginPerIP.Stats(), Rejected: a.loginRejected.Load()},
		Jobs:  a.jobs.Stats(),
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

// MarshalJSON writes s with every key in snake_case: the garrison Stats
// types carry no JSON tags (they are Go values first), and a dashboard
// should not have to know which keys came from which package.
func (s Stats) MarshalJSON() ([]byte, error) {
	type plain Stats // no MarshalJSON: no recursion
	raw, err := json.Marshal(plain(s))
	if err != nil {
		return nil, err
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(snakeKeys(v))
}

// snakeKeys renames every object key of v to snake_case, recursively.
func snakeKeys(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[snake(k)] = snakeKeys(e)
		}
		return out
	case []any:
		for i := range v {
			v[i] = snakeKeys(v[i])
		}
		return v
	default:
		return v
	}
}

// snake turns a Go field name into snake_case: LossyEvictions ->
// lossy_evictions, TrackedIPs -> tracked_ips, P99 -> p99. Keys already in
// snake_case, and reason names such as "ip-conns", come back unchanged.
func snake(k string) string {
	rs := []rune(k)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			// The plural s of an acronym (IPs) belongs to it.
			plural := nextLower && rs[i+1] == 's' && (i+2 == len(rs) || unicode.IsUpper(rs[i+2]))
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower && !plural) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
