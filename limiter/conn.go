package limiter

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// conn is the net.Conn a Listener returns. It gives its slots back exactly
// once, on the first Close or when the Listener cuts it, and enforces the
// slow-client limits with deadlines: no goroutine or timer per connection.
type conn struct {
	net.Conn
	l        *Listener
	addr     netip.Addr
	slot     int // ipTable slot, -1 if none
	released atomic.Bool
	// parked is set once the tarpit holds the inner connection: the
	// wrapper then never touches it again (tarpit.go).
	parked atomic.Bool
	g      *guard // nil unless a read guard or preemption needs to see reads
	w      *wguard

	// http is set once http.Server reported the connection through
	// Listener.ConnState: from then on its state, not its first byte,
	// decides whether it may be preempted and when the read guard applies.
	http atomic.Bool
	// h2 is set by GuardRequests on the connection's first HTTP/2 request:
	// frames that arrive between requests (PING, SETTINGS, WINDOW_UPDATE)
	// are not a request being read.
	h2 atomic.Bool
	// state is a connState; written under l.mu, read by the read guard.
	state atomic.Uint32

	// Ledger links, guarded by l.mu (see preempt.go).
	inLedger     bool
	lprev, lnext *conn
	since        int64 // monotonicNow when it entered the ledger
	tier         uint8 // tierFresh or tierIdle while inLedger

	// Per-connection request and reset rates (HTTP, see streamguard.go):
	// GCRA theoretical arrival times, in monotonicNow nanoseconds.
	streamTAT, resetTAT atomic.Int64
}

// connState is where a connection is in its life, as far as preemption
// and the read guard care.
type connState uint32

const (
	// stNew: accepted, no complete request yet (HTTP), or no byte yet
	// (other protocols). Preemptable, in the fresh tier (preempt.go).
	stNew connState = iota
	// stIdle: an HTTP keep-alive connection between requests. Preemptable,
	// in the idle tier: only once the fresh tier is empty.
	stIdle
	// stActive: serving a request, or a non-HTTP connection that has
	// spoken, or hijacked. Never preempted.
	stActive
	// stGone: released.
	stGone
)

// guard is the slow-client state of one connection.
type guard struct {
	mu      sync.Mutex
	user    time.Time // the read deadline the application asked for
	applied time.Time // the read deadline last set on the inner conn
	accept  time.Time
	gotByte bool
	reqByte bool      // HTTP: a byte of the next request arrived since idle
	winFrom time.Time // start of the current min-rate window
	winRead int       // bytes read in it
}

func (l *Listener) wrap(c net.Conn, a netip.Addr, slot int) *conn {
	w := &conn{Conn: c, l: l, addr: a, slot: slot}
	if l.cfg.firstByte > 0 || l.cfg.minReadRate > 0 || l.lg != nil {
		// The deadline is armed by the first Read, not here: a deadline
		// only matters to a read, and arming a runtime timer per accept
		// costs microseconds.
		w.g = &guard{accept: time.Now()}
	}
	if l.cfg.minWriteRate > 0 {
		w.w = &wguard{}
	}
	return w
}

// NetConn returns the accepted connection (a *net.TCPConn for TCP), for
// its socket options. Close and set deadlines through the wrapper: closing
// the inner conn directly skips the slot release, and a deadline set on it
// directly is unknown to the slow-client guards.
func (c *conn) NetConn() net.Conn { return c.Conn }

// Close closes the connection and releases its slots; only the first call
// releases, so a double Close cannot free a slot it does not hold.
func (c *conn) Close() error {
	c.release(NoReason)
	if c.parked.Load() {
		return nil
	}
	return c.Conn.Close()
}

// release gives the connection's slots back and counts how it ended: by
// the application (NoReason, Closed) or cut by the Listener for why. The
// first call wins, so every connection lands in exactly one bucket.
func (c *conn) release(why Reason) bool {
	if !c.released.CompareAndSwap(false, true) {
		return false
	}
	l := c.l
	if l.lg != nil {
		l.mu.Lock()
		l.lg.remove(c)
		c.state.Store(uint32(stGone))
		l.mu.Unlock()
	}
	if c.slot >= 0 {
		l.ips.release(c.slot)
	}
	if why == NoReason {
		l.closed.Add(1)
	} else {
		l.rejected[why].Add(1)
	}
	l.active.Add(-1)
	<-l.sem
	if why != NoReason && l.cfg.onReject != nil {
		l.cfg.onReject(c.addr, why)
	}
	return true
}

// cut closes the connection with a reset, counted as why, unless it was
// already released; under pressure it may park it instead (end).
func (c *conn) cut(why Reason) {
	held := 0
	if why == SlowClient && c.slot >= 0 {
		held = c.l.ips.held(c.slot)
	}
	c.end(why, held)
}

// end is cut for a connection whose source holds srcHeld connections:
// reset, or parked in the tarpit when Listener.parkable says so. A parked
// connection's blocked reader (http.Server's) is woken by a past read
// deadline rather than by closing the socket, and the wrapper reports it
// closed from then on.
func (c *conn) end(why Reason, srcHeld int) {
	// Judged before release, which gives back this connection's slot.
	park := c.l.parkable(why, srcHeld)
	if !c.release(why) {
		return
	}
	if park && c.l.tp.park(c.Conn) {
		// Under the guard's lock, which Read holds while it arms its
		// own deadline: either Read armed it before (and this past
		// deadline replaces it) or it sees parked and does not read.
		if c.g != nil {
			c.g.mu.Lock()
			defer c.g.mu.Unlock()
		}
		c.parked.Store(true)
		_ = c.Conn.SetReadDeadline(aLongTimeAgo)
		return
	}
	abort(c.Conn)
}

