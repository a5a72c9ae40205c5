package limiter

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// wguard is the minimum-write-rate state of one connection
// (WithMinWriteRate). A write of n bytes must be taken by the peer within
// window + n/rate: a client reading a response slower than the rate (the
// "slow read" attack, which holds a connection and its send buffer for as
// long as the response lasts) is cut, while a long download at a decent
// rate is never cut, however long it lasts. It is judged per write call,
// so the time the server spends producing the response between writes is
// never held against the client.
type wguard struct {
	mu   sync.Mutex
	user time.Time // the write deadline the application asked for
}

// errSlowWrite is returned by Write once a connection was closed as a
// SlowWrite; it wraps os.ErrDeadlineExceeded.
var errSlowWrite = fmt.Errorf("limiter: connection closed: client reads too slowly: %w", os.ErrDeadlineExceeded)

// SetWriteDeadline records the application's write deadline; each Write
// uses the earlier of it and the minimum-write-rate deadline.
func (c *conn) SetWriteDeadline(t time.Time) error {
	if c.w == nil {
		return c.Conn.SetWriteDeadline(t)
	}
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	c.w.user = t
	return c.Conn.SetWriteDeadline(t)
}

// writeDeadline arms the deadline for writing n bytes from now and reports
// the application's deadline, to tell whose expired.
func (c *conn) writeDeadline(n int64) (time.Time, error) {
	cfg := &c.l.cfg
	now := time.Now()
	d := now.Add(cfg.minWriteWindow + time.Duration(float64(n)/float64(cfg.minWriteRate)*float64(time.Second)))
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	if !c.w.user.IsZero() && c.w.user.Before(d) {
		d = c.w.user
	}
	return c.w.user, c.Conn.SetWriteDeadline(d)
}

// slowWrite decides, after a write failed with err, whether the minimum
// write rate (not the application's deadline) expired, and cuts the
// connection if so.
func (c *conn) slowWrite(err error, user time.Time) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) || (!user.IsZero() && !time.Now().Before(user)) {
		return err
	}
	c.cut(SlowWrite)
	return errSlowWrite
}

// Write writes b under the minimum-write-rate deadline, if one is set.
func (c *conn) Write(b []byte) (int, error) {
	if c.parked.Load() {
		// The tarpit holds the socket: nothing more is sent on it.
		return 0, net.ErrClosed
	}
	if c.w == nil {
		return c.Conn.Write(b)
	}
	user, err := c.writeDeadline(int64(len(b)))
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(b)
	if err != nil {
		err = c.slowWrite(err, user)
	}
	return n, err
}

// guardedReadFrom copies r in chunks of one window's worth at the minimum
// rate (at least 64 KiB), each under its own deadline. Each chunk still
// goes through the inner ReaderFrom, so sendfile and splice stay in use
// (net handles an *io.LimitedReader around a file).
func (c *conn) guardedReadFrom(r io.Reader) (int64, error) {
	cfg := &c.l.cfg
	chunk := max(int64(float64(cfg.minWriteRate)*cfg.minWriteWindow.Seconds()), 64<<10)
	rf, ok := c.Conn.(io.ReaderFrom)
	var total int64
	for {
		user, err := c.writeDeadline(chunk)
		if err != nil {
			return total, err
		}
		lr := &io.LimitedReader{R: r, N: chunk}
		var n int64
		if ok {
			n, err = rf.ReadFrom(lr)
		} else {
			n, err = io.Copy(struct{ io.Writer }{c.Conn}, lr)
		}
		total += n
		if err != nil {
			return total, c.slowWrite(err, user)
		}
		if lr.N > 0 { // r is exhausted
			return total, nil
		}
	}
}
