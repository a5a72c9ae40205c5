package limiter

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"
)

// MiddlewareOption configures Middleware, RateLimitMiddleware and
// ConcurrencyMiddleware. The middleware constructors return no error, so an
// invalid option panics when the middleware is built, at start-up, like
// http.Handle with a bad pattern. WithIPv6Prefix, a ListenerOption, is
// accepted too, so one option sets the IPv6 grouping everywhere.
type MiddlewareOption interface {
	applyMiddleware(*middlewareConfig)
}

type middlewareOption func(*middlewareConfig)

func (f middlewareOption) applyMiddleware(c *middlewareConfig) { f(c) }

// applyMiddleware lets WithIPv6Prefix configure a middleware; any other
// ListenerOption panics as misplaced.
func (o ListenerOption) applyMiddleware(c *middlewareConfig) {
	bits, err := ipv6PrefixOf(o)
	if err != nil {
		panic(err.Error())
	}
	c.v6Bits = bits
}

type middlewareConfig struct {
	proxies    Proxies
	keyFunc    func(*http.Request) (string, error)
	v6Bits     int
	policy     string
	retryAfter time.Duration
	onReject   func(*http.Request, Decision, error)
	rejectWith func(http.ResponseWriter, *http.Request, Rejection)
	dryRun     bool
	exempt     func(*http.Request) bool
	exemptNets []netip.Prefix
	stats      *MiddlewareCounter
}

func newMiddlewareConfig(opts []MiddlewareOption) *middlewareConfig {
	c := &middlewareConfig{v6Bits: 64, policy: "default", retryAfter: time.Second, rejectWith: PlainTextRejection}
	for _, opt := range opts {
		if opt == nil {
			panic("limiter: nil MiddlewareOption")
		}
		opt.applyMiddleware(c)
	}
	return c
}

// WithTrustedProxies names the reverse proxies in front of the server by
// network. Only when the connection comes from one of them is the proxy
// header (WithProxyHeader, default X-Forwarded-For) read, as
// Proxies.ClientAddr describes. Without a trust option the key is always the
// connection's address, which a client cannot spoof. It panics on an
// invalid prefix.
func WithTrustedProxies(prefixes ...netip.Prefix) MiddlewareOption {
	ps := make([]netip.Prefix, 0, len(prefixes))
	for _, p := range prefixes {
		if !p.IsValid() {
			panic(fmt.Sprintf("limiter: WithTrustedProxies: invalid prefix %v", p))
		}
		ps = append(ps, normalizePrefix(p))
	}
	return middlewareOption(func(c *middlewareConfig) { c.proxies.Trusted = append(c.proxies.Trusted, ps...) })
}

// WithTrustedHops trusts the n proxies nearest the server whatever their
// addresses (Proxies.Hops): behind one cloud load balancer, n is 1 and the
// rightmost X-Forwarded-For entry is the client. Use it only when every
// request reaches the server through those n proxies: a client that can
// connect directly chooses its own key. It panics unless 1 <= n <= 32.
func WithTrustedHops(n int) MiddlewareOption {
	if n < 1 || n > maxForwardedHops {
		panic(fmt.Sprintf("limiter: WithTrustedHops(%d): must be in [1, %d]", n, maxForwardedHops))
	}
	return middlewareOption(func(c *middlewareConfig) { c.proxies.Hops = n })
}

// WithTrustNonIPPeers trusts a peer whose RemoteAddr holds no IP address, as
// when a reverse proxy connects over a Unix socket (RemoteAddr "@"), and
// reads the proxy header from it. Without it every such request shares one
// bucket, keyed on the zero address.
func WithTrustNonIPPeers() MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.proxies.TrustNonIP = true })
}

// WithProxyHeader sets the header trusted proxies write the client address
// into (default XForwardedFor). Only that header is read. It panics on an
// unknown ProxyHeader.
func WithProxyHeader(h ProxyHeader) MiddlewareOption {
	if h > XRealIP {
		panic(fmt.Sprintf("limiter: WithProxyHeader: unknown header %d", h))
	}
	return middlewareOption(func(c *middlewareConfig) { c.proxies.Header = h })
}

