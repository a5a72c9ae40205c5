package limiter

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
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
// OverflowPolicy decides between waiting (Backpressure), closing the
// newcomer (Shed) and closing a held connection that is not serving a
// request in its favour (Preempt, the policy to use against floods from
// many addresses; see the package documentation). Wire an http.Server with
// Harden so that the Listener knows which connections are serving.
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

	mu      sync.Mutex // guards lg and the ledger fields of every conn
	lg      *ledger    // nil unless the policy is Preempt
	streams *gcra      // nil: no per-connection request rate
	resets  *gcra      // nil: no per-connection reset rate
	tp      *tarpit    // nil: WithoutTarpit

	active   atomic.Int64
	incoming atomic.Uint64
	accepted atomic.Uint64
	closed   atomic.Uint64
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
	cfg := listenerConfig{maxConns: DefaultMaxConns, v6Bits: 64, firstByte: DefaultFirstByteTimeout,
		streamRate: DefaultStreamRate, streamBurst: DefaultStreamBurst,
		resetRate: DefaultResetRate, resetBurst: DefaultResetBurst, pressureFloor: 1}
	for _, opt := range opts {
		if opt == nil {
			return nil, invalidf("nil ListenerOption")
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.deferAccept > 0 {
		if err := setDeferAccept(inner, cfg.deferAccept); err != nil {
			return nil, err
		}
	}
	l := &Listener{inner: inner, cfg: cfg, sem: make(chan struct{}, cfg.maxConns)}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.streams = optionalGCRA(cfg.streamRate, cfg.streamBurst)
	l.resets = optionalGCRA(cfg.resetRate, cfg.resetBurst)
	if cfg.acceptRate != 0 {
		l.rate = rate.NewLimiter(cfg.acceptRate, cfg.acceptBurst)
	}
	if cfg.ipRate != 0 {
		g, _ := newGCRA(cfg.ipRate, cfg.ipBurst)
		if g.interval != 0 {
			l.ipRate = &g
		}
	}
	if cfg.maxConnsPerIP > 0 || l.ipRate != nil || cfg.overflow == Preempt {
		n := cfg.maxTrackedIPs
		if n == 0 {
			n = min(4*cfg.maxConns, maxCapacity)
		}
		l.ips = newIPTable(n, cfg.v6Bits)
	}
	if cfg.overflow == Preempt {
		l.lg = newLedger(len(l.ips.slots), cfg.maxConns)
	}
	if !cfg.tarpitOff {
		n, hold := cfg.tarpitMax, cfg.tarpitHold
		if n == 0 {
			n, hold = min(DefaultTarpitPerConn*cfg.maxConns, maxCapacity), DefaultTarpitHold
		}
		l.tp = newTarpit(n, hold, cfg.maxConns)
	}
	return l, nil
}

// optionalGCRA returns nil for rate.Inf (no limit).
func optionalGCRA(r rate.Limit, burst int) *gcra {
	g, err := newGCRA(r, burst)
	if err != nil || g.interval == 0 {
		return nil
	}
	return &g
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
			// Out of file descriptors: the tarpit gives back half of
			// what it holds, and Accept tries again at once rather than
			// leave http.Server to back off while clients queue.
			if l.tp != nil && fdExhausted(err) && l.tp.release(max(1, l.tp.held()/2)) > 0 {
				continue
			}
			return nil, err
		}
		l.incoming.Add(1)
		if l.cfg.overflow == Preempt {
			if w := l.admitPreempt(c); w != nil {
				return w, nil
			}
			continue
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

// admitPreempt admits c under policy Preempt, or rejects it and returns
// nil. The per-source limits come first, so a source over its own cap or
// rate never costs another source a connection; then a global slot, taken
// from a preemptable connection when none is free.
func (l *Listener) admitPreempt(c net.Conn) *conn {
	a := remoteAddr(c)
	if l.rate != nil && !l.rate.Allow() {
		l.reject(c, a, AcceptRate)
		return nil
	}
	slot, why := l.ips.admit(a, monotonicNow(), l.cfg.maxConnsPerIP, l.ipRate)
	if why != NoReason {
		l.reject(c, a, why)
		return nil
	}
	if why := l.takeSlot(slot); why != NoReason {
		l.ips.release(slot)
		l.reject(c, a, why)
		return nil
	}
	w := l.wrap(c, a, slot)
	l.active.Add(1)
	l.accepted.Add(1)
	now := monotonicNow()
	l.mu.Lock()
	l.lg.add(w, now)
	l.mu.Unlock()
	return w
}

// takeSlot takes a global slot for a newcomer from slot, preempting a held
// connection if none is free. It returns why it could not: GlobalConns
// when every held connection is serving, FairShare when preempting would
// not make the shares fairer and no candidate is old enough (preempt.go).
func (l *Listener) takeSlot(slot int) Reason {
	for range 4 {
		select {
		case l.sem <- struct{}{}:
			return NoReason
		default:
		}
		now := monotonicNow()
		l.mu.Lock()
		empty := l.lg.n == 0
		v := l.lg.victim(slot, now)
		held := 0
		if v != nil {
			if v.tier == tierFresh {
				t := l.lg.tier[tierFresh]
				held = int(t.src[t.source(v.slot)].n)
			}
			// Chosen and marked under mu: a ConnState change to active
			// that comes later finds it gone and cannot revive it, and
			// one that came earlier took it out of the ledger, so it was
			// not chosen. That is why a connection serving a request is
			// never preempted.
			l.lg.remove(v)
			v.state.Store(uint32(stGone))
		}
		l.mu.Unlock()
		if v == nil {
			if empty {
				return GlobalConns
			}
			return FairShare
		}
		// Its slot comes back through release; another Accept running
		// concurrently may take it first, or the victim may have been
		// closed by its owner a moment before and its release not yet
		// have returned the slot: hence a few rounds.
		v.end(Preempted, held)
	}
	select {
	case l.sem <- struct{}{}:
		return NoReason
	default:
		return GlobalConns
	}
}

// reject closes c at once with a reset, or parks it in the tarpit (see
// tarpit.go): a graceful close would leave the socket in
// FIN_WAIT/TIME_WAIT, costing the server state per attack connection.
func (l *Listener) reject(c net.Conn, a netip.Addr, why Reason) {
	park := l.parkable(why, 0)
	l.rejected[why].Add(1)
	if !park || !l.tp.park(c) {
		abort(c)
	}
	// The hook hears of the refusal once it is carried out: Stats then
	// already counts a parked connection in Tarpitted.
	if l.cfg.onReject != nil {
		l.cfg.onReject(a, why)
	}
}

// parkable reports whether a connection ended for why, from a source that
// holds srcHeld connections, goes to the tarpit rather than being reset:
// when why marks its source as heavy, and for a preemption or a slow
// client only under pressure (tarpit.go).
func (l *Listener) parkable(why Reason, srcHeld int) bool {
	if l.tp == nil {
		return false
	}
	switch why {
	case FairShare, IPConns, IPAcceptRate:
		return true
	case Preempted, SlowClient:
		return srcHeld >= 2 && 2*l.active.Load() >= int64(l.cfg.maxConns)
	}
	return false
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
// return ErrClosed. Connections already accepted stay open; those held in
// the tarpit are reset. Close returns
// the inner listener's error the first time and ErrClosed afterwards.
func (l *Listener) Close() error {
	err := ErrClosed
	l.once.Do(func() {
		l.cancel()
		err = l.inner.Close()
		if l.tp != nil {
			l.tp.close()
		}
	})
	return err
}

// Addr returns the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// ListenerStats is a snapshot of a Listener's counters. Every connection
// the inner listener returned (Incoming) ends in exactly one place:
//
//	Incoming = Active + Closed + Rejected.Total()
//
// Rejected counts, by Reason, the connections the Listener closed: at
// Accept (GlobalConns, IPConns, AcceptRate, IPAcceptRate, TableFull) or
// later (SlowClient, SlowWrite, Preempted, StreamRate, StreamResets).
// Accepted counts those handed to the caller: Accepted = Active + Closed +
// the later rejections.
type ListenerStats struct {
	Incoming uint64 // connections the inner listener returned
	Active   int64  // connections accepted and not yet closed
	Accepted uint64 // connections handed to the caller
	Closed   uint64 // accepted connections closed by the application
	// Rejected counts connections closed by the Listener, by Reason:
	// st.Rejected[limiter.IPConns], or st.Rejected.Map() for labels.
	Rejected       ReasonCounts
	Preemptable    int    // Preempt: held connections not serving a request (new or idle keep-alive)
	Tarpitted      int    // refused connections held open and unread instead of reset (WithTarpit); already counted in Rejected
	TrackedIPs     int    // source prefixes in the per-IP table
	LossyEvictions uint64 // prefixes forgotten while their accept rate was not yet refilled
}

// ReasonCounts counts events by Reason; index it with a Reason. Map and
// MarshalJSON label each count with its Reason's String.
type ReasonCounts [numReasons]uint64

// Total returns the sum of all counts.
func (rc ReasonCounts) Total() uint64 {
	var n uint64
	for _, v := range rc {
		n += v
	}
	return n
}

// Map returns the non-zero counts keyed by Reason.String(), for metrics.
func (rc ReasonCounts) Map() map[string]uint64 {
	m := make(map[string]uint64)
	for r, v := range rc {
		if v != 0 {
			m[Reason(r).String()] = v
		}
	}
	return m
}

// MarshalJSON encodes the counts as an object keyed by Reason.String(),
// every reason included.
func (rc ReasonCounts) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for r, v := range rc {
		if r > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, Reason(r).String())
		b = append(b, ':')
		b = strconv.AppendUint(b, v, 10)
	}
	return append(b, '}'), nil
}

// Stats returns the Listener's counters.
func (l *Listener) Stats() ListenerStats {
	st := ListenerStats{Active: l.active.Load(), Accepted: l.accepted.Load(), Closed: l.closed.Load()}
	for i := range l.rejected {
		st.Rejected[i] = l.rejected[i].Load()
	}
	// Incoming is counted before a connection reaches its bucket, so the
	// identity holds exactly once no Accept is in flight.
	st.Incoming = l.incoming.Load()
	if l.ips != nil {
		st.TrackedIPs, st.LossyEvictions = l.ips.stats()
	}
	if l.lg != nil {
		l.mu.Lock()
		st.Preemptable = l.lg.n
		l.mu.Unlock()
	}
	if l.tp != nil {
		st.Tarpitted = l.tp.held()
	}
	return st
}
