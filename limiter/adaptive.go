package limiter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/garrison-go/garrison/internal/adaptive"
	"github.com/garrison-go/garrison/internal/criticality"
)

// AdaptiveLimiter is a concurrency limit that moves with the latency it
// measures, instead of a constant an operator must guess: too low wastes
// capacity, too high lets a slow dependency pile up requests until every
// one of them times out. It is the limit behind
// [AdaptiveConcurrencyMiddleware]; spawn's WithAdaptiveLimit runs the same
// algorithm for tasks.
//
// The limit starts small, grows while latency stays within a tolerance of
// the learned no-load latency (the baseline), and shrinks in proportion
// when latency rises above it: the gradient rule of Netflix's
// concurrency-limits and Envoy's adaptive concurrency filter (or AIMD with
// [AdaptiveAIMD]). Now and then the limit is pinned to its minimum for a
// few requests to measure the baseline again, as Envoy does; a latency step
// (three windows slower than twice the tolerance, or slower than the
// tolerance with the limit already at its minimum) triggers that at once,
// so a dependency that becomes slower for good is learned in a few round
// trips. A request whose context deadline expired counts as dropped and
// backs the limit off by a tenth at once.
//
// Requests carry a [Criticality] (see [CriticalityMiddleware]): under
// overload sheddable requests are refused first (they may fill 75 % of the
// limit, and leave at least two slots) and critical ones keep a reserved
// tenth (normal requests fill 90 %, and leave at least one slot).
type AdaptiveLimiter struct {
	lim     *adaptive.Limit
	maxWait time.Duration

	mu                         sync.Mutex // guards the load window
	loadAt                     time.Time
	loadAdmitted, loadRejected uint64
	rejectShare                float64
}

// AdaptiveOption configures [NewAdaptiveLimiter].
type AdaptiveOption func(*adaptiveSettings)

type adaptiveSettings struct {
	adaptive.Config
	maxWait time.Duration
}

// DefaultAdaptiveMaxWait is how long a request over the limit waits for a
// slot before it is refused: CoDel's target delay. A burst larger than the
// limit is smoothed over a few milliseconds instead of refused; a standing
// overload is still refused, since nobody waits longer.
const DefaultAdaptiveMaxWait = 5 * time.Millisecond

// AdaptiveMaxWait sets how long a request over the limit may wait for a
// slot (default [DefaultAdaptiveMaxWait]; 0 refuses at once, up to 1s).
func AdaptiveMaxWait(d time.Duration) AdaptiveOption {
	return func(c *adaptiveSettings) { c.maxWait = d }
}

// AdaptiveAIMD moves the limit by AIMD (+1 per healthy window, ×0.9 when
// latency exceeds the tolerance) instead of the gradient rule: simpler,
// slower to find a large limit, and a sawtooth on a steady load.
func AdaptiveAIMD() AdaptiveOption {
	return func(c *adaptiveSettings) { c.Algorithm = adaptive.AIMD }
}

// AdaptiveTolerance is how much slower than the baseline latency a window
// may be before the limit shrinks (default 1.5, from 1 to 100): higher
// admits more queueing for more throughput.
func AdaptiveTolerance(t float64) AdaptiveOption {
	return func(c *adaptiveSettings) { c.Tolerance = t }
}

// AdaptiveInitial sets the limit before the first measurement (default
// min, raised to 4 when max allows).
func AdaptiveInitial(n int) AdaptiveOption {
	return func(c *adaptiveSettings) { c.Initial = n }
}

// NewAdaptiveLimiter returns a limit that moves between min and max
// (1 <= min <= max <= 1<<20). It returns an error for a bad bound or
// option.
func NewAdaptiveLimiter(min, max int, opts ...AdaptiveOption) (*AdaptiveLimiter, error) {
	cfg := adaptiveSettings{Config: adaptive.Config{Min: min, Max: max}, maxWait: DefaultAdaptiveMaxWait}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("limiter: NewAdaptiveLimiter: nil AdaptiveOption")
		}
		opt(&cfg)
	}
	if cfg.maxWait < 0 || cfg.maxWait > time.Second {
		return nil, fmt.Errorf("limiter: NewAdaptiveLimiter: AdaptiveMaxWait(%v) outside [0, 1s]", cfg.maxWait)
	}
	lim, err := adaptive.New(cfg.Config)
	if err != nil {
		return nil, fmt.Errorf("limiter: NewAdaptiveLimiter: %w", err)
	}
	return &AdaptiveLimiter{lim: lim, maxWait: cfg.maxWait}, nil
}