// WithKeyFunc makes the rate-limit key f(r) instead of the client address
// (a user ID or an API token, say). When f returns an error the request is
// keyed on the client address instead, in a key space separate from f's
// keys, with every RateLimiter: a client that makes f fail still gets a
// limit and cannot pick someone else's bucket. It panics if f is nil.
func WithKeyFunc(f func(*http.Request) (string, error)) MiddlewareOption {
	if f == nil {
		panic("limiter: WithKeyFunc: nil func")
	}
	return middlewareOption(func(c *middlewareConfig) { c.keyFunc = f })
}

// WithPolicyName sets the policy name sent in the RateLimit-Policy and
// RateLimit headers (default "default"); give each of several stacked
// middlewares its own. It panics unless name is 1 to 64 printable ASCII
// characters without '"' or '\'.
func WithPolicyName(name string) MiddlewareOption {
	if len(name) == 0 || len(name) > 64 {
		panic("limiter: WithPolicyName: name must be 1 to 64 characters")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			panic(fmt.Sprintf("limiter: WithPolicyName: invalid character %q", c))
		}
	}
	return middlewareOption(func(c *middlewareConfig) { c.policy = name })
}

// WithRetryAfter sets the Retry-After ConcurrencyMiddleware sends when full
// (default 1s; rounded up to whole seconds). It panics unless d > 0.
func WithRetryAfter(d time.Duration) MiddlewareOption {
	if d <= 0 {
		panic("limiter: WithRetryAfter: duration must be positive")
	}
	return middlewareOption(func(c *middlewareConfig) { c.retryAfter = d })
}

// WithOnReject registers f, called synchronously for every rejected request
// before the response is written (and, under WithDryRun, for every request
// that would have been rejected), with the Decision (its Reason says why)
// and the limiter's error if any. Use it for logs and metrics; it must not
// write to the response.
func WithOnReject(f func(r *http.Request, d Decision, err error)) MiddlewareOption {
	if f == nil {
		panic("limiter: WithOnReject: nil func")
	}
	return middlewareOption(func(c *middlewareConfig) { c.onReject = f })
}

// Rejection describes a request a middleware refuses, for a
// WithRejectHandler handler.
type Rejection struct {
	// Status is the status code to answer with: 429 Too Many Requests for
	// a rate denial, 503 Service Unavailable when the limiter failed and
	// its fail policy denied, or ConcurrencyMiddleware is full.
	Status int
	// Decision is the limiter's decision; its Reason says why.
	Decision Decision
	// Err is the limiter's error, or nil.
	Err error
}

// WithRejectHandler replaces the response written for a rejected request.
// When f runs, Retry-After, Cache-Control: no-store and the RateLimit
// headers are already set; f writes the status (normally rej.Status),
// Content-Type and body. PlainTextRejection is the default and
// ProblemJSONRejection answers with RFC 9457 problem details. f must not
// echo request data without escaping it. It panics if f is nil.
func WithRejectHandler(f func(w http.ResponseWriter, r *http.Request, rej Rejection)) MiddlewareOption {
	if f == nil {
		panic("limiter: WithRejectHandler: nil func")
	}
	return middlewareOption(func(c *middlewareConfig) { c.rejectWith = f })
}

// PlainTextRejection writes rej.Status with its status text as a plain-text
// body. It is the default rejection handler.
func PlainTextRejection(w http.ResponseWriter, _ *http.Request, rej Rejection) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(rej.Status)
	_, _ = fmt.Fprintln(w, http.StatusText(rej.Status))
}

