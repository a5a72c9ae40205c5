package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/garrison-go/garrison/limiter"
)

var (
	// ErrInvalidOption is wrapped by the error New returns for a bad
	// argument or option; the message names which and why.
	ErrInvalidOption = errors.New("redisstore: invalid option")
	// ErrEmptyKey is returned by AllowContext for an empty key, which
	// would otherwise make every caller share one budget.
	ErrEmptyKey = errors.New("redisstore: empty key")
	// ErrUnavailable is wrapped by the error AllowContext returns beside a
	// fail-policy decision: Redis failed, was slower than the timeout, or
	// the circuit breaker is skipping it.
	ErrUnavailable = errors.New("redisstore: redis unavailable")

	// ErrKeyFailed is wrapped by the error AllowContext returns beside a
	// fail-policy decision when Redis answered with an error that concerns
	// this key only: out of memory for its write (maxmemory with
	// noeviction), a key of the wrong type (WRONGTYPE), a script error.
	// Such an error does not count towards the circuit breaker, so one
	// failing key cannot switch every key to the fail policy.
	ErrKeyFailed = errors.New("redisstore: redis refused the key")

	errBreakerOpen = fmt.Errorf("%w: circuit breaker open", ErrUnavailable)
)

// MaxRate is the highest finite rate New accepts, limiter.MaxRate: the
// store keeps time in whole microseconds, and at an interval of at least
// 100 µs rounding it changes the rate by at most 0.5 %. New and
// limiter.NewKeyed accept exactly the same limits (limiter.CheckRate).
const MaxRate = limiter.MaxRate

// maxTolerance bounds burst times the emission interval, in microseconds
// (about 35 years), so that Lua's doubles stay exact; see gcraSource.
const maxTolerance = 1 << 50

// failClosedRetry is the RetryAfter of a FailClosed denial. When Redis
// comes back is unknown; a second keeps clients from hammering yet bounds
// how long they wait after it does.
const failClosedRetry = time.Second

// Limiter is a keyed GCRA rate limiter whose state lives in Redis, so every
// instance of a service that shares the Redis, the prefix, the rate and the
// burst shares one budget per key. It returns the same limiter.Decision as
// limiter.Keyed and implements limiter.RateLimiter, so a service switches
// by changing one constructor.
//
// A Limiter is safe for concurrent use. It does not own the client: closing
// the client is the caller's job, after which decisions follow the fail
// policy.
type Limiter struct {
	client   redis.UniversalClient
	opts     options
	burst    int
	interval int64 // emission interval, microseconds; 0 for rate.Inf
	window   time.Duration
	args     []any // ARGV of gcraScript, built once
	epoch    time.Time
	cache    *denyCache
	local    *limiter.Keyed
	brk      breaker

	allowed    atomic.Uint64
	denied     atomic.Uint64
	failed     atomic.Uint64
	errs       atomic.Uint64
	keyErrs    atomic.Uint64
	fallbacks  atomic.Uint64
	cacheHits  atomic.Uint64
	roundTrips atomic.Uint64
}

var _ limiter.RateLimiter = (*Limiter)(nil)

