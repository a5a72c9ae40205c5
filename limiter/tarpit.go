package limiter

import (
	"net"
	"sync"
	"time"
)

// The tarpit: refused connections from heavy sources are held, not reset.
//
// A reset tells a client to come back, and a botnet comes back at once:
// every connection the Listener resets is redialled, accepted, judged and
// reset again, and under a flood of many times the connection cap that
// loop is what the server spends its CPU on. Measured with the siege's
// botnet (8,192 connections from 32 addresses against a cap of 128, each
// redialled 100 ms after a close): resetting, the attack made 61,053 dials
// in 4 s and the legitimate client's p99 was 128 ms; holding the refused
// connections, 9,216 dials (the first ones, plus the bots that close
// themselves) and a p99 of 4 ms, below the naive server's.
//
// So a connection that the Listener ends for a reason that marks its
// source as heavy is parked instead: it keeps its file
// descriptor, with no goroutine, no buffer and no timer of its own, and is
// never read. Its client sees a connection that does not answer. It is
// counted when it is refused, under its Reason, exactly as a reset one is;
// the tarpit only delays the close. It is parked when the Reason marks a
// heavy source:
//
//   - FairShare, IPConns or IPAcceptRate: the source already holds its
//     share or its per-address cap, or dials faster than its rate, by the
//     operator's own limits. A single address flooding with thousands of
//     connections is held, not cycled;
//   - Preempted or SlowClient, when the source holds at least two
//     connections and the Listener is under pressure (at least half of
//     WithMaxConns open). Below that pressure a reset is the kinder answer
//     to a client that erred. A preempted keep-alive connection is never
//     parked: it has served a request, so its client speaks HTTP and would
//     send its next request into the silence.
//
// Nothing refused for GlobalConns or AcceptRate is parked: those say
// nothing about the source.
//
// Held connections end, with a reset, after the hold time (WithTarpit,
// default DefaultTarpitHold), as soon as their peer has closed (checked
// once a second, without reading), when the tarpit is over its budget, when
// Accept runs out of file descriptors, and on Listener.Close. The budget is
// WithTarpit's max (default DefaultTarpitPerConn × WithMaxConns) and never
// more than half of the file descriptors the process has left beyond the
// cap and PreflightFDHeadroom, re-read once a second: a tarpit must not
// take the descriptors the server needs. When it is full, the connection
// is reset as before.
//
// Behind a load balancer or a NAT every client shares one source address,
// so a parked connection may be a legitimate client's: there, turn the
// tarpit off with WithoutTarpit, as per-IP caps are off by default.

// Tarpit defaults (see WithTarpit).
const (
	// DefaultTarpitHold is how long a parked connection is held at most.
	DefaultTarpitHold = 30 * time.Second
	// DefaultTarpitPerConn is the default tarpit size per connection of
	// WithMaxConns: a flood of 64 times the cap is held whole.
	DefaultTarpitPerConn = 64
)

// tarpitTick is how often the janitor ends expired and closed-by-peer
// connections and re-reads the file-descriptor budget.
const tarpitTick = time.Second

// tarpitChunk bounds how many parked connections the janitor inspects
// under one lock hold, so that a park (on the accept path) waits for at
// most that many non-blocking syscalls.
const tarpitChunk = 256

// parked is one held connection; c is nil once it has left the tarpit.
type parked struct {
	c     net.Conn
	until int64 // monotonicNow deadline
}

type tarpit struct {
	max      int
	hold     time.Duration
	maxConns int

	mu      sync.Mutex
	q       []parked // FIFO: q[head:] are in order of parking
	head    int
	gen     int // counts compactions of q, which move positions
	n       int // entries in q[head:] whose c is not nil
	budget  int // min(max, fd budget), refreshed by the janitor
	running bool
	closed  bool
	stop    chan struct{} // closed by close; the janitor exits
	done    chan struct{} // closed by the janitor when it exits
}

func newTarpit(max int, hold time.Duration, maxConns int) *tarpit {
	tp := &tarpit{max: max, hold: hold, maxConns: maxConns, stop: make(chan struct{})}
	tp.budget = tp.limit()
	return tp
}

// limit is the tarpit's budget now: its max, and at most half of the
// descriptors left beyond the connection cap and PreflightFDHeadroom.
func (tp *tarpit) limit() int {
	soft, ok := fdLimit()
	if !ok {
		return tp.max
	}
	spare := (int64(soft) - int64(tp.maxConns) - PreflightFDHeadroom) / 2
	return int(max(0, min(int64(tp.max), spare)))
}

