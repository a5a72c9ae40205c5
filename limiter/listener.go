package limiter

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// Listener is a net.Listener that admits connections only within its
// limits: a global cap on open connections, a global accept rate, and per
// source prefix a cap and an accept rate. It replaces a net.Listener with a
// one-line change (http.Server.Serve(l) works as is).
//
// Accept never blocks on a per-IP limit: a connection over one is closed at
// once with a reset and counted, and Accept moves on to the next one, so an
// address at its limit never delays another. At the global cap and rate the
// OverflowPolicy decides between waiting (Backpressure) and closing (Shed).
//
// The connections it returns release their slot exactly once, on the first
// Close, and expose the accepted connection through NetConn. Listener is
// safe for concurrent use; construct it with NewListener (the zero value is
// not usable).
type Listener struct {
	inner  net.Listener
	cfg    listenerConfig
	sem    chan struct{} // one token per open connection
	rate   *rate.Limiter // nil: no global accept rate
	ipRate *gcra         // nil: no per-prefix accept rate
	ips    *ipTable      // nil: no per-prefix limit
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once

	active   atomic.Int64
	accepted atomic.Uint64
	rejected [numReasons]atomic.Uint64
}

// NewListener wraps inner. Without options it caps open connections at
// DefaultMaxConns with Backpressure and closes connections that send nothing
// within DefaultFirstByteTimeout. Per-IP caps and rates are off until asked
// for: behind a load balancer every connection shares one address, so set
// WithMaxConnsPerIP when clients connect directly. Invalid options return an
// error; inner is then left open.
func NewListener(inner net.Listener, opts ...ListenerOption) (*Listener, error) {
	if inner == nil {
		return nil, invalidf("NewListener: nil inner listener")
	}
	cfg := listenerConfig{maxConns: DefaultMaxConns, v6Bits: 64, firstByte: DefaultFirstByteTimeout}
	for _, opt := range opts {
		if opt == nil {
			return nil, invalidf("nil ListenerOption")
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	cfg.onReject = cfg.logRejects()
	l := &Listener{inner: inner, cfg: cfg, sem: make(chan struct{}, cfg.maxConns)}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	if cfg.acceptRate != 0 {
		l.rate = rate.NewLimiter(cfg.acceptRate, cfg.acceptBurst)
	}
	if cfg.ipRate != 0 {
		g, _ := newGCRA(cfg.ipRate, cfg.ipBurst)
		if g.interval != 0 {
			l.ipRate = &g
		}
	}
	if cfg.maxConnsPerIP > 0 || l.ipRate != nil {
		n := cfg.maxTrackedIPs
		if n == 0 {
			n = min(4*cfg.maxConns, maxCapacity)
		}
		l.ips = newIPTable(n, cfg.v6Bits)
	}
	return l, nil
}

// Accept waits for and returns the next connection within the limits. It
// returns ErrClosed (which wraps net.ErrClosed) once Close has been called,
// including when Accept is parked waiting for a global slot or the accept
// rate; other errors of the inner Accept are returned unchanged.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		if l.ctx.Err() != nil {
			return nil, ErrClosed
		}
		backpressure := l.cfg.overflow == Backpressure
		if backpressure {
			// Wait before the inner Accept: the kernel backlog holds the
			// queue, and nothing is accepted that cannot be served.
			select {
			case l.sem <- struct{}{}:
			case <-l.ctx.Done():
				return nil, ErrClosed
			}
			if l.rate != nil {
				if err := l.rate.Wait(l.ctx); err != nil {
					<-l.sem
					return nil, ErrClosed
				}
			}
		}
		c, err := l.inner.Accept()
		if err != nil {
			if backpressure {
				<-l.sem
			}
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil, ErrClosed
			}
			return nil, err
		}
		if !backpressure {
			select {
			case l.sem <- struct{}{}:
			default:
				l.reject(c, remoteAddr(c), GlobalConns)
				continue
			}
			if l.rate != nil && !l.rate.Allow() {
				<-l.sem
				l.reject(c, remoteAddr(c), AcceptRate)
				continue
			}
		}
		var a netip.Addr
		if l.ips != nil || l.cfg.onReject != nil {
			a = remoteAddr(c)
		}
		slot := -1
		if l.ips != nil {
			var why Reason
			if slot, why = l.ips.admit(a, monotonicNow(), l.cfg.maxConnsPerIP, l.ipRate); why != NoReason {
				<-l.sem
				l.reject(c, a, why)
				continue
			}
		}
		l.active.Add(1)
		l.accepted.Add(1)
		return l.wrap(c, a, slot), nil
	}
}

// reject closes c at once with a reset: a graceful close would leave the
// socket in FIN_WAIT/TIME_WAIT, costing the server state per attack
// connection.
func (l *Listener) reject(c net.Conn, a netip.Addr, why Reason) {
	l.rejected[why].Add(1)
	if l.cfg.onReject != nil {
		l.cfg.onReject(a, why)
	}
	abort(c)
}

func abort(c net.Conn) {
	if tc, ok := c.(interface{ SetLinger(int) error }); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func remoteAddr(c net.Conn) netip.Addr {
	switch ra := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		return ra.AddrPort().Addr().Unmap().WithZone("")
	case *net.UDPAddr:
		return ra.AddrPort().Addr().Unmap().WithZone("")
	case nil:
		return netip.Addr{}
	default:
		return parseHop(ra.String())
	}
}

// Close closes the inner listener and makes every pending and future Accept
// return ErrClosed. Connections already accepted stay open. Close returns
// the inner listener's error the first time and ErrClosed afterwards.
func (l *Listener) Close() error {
	err := ErrClosed
	l.once.Do(func() {
		l.cancel()
		err = l.inner.Close()
	})
	return err
}

// Addr returns the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// ListenerStats is a snapshot of a Listener's counters. Every connection the
// inner listener returned is either Accepted or in exactly one Rejected
// bucket; Active is Accepted minus those closed since.
type ListenerStats struct {
	Active   int64  // connections accepted and not yet closed
	Accepted uint64 // connections handed to the caller
	// Rejected counts connections closed by the Listener, indexed by Reason:
	// st.Rejected[limiter.IPConns]. SlowClient counts accepted connections
	// closed later for reading too slowly.
	Rejected       [numReasons]uint64
	TrackedIPs     int    // source prefixes in the per-IP table
	LossyEvictions uint64 // prefixes forgotten while their accept rate was not yet refilled
}

// Stats returns the Listener's counters.
func (l *Listener) Stats() ListenerStats {
	st := ListenerStats{Active: l.active.Load(), Accepted: l.accepted.Load()}
	for i := range l.rejected {
		st.Rejected[i] = l.rejected[i].Load()
	}
	if l.ips != nil {
		st.TrackedIPs, st.LossyEvictions = l.ips.stats()
	}
	return st
}