// New returns a Limiter admitting on average r events per second per key
// with bursts of up to burst, its state kept in Redis through client.
//
// The client must honour context deadlines (ContextTimeoutEnabled: true in
// go-redis' options): without it a Redis that accepts connections but does
// not answer would hold each decision for the client's read timeout instead
// of WithTimeout, so New rejects a *redis.Client, *redis.ClusterClient or
// *redis.Ring configured otherwise. New sends nothing to Redis.
//
// The emission interval 1/r is rounded to the nearest microsecond. New
// returns an error wrapping ErrInvalidOption for a nil client, limits that
// limiter.CheckRate rejects (a rate that is neither in (0, MaxRate] nor
// rate.Inf, a burst outside [1, limiter.MaxBurst], a burst/r window over
// limiter.MaxWindow), or a bad option.
func New(client redis.UniversalClient, r rate.Limit, burst int, opts ...Option) (*Limiter, error) {
	if err := checkClient(client); err != nil {
		return nil, err
	}
	if err := limiter.CheckRate(r, burst); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	var interval int64
	if r != rate.Inf {
		// Checked as a float first: a tiny rate's interval may not fit an
		// int64 at all.
		iv := math.Round(1e6 / float64(r))
		if float64(burst)*iv > maxTolerance {
			return nil, fmt.Errorf("%w: burst/rate window %d × %.0fµs exceeds 2^50µs", ErrInvalidOption, burst, iv)
		}
		interval = int64(iv)
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	tau := int64(burst) * interval
	l := &Limiter{
		client:   client,
		opts:     o,
		burst:    burst,
		interval: interval,
		window:   time.Duration(tau) * time.Microsecond,
		args:     []any{interval, tau},
		epoch:    time.Now(),
		local:    o.local,
		brk:      breaker{threshold: int32(min(o.breakerFailures, math.MaxInt32)), cooldown: int64(o.breakerCooldown)},
	}
	if o.denyCache > 0 {
		l.cache = newDenyCache(o.denyCache)
	}
	if o.policy == FailLocal && l.local == nil && interval > 0 {
		n := o.instances
		k, err := limiter.NewKeyed(r/rate.Limit(n), (burst-1)/n+1)
		if err != nil {
			return nil, fmt.Errorf("%w: local fallback: %w", ErrInvalidOption, err)
		}
		l.local = k
	}
	return l, nil
}

// checkClient rejects nil clients, including typed nil pointers, and the
// go-redis clients that would ignore the per-decision deadline.
func checkClient(client redis.UniversalClient) error {
	const hint = "set ContextTimeoutEnabled: true in its options so WithTimeout bounds each decision"
	switch c := client.(type) {
	case nil:
		return fmt.Errorf("%w: nil client", ErrInvalidOption)
	case *redis.Client:
		if c == nil {
			return fmt.Errorf("%w: nil client", ErrInvalidOption)
		}
		if !c.Options().ContextTimeoutEnabled {
			return fmt.Errorf("%w: client ignores context deadlines: %s", ErrInvalidOption, hint)
		}
	case *redis.ClusterClient:
		if c == nil {
			return fmt.Errorf("%w: nil client", ErrInvalidOption)
		}
		if !c.Options().ContextTimeoutEnabled {
			return fmt.Errorf("%w: cluster client ignores context deadlines: %s", ErrInvalidOption, hint)
		}
	case *redis.Ring:
		if c == nil {
			return fmt.Errorf("%w: nil client", ErrInvalidOption)
		}
		if !c.Options().ContextTimeoutEnabled {
			return fmt.Errorf("%w: ring client ignores context deadlines: %s", ErrInvalidOption, hint)
		}
	}
	return nil
}

// AllowContext decides whether one event for key may happen now, taking a
// token from key's shared budget if so. It makes at most one Redis round
// trip (two the first time a server lacks the script), and none when the
// deny cache already knows key is over its limit.
//
// It never blocks longer than the timeout set by WithTimeout plus local
// work. When Redis fails or is slower than that, or the circuit breaker is
// open, the fail policy makes the decision, which is returned with an error
// wrapping ErrUnavailable (and the Redis error, if any), as
// limiter.RateLimiter specifies: apply the Decision, log the error.
//
// It returns a zero Decision (not allowed) and an error for an empty key
// (ErrEmptyKey) or when ctx is done before Redis answers (wrapping
// context.Cause(ctx)); such a call takes no token.
//
// With rate.Inf every call is allowed without asking Redis.
func (l *Limiter) AllowContext(ctx context.Context, key string) (limiter.Decision, error) {
	if key == "" {
		l.failed.Add(1)
		return limiter.Decision{}, ErrEmptyKey
	}
	if ctx.Err() != nil {
		l.failed.Add(1)
		return limiter.Decision{}, fmt.Errorf("redisstore: %w", context.Cause(ctx))
	}
	if l.interval == 0 {
		return l.count(limiter.Decision{Allowed: true, Remaining: l.burst, Limit: l.burst}), nil
	}

	var h uint64
	var sent int64
	if l.cache != nil {
		h = l.cache.hash(key)
		sent = l.now()
		if retryAt, resetAt, ok := l.cache.lookup(h, sent); ok {
			l.cacheHits.Add(1)
			return l.count(l.denial(time.Duration(retryAt-sent), time.Duration(resetAt-sent))), nil
		}
	}

	admit, probe := l.brk.admit(l.now)
	if !admit {
		return l.logFallback(l.count(l.fallback(key)), errBreakerOpen)
	}

	d, err := l.eval(ctx, key)
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up; that says nothing about Redis' health.
			l.brk.abandon(probe)
			l.failed.Add(1)
			return limiter.Decision{}, fmt.Errorf("redisstore: %w", context.Cause(ctx))
		}
		if !unhealthy(err) {
			// Redis answered, for this key only: it is reachable, so the
			// breaker hears a success, and the fail policy decides this
			// one request.
			l.keyErrs.Add(1)
			l.brk.success(probe)
			return l.count(l.fallback(key)), fmt.Errorf("%w: key %q: %w", ErrKeyFailed, truncate(key), err)
		}
		l.errs.Add(1)
		l.brk.failure(probe, l.now())
		return l.logFallback(l.count(l.fallback(key)), fmt.Errorf("%w: %w", ErrUnavailable, err))
	}
	l.brk.success(probe)
	if !d.Allowed && l.cache != nil {
		// The entry expires RetryAfter after the request was sent, which is
		// no later than Redis' own answer would change: denials write no
		// state, and other instances can only push the key's TAT later.
		l.cache.insert(h, sent, sent+int64(d.RetryAfter), sent+int64(d.ResetAfter))
	}
	return l.count(d), nil
}