// ProblemJSONRejection writes rej.Status with an RFC 9457 problem details
// body (Content-Type application/problem+json): the status, its text as
// the title, a detail naming the reason and the wait, and the reason as a
// "reason" extension member. Nothing from the request is echoed.
func ProblemJSONRejection(w http.ResponseWriter, _ *http.Request, rej Rejection) {
	wait := ceilSeconds(rej.Decision.RetryAfter, 1)
	body := struct {
		Type       string `json:"type"`
		Title      string `json:"title"`
		Status     int    `json:"status"`
		Detail     string `json:"detail"`
		Reason     string `json:"reason"`
		RetryAfter int64  `json:"retry_after"`
	}{
		Type:       "about:blank",
		Title:      http.StatusText(rej.Status),
		Status:     rej.Status,
		Detail:     fmt.Sprintf("rejected (%s); retry after %d s", rej.Decision.Reason, wait),
		Reason:     rej.Decision.Reason.String(),
		RetryAfter: wait,
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(rej.Status)
	_ = json.NewEncoder(w).Encode(body)
}

// WithDryRun makes RateLimitMiddleware decide and count every request but
// serve each one, rejected or not: WithOnReject and WithCounter see what
// would have been rejected, and no RateLimit or Retry-After header is sent,
// so clients do not react to a limit that is not enforced. Use it to size a
// limit on real traffic before enforcing it.
func WithDryRun() MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.dryRun = true })
}

// WithExempt exempts the requests for which f returns true from the limit:
// they are served without a decision, take no quota and get no RateLimit
// headers (health checks, say). f runs on every request before the
// limiter; it must be fast. It panics if f is nil.
func WithExempt(f func(*http.Request) bool) MiddlewareOption {
	if f == nil {
		panic("limiter: WithExempt: nil func")
	}
	return middlewareOption(func(c *middlewareConfig) { c.exempt = f })
}

// WithExemptAddrs exempts clients whose address (as the trust options
// resolve it) lies in one of prefixes, like WithExempt. It panics on an
// invalid prefix.
func WithExemptAddrs(prefixes ...netip.Prefix) MiddlewareOption {
	ps := make([]netip.Prefix, 0, len(prefixes))
	for _, p := range prefixes {
		if !p.IsValid() {
			panic(fmt.Sprintf("limiter: WithExemptAddrs: invalid prefix %v", p))
		}
		ps = append(ps, normalizePrefix(p))
	}
	return middlewareOption(func(c *middlewareConfig) { c.exemptNets = append(c.exemptNets, ps...) })
}

// MiddlewareCounter counts a middleware's outcomes. Give one to
// WithCounter and read it with Stats; the zero value is ready. Every
// request the middleware sees is counted in exactly one of Allowed,
// Rejected, DryRunRejected and Exempt.
type MiddlewareCounter struct {
	allowed, rejected, dryRun, exempt, errs atomic.Uint64
}

// MiddlewareStats is a snapshot of a MiddlewareCounter.
type MiddlewareStats struct {
	Allowed        uint64 // served after an allowed decision
	Rejected       uint64 // answered 429 or 503
	DryRunRejected uint64 // would have been rejected, served under WithDryRun
	Exempt         uint64 // served without a decision (WithExempt, WithExemptAddrs)
	Errors         uint64 // decisions that came with a limiter error (part of the above)
}

// Stats returns the counters, each read atomically.
func (s *MiddlewareCounter) Stats() MiddlewareStats {
	return MiddlewareStats{
		Allowed:        s.allowed.Load(),
		Rejected:       s.rejected.Load(),
		DryRunRejected: s.dryRun.Load(),
		Exempt:         s.exempt.Load(),
		Errors:         s.errs.Load(),
	}
}

// WithCounter makes the middleware count its outcomes in s, which may be
// shared by several middlewares. It panics if s is nil.
func WithCounter(s *MiddlewareCounter) MiddlewareOption {
	if s == nil {
		panic("limiter: WithCounter: nil *MiddlewareCounter")
	}
	return middlewareOption(func(c *middlewareConfig) { c.stats = s })
}

// Middleware is RateLimitMiddleware for a *Keyed. With the default key it
// uses Keyed.AllowAddr and does not allocate for the key.
func Middleware(k *Keyed, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	if k == nil {
		panic("limiter: Middleware: nil *Keyed")
	}
	return RateLimitMiddleware(k, opts...)
}

