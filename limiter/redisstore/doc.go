// Package redisstore is a rate limiter whose state lives in Redis, so every
// instance of a service shares one budget per key. It is limiter.Keyed for
// services that run on more than one machine: the same GCRA, the same
// limiter.Decision, the same limiter.RateLimiter interface.
//
// The threat: a per-process limit multiplies by the number of instances,
// and an attacker behind a load balancer spreads requests across them, so
// ten instances with a limit of 100 requests per second admit 1000. Here
// each decision is one atomic GCRA step in Redis, and the sum of all
// instances admits the configured rate.
//
//	client := redis.NewClient(&redis.Options{
//		Addr:                  "127.0.0.1:6379",
//		ContextTimeoutEnabled: true, // required: see New
//	})
//	rl, err := redisstore.New(client, 10, 20, // 10/s per key, bursts of 20
//		redisstore.WithInstances(4),     // FailLocal gives each instance 1/4
//		redisstore.WithDenyCache(10_000)) // over-limit keys cost no round trip
//	if err != nil {
//		return err
//	}
//	http.Handle("/", limiter.RateLimitMiddleware(rl)(api))
//
// # How a decision is made
//
// AllowContext runs one Lua script with EVALSHA (EVAL once when the server
// lacks it), on one key, so it works on a single node, Sentinel and Cluster.
// The script reads Redis' TIME, so clock skew between instances does not
// matter, and keeps one integer per key, the theoretical arrival time in
// microseconds, written with an expiry equal to the time until the bucket
// is full again: keys at rest disappear and Redis memory bounds itself. All
// arithmetic is on integer microseconds, so Remaining, RetryAfter and
// ResetAfter are exact at that resolution and equal to limiter.Keyed's.
//
// # When Redis is slow or down
//
// Every decision is bounded by WithTimeout (DefaultTimeout, 10 ms). When
// Redis fails or is slower, the FailPolicy decides: FailLocal (the default)
// uses an in-process limiter.Keyed at rate/instances, FailOpen admits,
// FailClosed denies; AllowContext then returns that decision together with
// an error wrapping ErrUnavailable, as limiter.RateLimiter specifies. A
// circuit breaker (WithCircuitBreaker) stops a dead Redis from costing each
// decision the full timeout, and one probe per cooldown brings decisions
// back to Redis when it returns, without a restart.
//
// Only errors that say Redis as a whole cannot answer (timeouts, connection
// errors, LOADING, BUSY, READONLY, CLUSTERDOWN, ...) count towards the
// breaker. An error about one key (OOM for its write under maxmemory with
// noeviction, WRONGTYPE, a script error) makes the fail policy decide that
// key alone, wraps ErrKeyFailed and is counted in Stats.KeyErrors: one
// poisoned key cannot switch every key to FailOpen.
//
// # Keys
//
// A key longer than WithMaxKeyLen (DefaultMaxKeyLen, 256 bytes) is stored
// as its SHA-256, so a client choosing huge keys cannot make each one cost
// Redis its length. Rates and bursts are checked by limiter.CheckRate: a
// limit New accepts is one limiter.NewKeyed accepts, and the reverse.
//
// A decision that timed out may still have been counted in Redis if the
// command reached it; a Redis restart without persistence forgets every
// key, so each client starts again with a full burst.
package redisstore
