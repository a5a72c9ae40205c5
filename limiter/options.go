package limiter

import (
	"math"
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxConns is the global connection cap of a Listener unless
// WithMaxConns says otherwise.
const DefaultMaxConns = 4096

// DefaultFirstByteTimeout is how long a Listener lets a new connection stay
// silent unless WithFirstByteTimeout or WithoutFirstByteTimeout says
// otherwise. Without it, one address can fill every global slot with
// connections that never send a byte.
const DefaultFirstByteTimeout = 30 * time.Second

// OverflowPolicy says what a Listener does when its global connection cap or
// global accept rate is reached. Per-IP limits always shed: one address over
// its limit never delays another.
type OverflowPolicy uint8

const (
	// Backpressure stops calling the inner Accept until a slot frees (or the
	// accept rate allows another connection). New connections wait in the
	// kernel's accept backlog (somaxconn); once it is full the kernel drops
	// SYNs or answers with SYN cookies. Clients see latency, not errors.
	// This is the default.
	Backpressure OverflowPolicy = iota
	// Shed keeps accepting and closes each connection over the limit at once
	// with a reset (linger 0), counted in Stats. Clients see an immediate
	// error instead of a queue.
	Shed
	// Preempt keeps accepting and, at the global cap, closes a held
	// connection that is not serving a request (counted as Preempted) to
	// make room, chosen from the source holding the most such connections.
	// It sheds the newcomer when every held connection is serving
	// (GlobalConns), or when its source already holds about as many such
	// connections as any and none has waited a second (FairShare). See the package documentation for why this wins a
	// flood that Shed and Backpressure lose. At the global accept rate it
	// sheds, as Shed does.
	Preempt
)

// ListenerOption configures NewListener.
type ListenerOption func(*listenerConfig) error

type listenerConfig struct {
	maxConns      int
	maxConnsPerIP int
	v6Bits        int
	acceptRate    rate.Limit
	acceptBurst   int
	ipRate        rate.Limit
	ipBurst       int
	overflow      OverflowPolicy
	firstByte     time.Duration
	minReadRate   int
	minReadWindow time.Duration
	maxTrackedIPs int
	onReject      func(remote netip.Addr, reason Reason)

	// See options_flood.go.
	minWriteRate   int
	minWriteWindow time.Duration
	streamRate     rate.Limit
	streamBurst    int
	resetRate      rate.Limit
	resetBurst     int
	deferAccept    time.Duration
	pressureFloor  float64
	tarpitMax      int // 0: DefaultTarpitPerConn × maxConns
	tarpitHold     time.Duration
	tarpitOff      bool
}

// WithMaxConns caps the connections open at once (default DefaultMaxConns,
// at most 2²⁸). What happens at the cap is WithOverflow's choice.
func WithMaxConns(n int) ListenerOption {
	return func(c *listenerConfig) error {
		if n < 1 || n > maxCapacity {
			return invalidf("WithMaxConns(%d): must be in [1, %d]", n, maxCapacity)
		}
		c.maxConns = n
		return nil
	}
}

// WithMaxConnsPerIP caps the connections open at once from one source
// prefix (an IPv4 address or an IPv6 /64, see WithIPv6Prefix). A connection
// over it is closed at once with a reset and counted as IPConns. Off by
// default, since behind a load balancer every connection shares one address.
func WithMaxConnsPerIP(n int) ListenerOption {
	return func(c *listenerConfig) error {
		if n < 1 {
			return invalidf("WithMaxConnsPerIP(%d): must be at least 1", n)
		}
		c.maxConnsPerIP = n
		return nil
	}
}

// WithIPv6Prefix sets how many leading bits of an IPv6 source address form
// one per-IP identity (default 64: a host may use any address of its /64).
// NewKeyed and the middlewares accept it too; with Middleware, the coarser
// of the Keyed's and the middleware's prefix applies.
func WithIPv6Prefix(bits int) ListenerOption {
	return func(c *listenerConfig) error {
		if bits < 1 || bits > 128 {
			return invalidf("WithIPv6Prefix(%d): must be in [1, 128]", bits)
		}
		c.v6Bits = bits
		return nil
	}
}

// WithAcceptRate limits new connections to r per second with bursts of
// burst, over all sources. At the limit the Listener follows WithOverflow:
// Backpressure waits before the next inner Accept, Shed closes the
// connection (AcceptRate).
func WithAcceptRate(r rate.Limit, burst int) ListenerOption {
	return func(c *listenerConfig) error {
		if _, err := newGCRA(r, burst); err != nil {
			return err
		}
		c.acceptRate, c.acceptBurst = r, burst
		return nil
	}
}

// WithAcceptRatePerIP limits new connections from one source prefix to r
// per second with bursts of burst. A connection over it is closed at once
// with a reset and counted as IPAcceptRate.
func WithAcceptRatePerIP(r rate.Limit, burst int) ListenerOption {
	return func(c *listenerConfig) error {
		if _, err := newGCRA(r, burst); err != nil {
			return err
		}
		c.ipRate, c.ipBurst = r, burst
		return nil
	}
}

// WithOverflow sets the policy at the global connection cap and global
// accept rate (default Backpressure).
func WithOverflow(p OverflowPolicy) ListenerOption {
	return func(c *listenerConfig) error {
		if p != Backpressure && p != Shed && p != Preempt {
			return invalidf("WithOverflow(%d): unknown policy", p)
		}
		c.overflow = p
		return nil
	}
}

// WithFirstByteTimeout closes a connection that sends nothing within d of
// being accepted (SlowClient); the default is DefaultFirstByteTimeout. It is
// enforced with read deadlines, without a goroutine per connection, and only
// while the application is reading. A protocol whose clients may rightly
// stay silent longer (the server speaks first and waits on a person, or
// pushes to a client that never writes) uses WithoutFirstByteTimeout.
func WithFirstByteTimeout(d time.Duration) ListenerOption {
	return func(c *listenerConfig) error {
		if d <= 0 {
			return invalidf("WithFirstByteTimeout(%v): must be positive (WithoutFirstByteTimeout turns it off)", d)
		}
		c.firstByte = d
		return nil
	}
}

// WithoutFirstByteTimeout turns the first-byte timeout off: a connection
// may stay silent for as long as the application waits on it. Only the
// global and per-IP caps then bound how many silent connections one client
// can hold.
func WithoutFirstByteTimeout() ListenerOption {
	return func(c *listenerConfig) error {
		c.firstByte = 0
		return nil
	}
}

// WithMinReadRate closes a connection that, while the application waits to
// read from it, delivers fewer than bytesPerSec×window bytes in a window
// (SlowClient): a client trickling one byte at a time. It is enforced with
// read deadlines.
//
// For an http.Server wired with Listener.Harden the guard knows the HTTP
// state of each connection and judges only while a request head is being
// read: from the first byte of a new connection until its first request
// is complete, and on a keep-alive HTTP/1 connection from the first byte of
// each later request. Idle keep-alives are left to IdleTimeout, handlers
// and streamed responses are never judged, request bodies are ReadTimeout's
// and slow downloads WithMinWriteRate's. A TLS client that completes its
// handshake and then sends no request for a window (a browser's
// preconnect) is cut too; browsers open a new connection when they need
// one.
//
// Without that wiring (other protocols, or an http.Server not wired) the
// guard judges every window in which a Read is pending. net/http keeps a
// one-byte Read pending while a handler runs and while a keep-alive
// connection idles, so an unwired http.Server sees idle keep-alives and
// long responses reset as SlowClient: wire it, or choose a window longer
// than the slowest response and the idle timeout.
func WithMinReadRate(bytesPerSec int, window time.Duration) ListenerOption {
	return func(c *listenerConfig) error {
		// The upper bound keeps bytesPerSec×window in nanoseconds, which
		// the guard computes in int64, from overflowing.
		if bytesPerSec < 1 || window <= 0 || float64(bytesPerSec)*window.Seconds() < 1 ||
			float64(bytesPerSec)*float64(window) > math.MaxInt64/2 {
			return invalidf("WithMinReadRate(%d, %v): both must be positive and ask for at least one byte per window", bytesPerSec, window)
		}
		c.minReadRate, c.minReadWindow = bytesPerSec, window
		return nil
	}
}

// WithMaxTrackedIPs sets how many source prefixes the per-IP limits track at
// once (default 4×WithMaxConns, at most 2²⁸, rounded up to a power of two,
// 24 bytes each). A prefix with open connections is never forgotten; when
// no slot can be freed for a new prefix, its connection is closed as
// TableFull rather than let it escape the per-IP limits.
func WithMaxTrackedIPs(n int) ListenerOption {
	return func(c *listenerConfig) error {
		if n < 1 || n > maxCapacity {
			return invalidf("WithMaxTrackedIPs(%d): must be in [1, %d]", n, maxCapacity)
		}
		c.maxTrackedIPs = n
		return nil
	}
}

// WithOnRejectConn registers f, called from Accept for every connection the
// Listener closes, and from Read for a SlowClient, with the source prefix
// and the reason. It must be fast and must not block: it runs on the accept
// path.
func WithOnRejectConn(f func(remote netip.Addr, reason Reason)) ListenerOption {
	return func(c *listenerConfig) error {
		if f == nil {
			return invalidf("WithOnRejectConn(nil)")
		}
		c.onReject = f
		return nil
	}
}
