package limiter

import (
	"strconv"
	"time"
)

// Reason says why a request or connection was rejected. The zero value,
// NoReason, means nothing was rejected.
type Reason uint8

// The reasons a Listener, Keyed or a middleware rejects something. Every
// rejection carries exactly one of them, in Stats and in hooks.
const (
	// NoReason is the zero Reason: the request or connection was admitted.
	NoReason Reason = iota
	// GlobalConns: the listener already holds WithMaxConns connections.
	GlobalConns
	// IPConns: the source prefix already holds WithMaxConnsPerIP connections.
	IPConns
	// AcceptRate: the global accept rate (WithAcceptRate) is exhausted.
	AcceptRate
	// IPAcceptRate: the source prefix's accept rate (WithAcceptRatePerIP) is
	// exhausted.
	IPAcceptRate
	// RequestRate: the key's request rate (Keyed, Middleware) is exhausted.
	RequestRate
	// TableFull: no slot was free to track the source prefix, so the
	// connection was refused rather than let it escape its per-IP limits.
	TableFull
	// SlowClient: the connection sent nothing within the first-byte timeout
	// or read slower than the minimum read rate.
	SlowClient
	// Concurrency: ConcurrencyMiddleware already serves maxInFlight requests.
	Concurrency
	// Preempted: a held connection that was not serving a request (none
	// complete yet, or idle between keep-alive requests) was closed to give
	// its slot to a new connection (policy Preempt).
	Preempted
	// StreamRate: the connection started requests (HTTP/2 streams) faster
	// than WithStreamRate allows.
	StreamRate
	// StreamResets: the client cancelled requests (HTTP/2 RST_STREAM, as in
	// the rapid-reset attack) faster than WithResetRate allows.
	StreamResets
	// SlowWrite: the peer took a response slower than WithMinWriteRate.
	SlowWrite
	// FairShare: at the global cap (policy Preempt), the new connection's
	// source already held about as many connections not serving a request
	// as any other, and none had waited long enough to give way: the
	// newcomer was closed rather than churn another held connection.
	FairShare

	numReasons
)

var reasonNames = [numReasons]string{
	NoReason:     "none",
	GlobalConns:  "global-conns",
	IPConns:      "ip-conns",
	AcceptRate:   "accept-rate",
	IPAcceptRate: "ip-accept-rate",
	RequestRate:  "request-rate",
	TableFull:    "table-full",
	SlowClient:   "slow-client",
	Concurrency:  "concurrency",
	Preempted:    "preempted",
	StreamRate:   "stream-rate",
	StreamResets: "stream-resets",
	SlowWrite:    "slow-write",
	FairShare:    "fair-share",
}

// String returns a short, stable, lower-case name such as "ip-conns",
// suitable as a metrics label.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Decision is the outcome of one rate-limit check. It carries everything a
// caller needs to answer the client: whether to serve, how long to wait and
// what the quota is, so the HTTP RateLimit headers can be written from it.
type Decision struct {
	// Allowed reports whether the request may proceed. When true the request
	// has been counted against the quota.
	Allowed bool
	// Remaining is the number of further requests that would be allowed
	// right now, after this one.
	Remaining int
	// RetryAfter is 0 when Allowed; otherwise the wait until the next
	// request for the same key can pass.
	RetryAfter time.Duration
	// ResetAfter is the time until the key's whole quota is available again.
	ResetAfter time.Duration
	// Reason is why the request was denied (RequestRate for a rate denial);
	// NoReason when Allowed.
	Reason Reason
	// Limit is the quota (burst) the decision was made against.
	Limit int
	// Window is the time to refill the whole quota: Limit divided by the
	// rate. It is the w= of the RateLimit-Policy header.
	Window time.Duration
}

// Err returns nil when d is Allowed, and otherwise a *RateLimitError with
// d's Reason and RetryAfter, which matches ErrRateLimited under errors.Is.
func (d Decision) Err() error {
	if d.Allowed {
		return nil
	}
	return &RateLimitError{Reason: d.Reason, RetryAfter: d.RetryAfter}
}
