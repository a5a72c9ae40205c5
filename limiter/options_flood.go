package limiter

import (
	"math"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// The per-connection request limits a Listener applies to the requests of
// an http.Server wired with Listener.Harden, unless WithStreamRate or
// WithResetRate say otherwise. A browser or an HTTP/2 proxy stays far below
// them; a rapid-reset client (CVE-2023-44487) opens and cancels thousands
// of streams a second on one connection and is cut within the burst.
const (
	DefaultStreamRate  = 1000 // requests (streams) per second per connection
	DefaultStreamBurst = 1000
	DefaultResetRate   = 50 // cancelled requests per second per connection
	DefaultResetBurst  = 100
)

// WithMinWriteRate closes a connection whose peer takes a response slower
// than bytesPerSec (SlowWrite): a response is written in chunks of one
// window's worth at that rate (at least 16 KiB), and each must be taken
// within window + chunk/bytesPerSec. It stops the slow-read attack (a client that
// requests a large response and reads it a byte at a time, holding the
// connection and its buffers for as long as it likes) without capping how
// long an honest download may last, which a whole-response WriteTimeout
// does. Time the server spends between writes does not count. Off by
// default; with it, Listener.Harden leaves http.Server.WriteTimeout unset
// (when zero) so that the rate alone governs downloads.
func WithMinWriteRate(bytesPerSec int, window time.Duration) ListenerOption {
	return func(c *listenerConfig) error {
		// The upper bound keeps a window's worth of bytes (the chunk of a
		// guarded ReadFrom) well inside int64.
		if bytesPerSec < 1 || window <= 0 || float64(bytesPerSec)*window.Seconds() > 1<<40 {
			return invalidf("WithMinWriteRate(%d, %v): both must be positive, and a window's worth at most 1 TiB", bytesPerSec, window)
		}
		c.minWriteRate, c.minWriteWindow = bytesPerSec, window
		return nil
	}
}

// WithStreamRate bounds how fast one HTTP/2 connection may start streams
// to r per second in bursts of burst; a connection over it is cut
// (StreamRate). It applies to the requests of an http.Server wired with
// Listener.Harden; HTTP/1 requests, one round trip each, are not counted
// (bound them per client with Keyed and Middleware). The default is
// DefaultStreamRate with DefaultStreamBurst; rate.Inf turns it off.
func WithStreamRate(r rate.Limit, burst int) ListenerOption {
	return func(c *listenerConfig) error {
		if _, err := newGCRA(r, burst); err != nil {
			return err
		}
		c.streamRate, c.streamBurst = r, burst
		return nil
	}
}

// WithResetRate bounds how fast one connection's requests may end cancelled
// by the client (an HTTP/2 RST_STREAM, or a client that hangs up mid
// request) to r per second in bursts of burst; a connection over it is cut
// (StreamResets). This is the rapid-reset defence: Go's HTTP/2 server
// already caps the handlers running at once, but each reset stream still
// costs the server a header decode and a handler start while it costs the
// client one frame. The default is DefaultResetRate with
// DefaultResetBurst; rate.Inf turns it off.
func WithResetRate(r rate.Limit, burst int) ListenerOption {
	return func(c *listenerConfig) error {
		if _, err := newGCRA(r, burst); err != nil {
			return err
		}
		c.resetRate, c.resetBurst = r, burst
		return nil
	}
}

// WithDeferAccept asks the kernel (Linux TCP_DEFER_ACCEPT, nginx's
// "deferred") to hand a connection to Accept only once the client has sent
// data, for up to d (whole seconds, at least one). Connections that
// connect and say nothing then never take a slot, a file descriptor or a
// goroutine; the kernel keeps them as half-open entries that SYN cookies
// and tcp_max_syn_backlog already bound. Only for protocols where the
// client speaks first (HTTP, TLS). NewListener returns an error when the
// inner listener has no socket to set it on, and ErrUnsupported (wrapped)
// outside Linux.
func WithDeferAccept(d time.Duration) ListenerOption {
	return func(c *listenerConfig) error {
		if d < time.Second || d > time.Duration(math.MaxInt32)*time.Second {
			return invalidf("WithDeferAccept(%v): must be at least 1s", d)
		}
		c.deferAccept = d
		return nil
	}
}

// WithAdaptiveTimeouts makes the first-byte timeout shrink as the listener
// fills, as Envoy's overload manager shrinks its timeouts: at or below
// half of WithMaxConns it is the configured value; from there it falls
// linearly to floor times that value at the cap. A connection's deadline is
// fixed when its first read starts, so under a flood new connections get
// less time to speak, while an unloaded server stays lenient with slow
// networks. floor must be in (0, 1]; 1 turns the adaptation off (the
// default).
func WithAdaptiveTimeouts(floor float64) ListenerOption {
	return func(c *listenerConfig) error {
		if !(floor > 0 && floor <= 1) {
			return invalidf("WithAdaptiveTimeouts(%v): floor must be in (0, 1]", floor)
		}
		c.pressureFloor = floor
		return nil
	}
}

// WithTarpit sets the tarpit (see the package documentation, "Connection
// floods from many addresses"): under pressure, connections refused or
// preempted from heavy sources are held open and unread, for hold at
// most, instead of being reset, so that a botnet's reconnect loop stops.
// maxHeld bounds how many are held at once; the tarpit never takes more
// than half of the file descriptors left beyond WithMaxConns and
// PreflightFDHeadroom, whatever maxHeld says. The default is on, with
// DefaultTarpitPerConn × WithMaxConns and DefaultTarpitHold.
func WithTarpit(maxHeld int, hold time.Duration) ListenerOption {
	return func(c *listenerConfig) error {
		if maxHeld < 1 || maxHeld > maxCapacity || hold <= 0 {
			return invalidf("WithTarpit(%d, %v): maxHeld must be in [1, %d] and hold positive", maxHeld, hold, maxCapacity)
		}
		c.tarpitMax, c.tarpitHold, c.tarpitOff = maxHeld, hold, false
		return nil
	}
}

// WithoutTarpit resets every connection the Listener refuses or cuts at
// once. Use it behind a load balancer or a NAT, where one source address
// carries many clients and a held connection may be a legitimate one.
func WithoutTarpit() ListenerOption {
	return func(c *listenerConfig) error {
		c.tarpitOff = true
		return nil
	}
}

// pressured scales d by the current occupancy (WithAdaptiveTimeouts).
func (l *Listener) pressured(d time.Duration) time.Duration {
	f := l.cfg.pressureFloor
	if f >= 1 || f == 0 {
		return d
	}
	occ := float64(l.active.Load()) / float64(l.cfg.maxConns)
	if occ <= 0.5 {
		return d
	}
	occ = min(occ, 1)
	scale := 1 - (1-f)*(occ-0.5)*2
	return time.Duration(float64(d) * scale)
}

// allowOn takes one token of g from the bucket whose TAT is tat; a nil g
// always allows.
func allowOn(g *gcra, tat *atomic.Int64) bool {
	if g == nil {
		return true
	}
	now := monotonicNow()
	for {
		old := tat.Load()
		base := old
		if base == 0 {
			// Never used: a full bucket. (The monotonic clock may read
			// below zero, as it does inside a synctest bubble.)
			base = math.MinInt64 / 4
		}
		newTat, ok := g.admit(base, now)
		if !ok {
			return false
		}
		if tat.CompareAndSwap(old, newTat) {
			return true
		}
	}
}