// park holds c and reports whether it did; when it did not (full, or
// closed), the caller resets c.
func (tp *tarpit) park(c net.Conn) bool {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.closed || tp.n >= tp.budget {
		return false
	}
	tp.q = append(tp.q, parked{c: c, until: monotonicNow() + int64(tp.hold)})
	tp.n++
	if !tp.running {
		tp.running = true
		tp.done = make(chan struct{})
		go tp.janitor(tp.done)
	}
	return true
}

// held returns how many connections are parked.
func (tp *tarpit) held() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.n
}

// release ends up to n parked connections, the oldest first, and reports
// how many it ended: Accept calls it when the process runs out of file
// descriptors.
func (tp *tarpit) release(n int) int {
	tp.mu.Lock()
	out := tp.popLocked(func(parked) bool { return n > 0 }, &n)
	tp.mu.Unlock()
	abortAll(out)
	return len(out)
}

// popLocked removes from the head the entries for which end holds (n, if
// not nil, is decremented per live entry removed), and returns their
// connections. It compacts q once half of it is spent.
func (tp *tarpit) popLocked(end func(parked) bool, n *int) []net.Conn {
	var out []net.Conn
	for tp.head < len(tp.q) {
		e := tp.q[tp.head]
		if e.c != nil {
			if !end(e) {
				break
			}
			out = append(out, e.c)
			tp.n--
			if n != nil {
				*n--
			}
		}
		tp.q[tp.head] = parked{}
		tp.head++
	}
	if tp.head > 1024 && tp.head*2 > len(tp.q) {
		k := copy(tp.q, tp.q[tp.head:])
		clear(tp.q[k:])
		tp.q, tp.head = tp.q[:k], 0
		tp.gen++
	}
	return out
}

// janitor ends expired, over-budget and closed-by-peer connections once a
// tick, and exits when the tarpit is empty or closed (park starts it
// again).
func (tp *tarpit) janitor(done chan struct{}) {
	defer close(done)
	t := time.NewTicker(tarpitTick)
	defer t.Stop()
	for {
		select {
		case <-tp.stop:
			return
		case <-t.C:
		}
		budget := tp.limit()
		now := monotonicNow()
		tp.mu.Lock()
		tp.budget = budget
		out := tp.popLocked(func(e parked) bool { return now >= e.until || tp.n > tp.budget }, nil)
		tp.mu.Unlock()
		abortAll(out)
		tp.sweep()
		tp.mu.Lock()
		if tp.n == 0 || tp.closed {
			tp.running = false
			tp.mu.Unlock()
			return
		}
		tp.mu.Unlock()
	}
}

// sweep ends the parked connections whose peer has closed or reset them,
// tarpitChunk at a time. Between chunks park may append and release may
// pop from the head; a compaction (gen) moves positions, and the sweep
// then starts over from the head.
func (tp *tarpit) sweep() {
	tp.mu.Lock()
	i, gen := tp.head, tp.gen
	tp.mu.Unlock()
	for {
		var out []net.Conn
		tp.mu.Lock()
		if tp.closed {
			tp.mu.Unlock()
			return
		}
		if tp.gen != gen {
			i, gen = tp.head, tp.gen
		}
		i = max(i, tp.head)
		end := min(i+tarpitChunk, len(tp.q))
		for ; i < end; i++ {
			if c := tp.q[i].c; c != nil && peerGone(c) {
				out = append(out, c)
				tp.q[i].c = nil
				tp.n--
			}
		}
		more := i < len(tp.q)
		tp.mu.Unlock()
		abortAll(out)
		if !more {
			return
		}
	}
}

// close ends every parked connection and waits for the janitor to exit;
// later parks are refused.
func (tp *tarpit) close() {
	tp.mu.Lock()
	if tp.closed {
		tp.mu.Unlock()
		return
	}
	tp.closed = true
	close(tp.stop)
	out := tp.popLocked(func(parked) bool { return true }, nil)
	done := tp.done
	tp.mu.Unlock()
	abortAll(out)
	if done != nil {
		<-done
	}
}

func abortAll(cs []net.Conn) {
	for _, c := range cs {
		abort(c)
	}
}