// eval runs one GCRA step in Redis under the per-decision timeout.
func (l *Limiter) eval(ctx context.Context, key string) (limiter.Decision, error) {
	// A caller's deadline that comes first already bounds the call, and
	// skipping WithTimeout saves its timer.
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > l.opts.timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.opts.timeout)
		defer cancel()
	}
	keys := []string{l.opts.prefix + storedKey(key, l.opts.maxKeyLen)}
	l.roundTrips.Add(1)
	cmd := gcraScript.EvalSha(ctx, l.client, keys, l.args...)
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		// The server restarted or flushed its scripts; EVAL runs the step
		// and caches the script for the next EVALSHA.
		l.roundTrips.Add(1)
		cmd = gcraScript.Eval(ctx, l.client, keys, l.args...)
	}
	v, err := cmd.Int64Slice()
	if err != nil {
		return limiter.Decision{}, err
	}
	if len(v) != 4 || v[0] < 0 || v[0] > 1 || v[1] < 0 || v[2] < 0 || v[3] < 0 {
		return limiter.Decision{}, fmt.Errorf("redisstore: unexpected script reply %v", v)
	}
	if v[0] == 0 {
		return l.denial(time.Duration(v[2])*time.Microsecond, time.Duration(v[3])*time.Microsecond), nil
	}
	return limiter.Decision{
		Allowed:    true,
		Remaining:  int(v[1]),
		ResetAfter: time.Duration(v[3]) * time.Microsecond,
		Limit:      l.burst,
		Window:     l.window,
	}, nil
}

func (l *Limiter) denial(retryAfter, resetAfter time.Duration) limiter.Decision {
	return limiter.Decision{
		RetryAfter: retryAfter,
		ResetAfter: resetAfter,
		Reason:     limiter.RequestRate,
		Limit:      l.burst,
		Window:     l.window,
	}
}

// fallback decides by the fail policy.
func (l *Limiter) fallback(key string) limiter.Decision {
	l.fallbacks.Add(1)
	switch l.opts.policy {
	case FailOpen:
		// Remaining is unknown while Redis is away; 0 is the answer that
		// cannot invite a client to send more.
		return limiter.Decision{Allowed: true, Limit: l.burst, Window: l.window}
	case FailClosed:
		return l.denial(failClosedRetry, failClosedRetry)
	default:
		return l.local.Allow(key)
	}
}

func (l *Limiter) count(d limiter.Decision) limiter.Decision {
	if d.Allowed {
		l.allowed.Add(1)
	} else {
		l.denied.Add(1)
	}
	return d
}

// now reads the monotonic clock, in nanoseconds since New.
func (l *Limiter) now() int64 { return int64(time.Since(l.epoch)) }

// Stats is a snapshot of a Limiter's counters. Every AllowContext call is
// counted in exactly one of Allowed, Denied and Failed.
type Stats struct {
	Allowed           uint64 // decisions that admitted, whatever decided them
	Denied            uint64 // decisions that denied, whatever decided them
	Failed            uint64 // calls that returned an error: empty key, caller's context done
	Errors            uint64 // Redis round trips that failed or timed out: Redis unhealthy (these feed the breaker)
	KeyErrors         uint64 // Redis answers that refused one key (ErrKeyFailed); they do not feed the breaker
	FallbackDecisions uint64 // decisions made by the fail policy (part of Allowed+Denied)
	CacheHits         uint64 // denials answered by the deny cache (part of Denied)
	RoundTrips        uint64 // commands sent to Redis
	BreakerOpen       bool   // the circuit breaker is skipping Redis right now
	DenyCacheSize     int    // entries the deny cache can hold; 0 when disabled
}

// Stats returns the Limiter's counters. Each field is read atomically, not
// the whole snapshot at once.
func (l *Limiter) Stats() Stats {
	s := Stats{
		Allowed:           l.allowed.Load(),
		Denied:            l.denied.Load(),
		Failed:            l.failed.Load(),
		Errors:            l.errs.Load(),
		KeyErrors:         l.keyErrs.Load(),
		FallbackDecisions: l.fallbacks.Load(),
		CacheHits:         l.cacheHits.Load(),
		RoundTrips:        l.roundTrips.Load(),
		BreakerOpen:       l.brk.isOpen(l.now()),
	}
	if l.cache != nil {
		s.DenyCacheSize = l.cache.capacity()
	}
	return s
}