// RateLimitMiddleware limits the request rate of each client. The key is
// WithKeyFunc's key, or else the client's address prefix (IPv4 /32, IPv6 /64
// unless WithIPv6Prefix says otherwise) taken from r.RemoteAddr, or from
// the proxy header only as the trust options (WithTrustedProxies,
// WithTrustedHops, WithTrustNonIPPeers) allow. With a *Keyed the address is
// passed to AllowAddr, whose key space is separate from Allow's; any other
// RateLimiter gets "addr:" followed by the masked address
// ("addr:2001:db8:1:2::", "addr:" alone for a peer with no IP) and
// WithKeyFunc keys prefixed with "key:", so the two key spaces never meet.
//
// Every response carries the RateLimit header fields of
// draft-ietf-httpapi-ratelimit-headers-12 (20 November 2026), computed from
// the Decision:
//
//	RateLimit-Policy: "default";q=<quota>;w=<window seconds>
//	RateLimit: "default";r=<remaining>;t=<seconds>
//
// q/w is the limit's sustained rate as integers (100/s with any burst is
// q=100;w=1; 1 per 12 s with burst 5 is q=5;w=60). t is, on a 429, the
// Retry-After value (when the next request can pass); otherwise the time
// until the whole burst is available again. All values are clamped to
// Structured Fields integers (at most 999,999,999,999,999). Stacked
// middlewares (a per-route limit inside a global one) each add their own
// policy to the list, so name them apart with WithPolicyName.
//
// A denied request gets 429 Too Many Requests with Retry-After in whole
// seconds (rounded up, at least 1), written by the WithRejectHandler
// handler (plain text by default); no request header is ever echoed.
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
	var policy atomic.Pointer[policyField]
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c.exempt != nil && c.exempt(r) {
				c.count(&c.statsOrNil().exempt)
				next.ServeHTTP(w, r)
				return
			}
			d, err, exempt := c.decide(rl, keyed, r)
			if exempt {
				c.count(&c.statsOrNil().exempt)
				next.ServeHTTP(w, r)
				return
			}
			if err != nil {
				c.count(&c.statsOrNil().errs)
			}
			if d.Allowed {
				c.count(&c.statsOrNil().allowed)
				if !c.dryRun {
					writeRateLimitHeaders(w.Header(), &policy, c.policy, d)
				}
				next.ServeHTTP(w, r)
				return
			}
			if c.onReject != nil {
				c.onReject(r, d, err)
			}
			if c.dryRun {
				c.count(&c.statsOrNil().dryRun)
				next.ServeHTTP(w, r)
				return
			}
			c.count(&c.statsOrNil().rejected)
			status := http.StatusTooManyRequests
			if err != nil {
				status = http.StatusServiceUnavailable
			}
			writeRateLimitHeaders(w.Header(), &policy, c.policy, d)
			reject(w, r, c.rejectWith, Rejection{Status: status, Decision: d, Err: err})
		})
	}
}

// discard absorbs counts when no WithCounter was given, so the hot path has
// no branch per counter.
var discard MiddlewareCounter

func (c *middlewareConfig) statsOrNil() *MiddlewareCounter {
	if c.stats == nil {
		return &discard
	}
	return c.stats
}

func (c *middlewareConfig) count(n *atomic.Uint64) {
	if c.stats != nil {
		n.Add(1)
	}
}

func (c *middlewareConfig) decide(rl RateLimiter, keyed *Keyed, r *http.Request) (d Decision, err error, exempt bool) {
	if c.keyFunc != nil && len(c.exemptNets) == 0 {
		if key, err := c.keyFunc(r); err == nil {
			return c.allowKey(rl, keyed, r, key)
		}
	}
	client := c.proxies.ClientAddr(r)
	if len(c.exemptNets) > 0 && client.IsValid() && trusted(client, c.exemptNets) {
		return Decision{}, nil, true
	}
	if c.keyFunc != nil && len(c.exemptNets) > 0 {
		if key, err := c.keyFunc(r); err == nil {
			return c.allowKey(rl, keyed, r, key)
		}
	}
	a := maskAddr(client, c.v6Bits)
	if keyed != nil {
		return keyed.AllowAddr(a), nil, false
	}
	key := "addr:"
	if a.IsValid() {
		key += a.String()
	}
	d, err = rl.AllowContext(r.Context(), key)
	return d, err, false
}

func (c *middlewareConfig) allowKey(rl RateLimiter, keyed *Keyed, r *http.Request, key string) (Decision, error, bool) {
	if keyed != nil {
		return keyed.Allow(key), nil, false
	}
	d, err := rl.AllowContext(r.Context(), "key:"+key)
	return d, err, false
}

