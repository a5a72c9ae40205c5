package limiter

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"
)

// MiddlewareOption configures Middleware, RateLimitMiddleware and
// ConcurrencyMiddleware. The middleware constructors return no error, so an
// invalid option panics when the middleware is built, at start-up, like
// http.Handle with a bad pattern.
type MiddlewareOption func(*middlewareConfig)

type middlewareConfig struct {
	trusted    []netip.Prefix
	keyFunc    func(*http.Request) (string, error)
	v6Bits     int
	policy     string
	retryAfter time.Duration
	onReject   func(*http.Request, Decision, error)
}

func newMiddlewareConfig(opts []MiddlewareOption) *middlewareConfig {
	c := &middlewareConfig{v6Bits: 64, policy: "default", retryAfter: time.Second}
	for _, opt := range opts {
		if opt == nil {
			panic("limiter: nil MiddlewareOption")
		}
		opt(c)
	}
	return c
}

// WithTrustedProxies names the reverse proxies in front of the server. Only
// when the connection comes from one of them is X-Forwarded-For read, as
// ClientAddr describes. Without this option the key is always the
// connection's address, which a client cannot spoof. It panics on an invalid
// prefix.
func WithTrustedProxies(prefixes ...netip.Prefix) MiddlewareOption {
	ps := make([]netip.Prefix, 0, len(prefixes))
	for _, p := range prefixes {
		if !p.IsValid() {
			panic(fmt.Sprintf("limiter: WithTrustedProxies: invalid prefix %v", p))
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		ps = append(ps, p.Masked())
	}
	return func(c *middlewareConfig) { c.trusted = append(c.trusted, ps...) }
}

// WithKeyFunc makes the rate-limit key f(r) instead of the client address
// (a user ID or an API token, say). When f returns an error the request is
// keyed on the client address instead, in a key space separate from f's
// keys: a client that makes f fail still gets a limit and cannot pick
// someone else's bucket. It panics if f is nil.
func WithKeyFunc(f func(*http.Request) (string, error)) MiddlewareOption {
	if f == nil {
		panic("limiter: WithKeyFunc: nil func")
	}
	return func(c *middlewareConfig) { c.keyFunc = f }
}

// WithIPv6KeyPrefix sets how many leading bits of a client's IPv6 address
// form its key (default 64). With a *Keyed, the coarser of this and the
// Keyed's own WithKeyedIPv6Prefix applies. It panics outside [1, 128].
func WithIPv6KeyPrefix(bits int) MiddlewareOption {
	if bits < 1 || bits > 128 {
		panic(fmt.Sprintf("limiter: WithIPv6KeyPrefix: /%d not in [1, 128]", bits))
	}
	return func(c *middlewareConfig) { c.v6Bits = bits }
}

// WithPolicyName sets the policy name sent in the RateLimit-Policy and
// RateLimit headers (default "default"). It panics unless name is 1 to 64
// printable ASCII characters without '"' or '\'.
func WithPolicyName(name string) MiddlewareOption {
	if len(name) == 0 || len(name) > 64 {
		panic("limiter: WithPolicyName: name must be 1 to 64 characters")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			panic(fmt.Sprintf("limiter: WithPolicyName: invalid character %q", c))
		}
	}
	return func(c *middlewareConfig) { c.policy = name }
}

// WithRetryAfter sets the Retry-After ConcurrencyMiddleware sends when full
// (default 1s; rounded up to whole seconds). It panics unless d > 0.
func WithRetryAfter(d time.Duration) MiddlewareOption {
	if d <= 0 {
		panic("limiter: WithRetryAfter: duration must be positive")
	}
	return func(c *middlewareConfig) { c.retryAfter = d }
}

// WithOnReject registers f, called synchronously for every rejected request
// before the response is written, with the Decision (its Reason says why)
// and the limiter's error if any. Use it for logs and metrics; it must not
// write to the response.
func WithOnReject(f func(r *http.Request, d Decision, err error)) MiddlewareOption {
	if f == nil {
		panic("limiter: WithOnReject: nil func")
	}
	return func(c *middlewareConfig) { c.onReject = f }
}

// Middleware is RateLimitMiddleware for a *Keyed. With the default key it
// uses Keyed.AllowAddr and does not allocate for the key.
func Middleware(k *Keyed, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	if k == nil {
		panic("limiter: Middleware: nil *Keyed")
	}
	return RateLimitMiddleware(k, opts...)
}