// AdaptiveStats is a snapshot of an [AdaptiveLimiter].
type AdaptiveStats struct {
	Algorithm string // "gradient2" or "aimd"
	Limit     int    // the current limit
	Min, Max  int
	InFlight  int
	// Baseline is the learned no-load latency; Latency the latest
	// window's average.
	Baseline, Latency time.Duration
	// Probing: the limit is pinned to Min to measure the baseline again.
	Probing bool
	Probes  uint64
	// Increases and Decreases count the windows that moved the limit.
	Increases, Decreases uint64
	// Rejected counts refused requests by criticality; Admitted the
	// requests let through, Waited those of them that waited for a slot.
	// Admitted never decreases; read while requests are being refused, it
	// may also count the few being refused at that instant; the count then
	// holds still until as many more requests are admitted.
	RejectedSheddable, RejectedNormal, RejectedCritical uint64
	Admitted, Waited                                    uint64
	// Dropped counts requests whose context deadline expired in flight,
	// and those whose client left after waiting longer than the limit
	// tolerates (Tolerance × the baseline latency): both back it off.
	Dropped uint64
}

// Stats returns a snapshot.
func (a *AdaptiveLimiter) Stats() AdaptiveStats {
	s := a.lim.Stats()
	return AdaptiveStats{
		Algorithm:         s.Algorithm.String(),
		Limit:             s.Limit,
		Min:               s.Min,
		Max:               s.Max,
		InFlight:          s.InFlight,
		Baseline:          s.Baseline,
		Latency:           s.ShortRTT,
		Probing:           s.Probing,
		Probes:            s.Probes,
		Increases:         s.Increases,
		Decreases:         s.Decreases,
		RejectedSheddable: s.Rejected[0],
		RejectedNormal:    s.Rejected[1],
		RejectedCritical:  s.Rejected[2],
		Admitted:          s.Admitted,
		Waited:            s.Waited,
		Dropped:           s.Dropped,
	}
}

// loadWindow is the shortest span over which Load measures the share of
// requests refused; calls closer together reuse the last share.
const loadWindow = 100 * time.Millisecond

// Load is how close to overload the limiter is, a [LoadProbe] for
// [Readiness]: the larger of in-flight requests over the current limit and
// the share of requests it refused since the previous call (at
// least 100 ms ago) divided by a quarter. The second term is the one that
// matters: the limit keeps the first below 1 by refusing, so an instance
// that turns away a quarter of its traffic reports a load of 1, while the
// few refusals of a burst do not take it out of rotation.
func (a *AdaptiveLimiter) Load() float64 {
	st := a.lim.Stats()
	rejected := st.Rejected[0] + st.Rejected[1] + st.Rejected[2]
	now := time.Now()
	a.mu.Lock()
	switch {
	case st.Probing:
		// A probe refuses on purpose, to measure the baseline: not
		// overload. Its window is skipped.
		a.loadAt, a.loadRejected, a.loadAdmitted = time.Time{}, rejected, st.Admitted
		a.rejectShare = 0
	case a.loadAt.IsZero():
		a.loadAt, a.loadRejected, a.loadAdmitted = now, rejected, st.Admitted
	case now.Sub(a.loadAt) >= loadWindow:
		dRej, dAdm := rejected-a.loadRejected, st.Admitted-a.loadAdmitted
		a.rejectShare = 0
		if dRej+dAdm > 0 {
			a.rejectShare = float64(dRej) / float64(dRej+dAdm)
		}
		a.loadAt, a.loadRejected, a.loadAdmitted = now, rejected, st.Admitted
	}
	share := a.rejectShare
	a.mu.Unlock()
	if st.Probing {
		return 0 // the limit is Min on purpose: in flight over it says nothing
	}
	return max(float64(st.InFlight)/float64(max(st.Limit, 1)), 4*share)
}

