package limiter

import "context"

// RateLimiter is the one operation the HTTP middleware needs from a rate
// limiter. *Keyed implements it in process; limiter/redisstore implements it
// on Redis, so a service switches between them by changing a constructor.
//
// AllowContext decides for key and must not block longer than ctx allows.
// When it returns a non-nil error (a store that could not be reached, say),
// the returned Decision is still meaningful: it is the implementation's fail
// policy (allow, deny, or a local fallback), and RateLimitMiddleware applies
// it as is.
type RateLimiter interface {
	AllowContext(ctx context.Context, key string) (Decision, error)
}

var _ RateLimiter = (*Keyed)(nil)