// aLongTimeAgo is a read deadline in the past: it wakes a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

// activate marks a connection as serving (never preempted).
func (c *conn) setState(s connState) {
	l := c.l
	if l.lg == nil {
		c.state.Store(uint32(s))
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if connState(c.state.Load()) == stGone {
		return
	}
	c.state.Store(uint32(s))
	if s == stActive {
		l.lg.remove(c)
		return
	}
	// Re-entering New or Idle makes it the newest of its source.
	l.lg.remove(c)
	l.lg.add(c, monotonicNow())
}

// ReadFrom keeps the inner connection's zero-copy path (sendfile, splice)
// available to io.Copy and net/http through the wrapper.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if c.w != nil {
		return c.guardedReadFrom(r)
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite half-closes the connection when the inner one supports it, as
// *net.TCPConn does; net/http uses it for a graceful close.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return &net.OpError{Op: "close", Net: c.LocalAddr().Network(), Err: errors.ErrUnsupported}
}

// SetDeadline sets the write deadline and, combined with the slow-client
// deadline, the read deadline.
func (c *conn) SetDeadline(t time.Time) error {
	if err := c.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// SetReadDeadline records the application's deadline; the inner deadline is
// the earlier of it and the slow-client deadline.
func (c *conn) SetReadDeadline(t time.Time) error {
	if c.g == nil {
		return c.Conn.SetReadDeadline(t)
	}
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	c.g.user = t
	return c.apply(c.deadline(time.Now()))
}

// apply sets the inner read deadline to d unless it is already d: each
// change re-arms a runtime timer. Called with mu held.
func (c *conn) apply(d time.Time) error {
	if d.Equal(c.g.applied) {
		return nil
	}
	c.g.applied = d
	return c.Conn.SetReadDeadline(d)
}

// deadline returns the inner read deadline to use for a read starting at
// now. Called with mu held (or before the conn is shared).
func (c *conn) deadline(now time.Time) time.Time {
	var own time.Time
	cfg := &c.l.cfg
	switch {
	case !c.g.gotByte && cfg.firstByte > 0:
		own = c.g.accept.Add(c.l.pressured(cfg.firstByte))
	case cfg.minReadRate > 0 && c.readingRequest():
		// A window that ended between two reads starts afresh: the time
		// the application spent not reading is not the client's fault.
		if c.g.winFrom.IsZero() || now.Sub(c.g.winFrom) >= cfg.minReadWindow {
			c.g.winFrom, c.g.winRead = now, 0
		}
		own = c.g.winFrom.Add(cfg.minReadWindow)
	}
	if own.IsZero() || (!c.g.user.IsZero() && c.g.user.Before(own)) {
		return c.g.user
	}
	return own
}

// readingRequest reports whether the minimum read rate applies now. For a
// connection http.Server reports through ConnState, only while a request
// head is being read: a new connection, or an idle HTTP/1 one whose next
// request has begun (an idle HTTP/2 connection is IdleTimeout's and the
// HTTP/2 ping timeouts' business). An idle keep-alive is IdleTimeout's business, and while a
// handler runs net/http keeps a one-byte read pending that the client owes
// nothing to (a request body is ReadTimeout's). Other protocols are judged
// whenever a read is pending. Called with g.mu held.
func (c *conn) readingRequest() bool {
	if !c.http.Load() {
		return true
	}
	switch connState(c.state.Load()) {
	case stNew:
		return true
	case stIdle:
		return c.g.reqByte && !c.h2.Load()
	}
	return false
}

func (c *conn) need() int {
	return int(int64(c.l.cfg.minReadRate) * int64(c.l.cfg.minReadWindow) / int64(time.Second))
}

// errSlowClient is returned by Read once a connection was closed as a
// SlowClient; it wraps os.ErrDeadlineExceeded.
var errSlowClient = fmt.Errorf("limiter: connection closed: client too slow: %w", os.ErrDeadlineExceeded)

// Read reads from the inner connection under the slow-client deadline. When
// that deadline (not the application's) expires with too few bytes read,
// the connection is counted as SlowClient, reset and closed.
func (c *conn) Read(b []byte) (int, error) {
	if c.g == nil {
		return c.Conn.Read(b)
	}
	for {
		c.g.mu.Lock()
		if c.parked.Load() {
			c.g.mu.Unlock()
			return 0, net.ErrClosed
		}
		err := c.apply(c.deadline(time.Now()))
		c.g.mu.Unlock()
		if err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(b)
		if err != nil && c.parked.Load() {
			return n, net.ErrClosed
		}
		c.g.mu.Lock()
		if n > 0 {
			if !c.g.gotByte && !c.http.Load() && c.l.lg != nil {
				// A connection of another protocol that has spoken is
				// in use: it leaves the ledger for good.
				c.setState(stActive)
			}
			c.g.gotByte = true
			c.g.reqByte = true
			c.g.winRead += n
		}
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			c.g.mu.Unlock()
			return n, err
		}
		now := time.Now()
		if !c.g.user.IsZero() && !now.Before(c.g.user) {
			// The application's own deadline: not ours to judge.
			c.g.mu.Unlock()
			return n, err
		}
		slow := !c.g.gotByte || c.l.cfg.minReadRate == 0 || c.g.winRead < c.need()
		c.g.mu.Unlock()
		if slow {
			c.cut(SlowClient)
			return n, errSlowClient
		}
		if n > 0 {
			return n, nil
		}
		// The window ended with its quota met while the read waited: open
		// a new window and keep waiting.
	}
}
