package redisstore

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/garrison-go/garrison/internal/logsample"
	"github.com/garrison-go/garrison/limiter"
)

// Defaults applied by New when the matching option is not given.
const (
	// DefaultPrefix namespaces every key the Limiter writes.
	DefaultPrefix = "garrison:rl:"
	// DefaultTimeout bounds each decision's Redis round trip. A healthy
	// Redis on the same network answers in well under a millisecond; past
	// 10 ms the fail policy serves the request instead.
	DefaultTimeout = 10 * time.Millisecond
	// DefaultBreakerFailures consecutive Redis failures open the breaker.
	DefaultBreakerFailures = 3
	// DefaultBreakerCooldown is how long an open breaker skips Redis
	// before one decision probes it again.
	DefaultBreakerCooldown = 100 * time.Millisecond
	// MaxDenyCache is the largest size WithDenyCache accepts.
	MaxDenyCache = 1 << 24
)

// FailPolicy says what a decision is when Redis cannot answer within the
// timeout. The zero value is FailLocal.
type FailPolicy uint8

const (
	// FailLocal decides with a local limiter.Keyed: the one given by
	// WithLocalFallback, or one built at rate/n and burst/n (rounded up)
	// where n is set by WithInstances (default 1, so each instance alone
	// admits the full rate while Redis is away). It keeps a bound on
	// traffic without making Redis a single point of failure. The limiter
	// New builds tracks limiter.DefaultCapacity keys (about 1 MiB).
	FailLocal FailPolicy = iota
	// FailOpen admits every request while Redis is away: availability
	// over protection.
	FailOpen
	// FailClosed denies every request while Redis is away, with
	// Reason RequestRate and a RetryAfter and ResetAfter of one second:
	// protection over availability.
	FailClosed
)

// String returns the policy's name.
func (p FailPolicy) String() string {
	switch p {
	case FailLocal:
		return "FailLocal"
	case FailOpen:
		return "FailOpen"
	case FailClosed:
		return "FailClosed"
	}
	return fmt.Sprintf("FailPolicy(%d)", uint8(p))
}

// Option configures a Limiter. Options are validated by New, which returns
// an error wrapping ErrInvalidOption for a bad one.
type Option func(*options) error

type options struct {
	prefix          string
	timeout         time.Duration
	policy          FailPolicy
	local           *limiter.Keyed
	instances       int
	denyCache       int
	breakerFailures int
	breakerCooldown time.Duration
	logger          *slog.Logger       // WithLogger; see log.go
	logSample       *logsample.Sampler // WithLogger
	maxKeyLen       int
}

func defaultOptions() options {
	return options{
		prefix:          DefaultPrefix,
		timeout:         DefaultTimeout,
		policy:          FailLocal,
		instances:       1,
		breakerFailures: DefaultBreakerFailures,
		breakerCooldown: DefaultBreakerCooldown,
		maxKeyLen:       DefaultMaxKeyLen,
	}
}

// WithMaxKeyLen sets the longest key stored in Redis as is (default
// DefaultMaxKeyLen bytes, not counting the prefix). A longer key is stored
// as its SHA-256 (51 bytes), so a client choosing megabyte keys cannot make
// each one cost Redis a megabyte; two keys share a budget only if their
// SHA-256 collide. n must be in [64, 1<<20].
func WithMaxKeyLen(n int) Option {
	return func(o *options) error {
		if n < 64 || n > 1<<20 {
			return fmt.Errorf("%w: max key length must be in [64, %d], got %d", ErrInvalidOption, 1<<20, n)
		}
		o.maxKeyLen = n
		return nil
	}
}

// WithPrefix sets the namespace prepended to every key (default
// DefaultPrefix). Limiters that must share a budget use the same prefix,
// rate and burst; limiters with different rates need different prefixes.
// With Redis Cluster, a prefix such as "{rl}:" would pin every key to one
// slot; the default spreads keys across the cluster.
func WithPrefix(p string) Option {
	return func(o *options) error {
		o.prefix = p
		return nil
	}
}

// WithTimeout bounds each decision's time in Redis (default
// DefaultTimeout), including dialing and waiting for a pooled connection.
// When it expires the fail policy decides. d must be positive.
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: timeout must be positive, got %v", ErrInvalidOption, d)
		}
		o.timeout = d
		return nil
	}
}

// WithFailPolicy sets what decides while Redis is unreachable or slower
// than the timeout (default FailLocal).
func WithFailPolicy(p FailPolicy) Option {
	return func(o *options) error {
		if p > FailClosed {
			return fmt.Errorf("%w: unknown fail policy %v", ErrInvalidOption, p)
		}
		o.policy = p
		return nil
	}
}

// WithLocalFallback sets the limiter FailLocal uses while Redis is away,
// instead of one built from WithInstances. It is used as is: give it the
// per-instance share of the budget.
func WithLocalFallback(k *limiter.Keyed) Option {
	return func(o *options) error {
		if k == nil {
			return fmt.Errorf("%w: nil local fallback", ErrInvalidOption)
		}
		o.local = k
		return nil
	}
}

// WithInstances tells FailLocal how many instances share the budget, so
// that the local fallback it builds admits rate/n with burst/n (rounded
// up): together the instances stay near the global limit while Redis is
// away. The default is 1. Ignored when WithLocalFallback is given.
func WithInstances(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("%w: instances must be positive, got %d", ErrInvalidOption, n)
		}
		o.instances = n
		return nil
	}
}

// WithDenyCache keeps up to size (rounded up to a power of two) recently
// denied keys in local memory until their RetryAfter has passed, and denies
// them again without asking Redis: a client already over its limit costs no
// round trip. It never denies a request that Redis would admit, because the
// entry expires RetryAfter after the request that was denied was sent, and
// only an admitted request moves a key's state; the exception is a key
// removed from Redis early (eviction under maxmemory, FLUSHDB, a restart),
// which stays denied here for the rest of its RetryAfter. Memory is fixed
// at about 26 bytes per entry whatever the keys' length. 0 (the default)
// disables it.
func WithDenyCache(size int) Option {
	return func(o *options) error {
		if size < 0 || size > MaxDenyCache {
			return fmt.Errorf("%w: deny cache size must be in [0, %d], got %d", ErrInvalidOption, MaxDenyCache, size)
		}
		o.denyCache = size
		return nil
	}
}

// WithCircuitBreaker skips Redis after failures consecutive failed round
// trips, for cooldown, then lets one decision probe it; the fail policy
// decides in the meantime without waiting for the timeout. A success closes
// the breaker. failures == 0 disables it, so every decision tries Redis.
// The default is DefaultBreakerFailures and DefaultBreakerCooldown.
func WithCircuitBreaker(failures int, cooldown time.Duration) Option {
	return func(o *options) error {
		if failures < 0 {
			return fmt.Errorf("%w: breaker failures must not be negative, got %d", ErrInvalidOption, failures)
		}
		if failures > 0 && cooldown <= 0 {
			return fmt.Errorf("%w: breaker cooldown must be positive, got %v", ErrInvalidOption, cooldown)
		}
		o.breakerFailures = failures
		o.breakerCooldown = cooldown
		return nil
	}
}