// RateLimitMiddleware limits the request rate of each client. The key is the
// client's address prefix (IPv4 /32, IPv6 /64) taken from r.RemoteAddr, or
// from X-Forwarded-For only as WithTrustedProxies allows, or WithKeyFunc's
// key. Requests with no IP in RemoteAddr share one bucket. With a *Keyed
// the address is passed to AllowAddr; any other RateLimiter gets the string
// "addr:" followed by the masked address ("addr:2001:db8:1:2::"), so a
// WithKeyFunc key should not start with "addr:".
//
// Every response carries the IETF draft headers
// (draft-ietf-httpapi-ratelimit-headers) computed from the Decision:
//
//	RateLimit-Policy: "default";q=<burst>;w=<seconds to refill>
//	RateLimit: "default";r=<remaining>;t=<seconds until full>
//
// A denied request gets 429 Too Many Requests with Retry-After in whole
// seconds (rounded up, at least 1); no request header is ever echoed.
//
// When rl.AllowContext returns an error, the Decision returned with it is
// applied as is, so the limiter's fail policy decides: an allowed Decision
// serves the request, a denied one is answered 503 Service Unavailable with
// Retry-After (at least 1s), since the limit itself could not be checked.
// The middleware never blocks beyond rl.AllowContext, which gets the
// request's context. It panics if rl is nil.
func RateLimitMiddleware(rl RateLimiter, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	if rl == nil {
		panic("limiter: RateLimitMiddleware: nil RateLimiter")
	}
	c := newMiddlewareConfig(opts)
	keyed, _ := rl.(*Keyed)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			d, err := c.decide(rl, keyed, r)
			writeRateLimitHeaders(w.Header(), c.policy, d)
			if d.Allowed {
				next.ServeHTTP(w, r)
				return
			}
			if c.onReject != nil {
				c.onReject(r, d, err)
			}
			status := http.StatusTooManyRequests
			if err != nil {
				status = http.StatusServiceUnavailable
			}
			reject(w, status, d.RetryAfter)
		})
	}
}

func (c *middlewareConfig) decide(rl RateLimiter, keyed *Keyed, r *http.Request) (Decision, error) {
	if c.keyFunc != nil {
		if key, err := c.keyFunc(r); err == nil {
			return rl.AllowContext(r.Context(), key)
		}
	}
	a := maskAddr(ClientAddr(r, c.trusted...), c.v6Bits)
	if keyed != nil {
		return keyed.AllowAddr(a), nil
	}
	key := "addr:"
	if a.IsValid() {
		key += a.String()
	}
	return rl.AllowContext(r.Context(), key)
}

// ConcurrencyMiddleware serves at most maxInFlight requests at once. A
// request over the limit is not queued: it is answered at once with 503
// Service Unavailable and Retry-After (WithRetryAfter, default 1s), so a
// flood of slow requests cannot pile up goroutines. Only WithRetryAfter and
// WithOnReject apply. It panics if maxInFlight < 1.
func ConcurrencyMiddleware(maxInFlight int, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	if maxInFlight < 1 {
		panic(fmt.Sprintf("limiter: ConcurrencyMiddleware: maxInFlight %d must be at least 1", maxInFlight))
	}
	c := newMiddlewareConfig(opts)
	var inFlight atomic.Int64
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if inFlight.Add(1) > int64(maxInFlight) {
				inFlight.Add(-1)
				if c.onReject != nil {
					c.onReject(r, Decision{RetryAfter: c.retryAfter, Reason: Concurrency, Limit: maxInFlight}, nil)
				}
				reject(w, http.StatusServiceUnavailable, c.retryAfter)
				return
			}
			defer inFlight.Add(-1)
			next.ServeHTTP(w, r)
		})
	}
}

// ceilSeconds rounds d up to whole seconds, at least minimum.
func ceilSeconds(d time.Duration, minimum int64) int64 {
	return max((int64(d)+int64(time.Second)-1)/int64(time.Second), minimum)
}

func writeRateLimitHeaders(h http.Header, policy string, d Decision) {
	if d.Limit <= 0 {
		return
	}
	var buf [96]byte
	b := append(buf[:0], '"')
	b = append(b, policy...)
	b = append(b, `";q=`...)
	b = strconv.AppendInt(b, int64(d.Limit), 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, ceilSeconds(d.Window, 1), 10)
	h.Set("RateLimit-Policy", string(b))

	b = append(buf[:0], '"')
	b = append(b, policy...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, int64(max(d.Remaining, 0)), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, ceilSeconds(d.ResetAfter, 0), 10)
	h.Set("RateLimit", string(b))
}

func reject(w http.ResponseWriter, status int, retryAfter time.Duration) {
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(ceilSeconds(retryAfter, 1), 10))
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, http.StatusText(status))
}