// AdaptiveConcurrencyMiddleware is [ConcurrencyMiddleware] with the limit
// of a: a request over it waits at most [AdaptiveMaxWait] for a slot, then
// is answered with 503 Service Unavailable and Retry-After (WithRetryAfter,
// default 1s); the OnReject hook sees Reason Concurrency and the current
// limit. Only WithRetryAfter, WithOnReject, WithRejectHandler and
// WithCounter apply, as for ConcurrencyMiddleware. It panics on a nil a (a
// programmer's error at start-up).
func AdaptiveConcurrencyMiddleware(a *AdaptiveLimiter, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	if a == nil {
		panic("limiter: AdaptiveConcurrencyMiddleware: nil AdaptiveLimiter")
	}
	c := newMiddlewareConfig(opts)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := a.lim.AcquireWait(r.Context(), criticality.From(r.Context()), a.maxWait)
			if !ok {
				d := Decision{RetryAfter: c.retryAfter, Reason: Concurrency, Limit: a.lim.Current()}
				if c.onReject != nil {
					c.onReject(r, d, nil)
				}
				c.count(&c.statsOrNil().rejected)
				reject(w, r, c.rejectWith, Rejection{Status: http.StatusServiceUnavailable, Decision: d})
				return
			}
			c.count(&c.statsOrNil().allowed)
			outcome := adaptive.Ignore // a panic is no latency sample
			defer func() { a.lim.Release(tok, outcome) }()
			next.ServeHTTP(w, r)
			switch err := r.Context().Err(); {
			case err == nil:
				outcome = adaptive.Success
			case errors.Is(err, context.DeadlineExceeded):
				outcome = adaptive.Dropped
			default:
				// The client left: a drop if it had waited longer than
				// the limit tolerates, else no sample.
				outcome = adaptive.Abandoned
			}
		})
	}
}

// Criticality is how important a request or task is; under overload the
// least important is refused first. Its zero value is [Normal]. It is the
// same type as spawn.Criticality, so a level set by
// [CriticalityMiddleware] is the level spawn reads from the request's
// context.
type Criticality = criticality.Level

// The criticality levels, least important first.
const (
	// Sheddable requests are refused first: prefetches, batch work,
	// retries a client will make again anyway.
	Sheddable = criticality.Sheddable
	// Normal is the level of a request nobody marked.
	Normal = criticality.Normal
	// Critical requests keep a reserved share: what a user waits for,
	// health and control traffic.
	Critical = criticality.Critical
)

// WithCriticality returns a copy of ctx that carries c; an invalid c is
// stored as [Normal], so a bad value never buys priority.
func WithCriticality(ctx context.Context, c Criticality) context.Context {
	return criticality.With(ctx, c)
}

// CriticalityFrom returns the criticality ctx carries, [Normal] if none.
func CriticalityFrom(ctx context.Context) Criticality { return criticality.From(ctx) }

// ParseCriticality parses "sheddable", "normal" (or "default", or "") and
// "critical".
func ParseCriticality(s string) (Criticality, error) { return criticality.Parse(s) }

// CriticalityMiddleware sets each request's criticality to classify(r)
// (by route, method, or a header from a trusted caller: see
// [CriticalityFromHeader]) on its context, for [AdaptiveConcurrencyMiddleware]
// and spawn to read. It panics on a nil classify.
func CriticalityMiddleware(classify func(*http.Request) Criticality) func(http.Handler) http.Handler {
	if classify == nil {
		panic("limiter: CriticalityMiddleware: nil classify")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(criticality.With(r.Context(), classify(r))))
		})
	}
}

// CriticalityFromHeader returns a classifier for [CriticalityMiddleware]
// that reads the level from header (e.g. "X-Criticality") only when the
// connection comes from one of trusted (an internal caller or a gateway
// that sets it), and returns fallback otherwise or when the header is
// absent or unknown: a client cannot raise its own priority. It panics on
// an empty header name or an invalid prefix.
func CriticalityFromHeader(header string, fallback Criticality, trusted ...netip.Prefix) func(*http.Request) Criticality {
	if header == "" {
		panic("limiter: CriticalityFromHeader: empty header name")
	}
	for _, p := range trusted {
		if !p.IsValid() {
			panic(fmt.Sprintf("limiter: CriticalityFromHeader: invalid prefix %v", p))
		}
	}
	header = http.CanonicalHeaderKey(header)
	return func(r *http.Request) Criticality {
		v := r.Header.Get(header)
		if v == "" || !fromTrusted(r.RemoteAddr, trusted) {
			return fallback
		}
		c, err := criticality.Parse(v)
		if err != nil {
			return fallback
		}
		return c
	}
}

func fromTrusted(remote string, trusted []netip.Prefix) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