// ConcurrencyMiddleware serves at most maxInFlight requests at once. A
// request over the limit is not queued: it is answered at once with 503
// Service Unavailable and Retry-After (WithRetryAfter, default 1s), so a
// flood of slow requests cannot pile up goroutines. Only WithRetryAfter,
// WithOnReject, WithRejectHandler and WithCounter apply. It panics if
// maxInFlight < 1.
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
				d := Decision{RetryAfter: c.retryAfter, Reason: Concurrency, Limit: maxInFlight}
				if c.onReject != nil {
					c.onReject(r, d, nil)
				}
				c.count(&c.statsOrNil().rejected)
				reject(w, r, c.rejectWith, Rejection{Status: http.StatusServiceUnavailable, Decision: d})
				return
			}
			defer inFlight.Add(-1)
			c.count(&c.statsOrNil().allowed)
			next.ServeHTTP(w, r)
		})
	}
}

// ceilSeconds rounds d up to whole seconds, at least minimum, at most the
// largest Structured Fields integer.
func ceilSeconds(d time.Duration, minimum int64) int64 {
	return clampSF(max((int64(d)+int64(time.Second)-1)/int64(time.Second), minimum))
}

// maxSFInteger is the largest Integer of RFC 9651 Structured Fields.
const maxSFInteger = 999_999_999_999_999

func clampSF(v int64) int64 { return min(max(v, 0), maxSFInteger) }

// policyField caches the RateLimit-Policy value for one (Limit, Window):
// finding integers q/w for the rate costs a loop, and a limiter's quota
// rarely changes between requests.
type policyField struct {
	limit  int
	window time.Duration
	value  string
}

// quotaWindow returns integers q and w (seconds, at least 1) with q/w equal
// to the rate limit/window, or just below it when no small w makes it
// exact: a client pacing itself to q/w then never exceeds the limit. The
// window starts at the time to refill the burst, rounded up.
func quotaWindow(limit int, window time.Duration) (q, w int64) {
	if window <= 0 {
		return clampSF(int64(limit)), 1
	}
	rate := float64(limit) / window.Seconds() // per second
	w0 := max(ceilSeconds(window, 1), 1)
	for w := w0; w < w0*1000 && w <= maxSFInteger; w++ {
		x := rate * float64(w)
		if r := math.Round(x); r >= 1 && math.Abs(x-r) <= 1e-9*x {
			return floatSF(r), w
		}
	}
	return max(floatSF(math.Floor(rate*float64(w0))), 1), w0
}

// floatSF converts a non-negative float to a Structured Fields integer,
// clamping before the conversion, which is undefined out of int64's range.
func floatSF(x float64) int64 {
	if !(x < maxSFInteger) {
		return maxSFInteger
	}
	return max(int64(x), 0)
}

func writeRateLimitHeaders(h http.Header, cache *atomic.Pointer[policyField], policy string, d Decision) {
	if d.Limit <= 0 {
		return
	}
	pf := cache.Load()
	if pf == nil || pf.limit != d.Limit || pf.window != d.Window {
		q, w := quotaWindow(d.Limit, d.Window)
		b := append([]byte(nil), '"')
		b = append(b, policy...)
		b = append(b, `";q=`...)
		b = strconv.AppendInt(b, q, 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, w, 10)
		pf = &policyField{limit: d.Limit, window: d.Window, value: string(b)}
		cache.Store(pf)
	}
	h.Add("RateLimit-Policy", pf.value)

	t := ceilSeconds(d.ResetAfter, 0)
	if !d.Allowed {
		t = ceilSeconds(d.RetryAfter, 1) // the Retry-After value
	}
	var buf [96]byte
	b := append(buf[:0], '"')
	b = append(b, policy...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, clampSF(int64(d.Remaining)), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, t, 10)
	h.Add("RateLimit", string(b))
}

func reject(w http.ResponseWriter, r *http.Request, handler func(http.ResponseWriter, *http.Request, Rejection), rej Rejection) {
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(ceilSeconds(rej.Decision.RetryAfter, 1), 10))
	h.Set("Cache-Control", "no-store")
	handler(w, r, rej)
}
