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

// conn is the net.Conn a Listener returns. It gives its slots back on the
// first Close and enforces the slow-client limits with read deadlines:
// no goroutine or timer per connection.
type conn struct {
	net.Conn
	l        *Listener
	addr     netip.Addr
	slot     int // ipTable slot, -1 if none
	released atomic.Bool
	g        *guard // nil unless a first-byte timeout or minimum read rate is set
}

// guard is the slow-client state of one connection.
type guard struct {
	mu      sync.Mutex
	user    time.Time // the read deadline the application asked for
	applied time.Time // the read deadline last set on the inner conn
	accept  time.Time
	gotByte bool
	winFrom time.Time // start of the current min-rate window
	winRead int       // bytes read in it
}

func (l *Listener) wrap(c net.Conn, a netip.Addr, slot int) net.Conn {
	w := &conn{Conn: c, l: l, addr: a, slot: slot}
	if l.cfg.firstByte > 0 || l.cfg.minReadRate > 0 {
		// The deadline is armed by the first Read, not here: a deadline
		// only matters to a read, and arming a runtime timer per accept
		// costs microseconds.
		w.g = &guard{accept: time.Now()}
	}
	return w
}

// NetConn returns the accepted connection (a *net.TCPConn for TCP), for
// its socket options. Close and set deadlines through the wrapper: closing
// the inner conn directly skips the slot release, and a read deadline set
// on it directly is unknown to the slow-client guard.
func (c *conn) NetConn() net.Conn { return c.Conn }

// Close closes the connection and releases its slots; only the first call
// releases, so a double Close cannot free a slot it does not hold.
func (c *conn) Close() error {
	c.release()
	return c.Conn.Close()
}

func (c *conn) release() {
	if !c.released.CompareAndSwap(false, true) {
		return
	}
	if c.slot >= 0 {
		c.l.ips.release(c.slot)
	}
	c.l.active.Add(-1)
	<-c.l.sem
}

// ReadFrom keeps the inner connection's zero-copy path (sendfile, splice)
// available to io.Copy and net/http through the wrapper.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
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
	if err := c.Conn.SetWriteDeadline(t); err != nil {
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
	switch {
	case !c.g.gotByte && c.l.cfg.firstByte > 0:
		own = c.g.accept.Add(c.l.cfg.firstByte)
	case c.l.cfg.minReadRate > 0:
		// A window that ended between two reads starts afresh: the time
		// the application spent not reading is not the client's fault.
		if c.g.winFrom.IsZero() || now.Sub(c.g.winFrom) >= c.l.cfg.minReadWindow {
			c.g.winFrom, c.g.winRead = now, 0
		}
		own = c.g.winFrom.Add(c.l.cfg.minReadWindow)
	}
	if own.IsZero() || (!c.g.user.IsZero() && c.g.user.Before(own)) {
		return c.g.user
	}
	return own
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
		err := c.apply(c.deadline(time.Now()))
		c.g.mu.Unlock()
		if err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(b)
		c.g.mu.Lock()
		if n > 0 {
			c.g.gotByte = true
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
			c.l.rejected[SlowClient].Add(1)
			if c.l.cfg.onReject != nil {
				c.l.cfg.onReject(c.addr, SlowClient)
			}
			if tc, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
			return n, errSlowClient
		}
		if n > 0 {
			return n, nil
		}
		// The window ended with its quota met while the read waited: open
		// a new window and keep waiting.
	}
}
