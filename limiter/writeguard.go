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

// Write writes b under the minimum-write-rate deadline, if one is set, in
// chunks of writeChunk bytes, each under its own deadline: one deadline
// for a large write (net/http hands a connection 32 KiB at a time) would
// give a client reading a byte a second most of a minute per write.
func (c *conn) Write(b []byte) (int, error) {
	if c.parked.Load() {
		// The tarpit holds the socket: nothing more is sent on it.
		return 0, net.ErrClosed
	}
	if c.w == nil {
		return c.Conn.Write(b)
	}
	chunk := c.l.writeChunk()
	total := 0
	for {
		p := b[:int(min(int64(len(b)), chunk))]
		user, err := c.writeDeadline(int64(len(p)))
		if err != nil {
			return total, err
		}
		n, err := c.Conn.Write(p)
		total += n
		if err != nil {
			return total, c.slowWrite(err, user)
		}
		b = b[n:]
		if len(b) == 0 {
			return total, nil
		}
	}
}

// minWriteChunk is the smallest unit the minimum write rate judges: below
// it the deadline's window, not the rate, would decide.
const minWriteChunk = 16 << 10

// writeChunk is how many bytes one write deadline covers: one window's
// worth at the minimum rate, at least minWriteChunk. A chunk must be taken
// within the window plus its size at the rate, so a peer that takes less
// than about half the rate, averaged over two windows, is cut.
func (l *Listener) writeChunk() int64 {
	cfg := &l.cfg
	return max(int64(float64(cfg.minWriteRate)*cfg.minWriteWindow.Seconds()), minWriteChunk)
}

// guardedReadFrom copies r in chunks of writeChunk bytes, each under its
// own deadline. Each chunk still
// goes through the inner ReaderFrom, so sendfile and splice stay in use
// (net handles an *io.LimitedReader around a file).
func (c *conn) guardedReadFrom(r io.Reader) (int64, error) {
	chunk := c.l.writeChunk()
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
