package changuard

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/bits"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/garrison-go/garrison/internal/blockhook"
	"github.com/garrison-go/garrison/internal/ctxerr"
)

// Overflow is what a Chan does with a Send that finds its buffer full.
type Overflow int

const (
	// Block makes Send wait for room, for Close, or for its ctx to end.
	// It is the default.
	Block Overflow = iota
	// Reject makes Send return ErrFull at once, handing the value back.
	Reject
	// DropOldest evicts the oldest buffered value (handing it to onDrop)
	// to make room for the new one. Send never blocks.
	DropOldest
	// DropNewest hands the new value to onDrop and keeps the buffer as it
	// is. Send never blocks and returns nil.
	DropNewest
)

// String returns the policy's name, as used in error messages.
func (p Overflow) String() string {
	switch p {
	case Block:
		return "Block"
	case Reject:
		return "Reject"
	case DropOldest:
		return "DropOldest"
	case DropNewest:
		return "DropNewest"
	}
	return "Overflow(invalid)"
}

// ChanOption configures a Chan at construction.
type ChanOption[T any] func(*Chan[T]) error

// WithOverflow sets what Send does when the buffer is full. DropOldest and
// DropNewest require a non-nil onDrop, which receives every value the Chan
// discards so that none is lost silently; it runs on the sending goroutine,
// outside of any internal state, and must not block for long. If onDrop
// panics, the panic reaches the caller of Send, whose value was then not
// sent (under DropNewest it was already counted as dropped). For Block and
// Reject, onDrop may be nil and is never called.
func WithOverflow[T any](p Overflow, onDrop func(T)) ChanOption[T] {
	return func(c *Chan[T]) error {
		switch p {
		case Block, Reject:
		case DropOldest, DropNewest:
			if onDrop == nil {
				return errors.New("changuard: WithOverflow: " + p.String() + " requires an onDrop callback")
			}
		default:
			return errors.New("changuard: WithOverflow: unknown policy " + p.String())
		}
		c.policy, c.onDrop = p, onDrop
		return nil
	}
}

// ChanStats is a snapshot of a Chan's counters. Counters are read one by
// one without stopping traffic, so they are exact only while the Chan is
// quiescent; under load each is a momentary estimate.
//
// Once every sender has returned and the Chan is closed and drained:
//
//	Sent == Received + Drained + Dropped
//
// and every value ever passed to Send or TrySend is counted in exactly one
// of Sent, Rejected, Returned or Canceled (the last three hand the value
// back to the caller through the returned error), except the value of a
// DropOldest Send whose onDrop panicked (see WithOverflow).
type ChanStats struct {
	Sent     uint64 // values accepted: Send or TrySend returned nil (DropNewest included)
	Received uint64 // values taken out by Recv, TryRecv, All or RecvChan
	Drained  uint64 // values taken out by Drain
	Dropped  uint64 // values handed to onDrop (evicted by DropOldest or refused by DropNewest)
	Rejected uint64 // values refused with ErrFull (TrySend, or Send under Reject)
	Returned uint64 // values handed back in a *ClosedError
	Canceled uint64 // values handed back because the Send's ctx ended

	FullEvents     uint64 // sends that found the buffer full, whatever the policy
	BlockedSenders int    // senders waiting for room right now
	Len, Cap       int    // buffered values now, and capacity
}

// MaxCapacity is the largest capacity NewChan and NewOwner accept. A
// channel's buffer is allocated in full up front, so the bound is also
// limited in bytes: capacity times the size of T may not exceed
// MaxBufferBytes.
const (
	MaxCapacity    = 1 << 22
	MaxBufferBytes = 64 << 20
)

// checkCapacity returns why capacity is refused for a buffer of elemSize
// bytes per value, or nil.
func checkCapacity(who string, capacity int, elemSize uintptr) error {
	if capacity < 1 {
		return fmt.Errorf("%w: %s: capacity %d is below 1 (there is no unbounded mode)", ErrInvalidCapacity, who, capacity)
	}
	if capacity > MaxCapacity {
		return fmt.Errorf("%w: %s: capacity %d exceeds MaxCapacity (%d)", ErrInvalidCapacity, who, capacity, MaxCapacity)
	}
	if bytes := uint64(capacity) * uint64(max(elemSize, 1)); bytes > MaxBufferBytes {
		return fmt.Errorf("%w: %s: capacity %d of %d-byte values needs %d bytes up front, above MaxBufferBytes (%d)",
			ErrInvalidCapacity, who, capacity, elemSize, bytes, uint64(MaxBufferBytes))
	}
	return nil
}

// A Chan counts its senders in flight, so that Close can tell when the
// underlying channel may be closed without any send on it panicking. The
// count is striped when there is more than one P (see numStripes): each
// sender picks a stripe from the address of its own stack, so goroutines
// running on different cores usually count on different cache lines and a
// send costs two uncontended atomic operations instead of two on one line
// bouncing between cores.
//
// stripe.state packs: bit 0 (closedBit), set by Close; bit 1 (doneBit),
// set once the stripe has had no sender in flight since closedBit was set;
// bits 2-31, the senders in flight on this stripe; bits 32-63, the low 32
// bits of this stripe's share of the Sent counter, bumped by the same Add
// that counts a successful sender out. halves counts how many times those
// 32 bits crossed a multiple of 2^31, which is enough to rebuild the
// stripe's full 64-bit count (see sentCount).
const (
	closedBit   = 1
	doneBit     = 2
	inflightOne = 4
	lowMask     = 1<<32 - 1
	sentOne     = 1 << 32
)

type stripe struct {
	state  atomic.Uint64
	halves atomic.Uint64
	_      [48]byte // one stripe per cache line
}

// stackShift drops the bits that vary within one call's frame on the
// smallest (2 KiB) stack; the rest of the address is hashed (see stripe).
// Taking those bits as the index directly, as this code once did, put
// every goroutine on the same stripe: stacks larger than 2 KiB are aligned
// to their size, so the index was the offset of the frame in its stack,
// which is the same for goroutines running the same code.
const stackShift = 11

// numStripes is the stripe count for a new Chan: two per P, so that two
// goroutines running at once rarely share a line, rounded to a power of
// two and at most 64; one with a single P. On two cores (BenchmarkPaired,
// ChanParallel) one stripe made Chan 2.05-2.23x a raw channel, four make
// it 1.80-1.86x, eight no better than four.
func numStripes() int {
	p := runtime.GOMAXPROCS(0)
	if p <= 1 {
		return 1
	}
	n := 1
	for n < 2*p && n < 64 {
		n *= 2
	}
	return n
}

// Chan is a bounded channel that cannot panic and does not lose values:
// sending on a closed Chan hands the value back in a *ClosedError, Close is
// idempotent, and every value ends up received, drained, dropped through
// onDrop, or handed back to its sender.
//
// A Chan is backed by a Go channel, so receivers can select on RecvChan and
// blocked goroutines are durably blocked for testing/synctest. It uses no
// helper goroutine and never spins.
//
// Every blocking method takes a ctx and follows one rule: a nil ctx is an
// error matching [ErrNilContext], and a ctx that is already done fails the
// call at once, with no effect on the Chan, even if it could have gone
// through.
//
// Create Chans with NewChan; the zero Chan is not usable.
type Chan[T any] struct {
	// Read-only after NewChan.
	ch      chan T
	closing chan struct{} // closed by Close: releases blocked senders
	policy  Overflow
	onDrop  func(T)
	stripes []stripe
	shift   uint8 // 64 - log2(len(stripes))

	closed atomic.Bool
	// pending counts, after Close, the stripes that still had senders in
	// flight, plus one held by Close itself; whoever brings it to zero
	// closes ch.
	pending    atomic.Int64
	dataClosed atomic.Bool

	drained  atomic.Uint64
	dropped  atomic.Uint64
	rejected atomic.Uint64
	returned atomic.Uint64
	canceled atomic.Uint64
	full     atomic.Uint64
	blocked  atomic.Int64
}

// NewChan returns a Chan buffering up to capacity values. capacity must be
// at least 1, since there is no unbounded mode, and at most [MaxCapacity]
// and [MaxBufferBytes] in bytes, since the buffer is allocated up front; an
// error wrapping [ErrInvalidCapacity] says which bound was broken. The
// default overflow policy is Block.
func NewChan[T any](capacity int, opts ...ChanOption[T]) (*Chan[T], error) {
	return newChan("NewChan", capacity, opts...)
}

func newChan[T any](who string, capacity int, opts ...ChanOption[T]) (*Chan[T], error) {
	var zero T
	if err := checkCapacity(who, capacity, unsafe.Sizeof(zero)); err != nil {
		return nil, err
	}
	n := numStripes()
	c := &Chan[T]{
		ch:      make(chan T, capacity),
		closing: make(chan struct{}),
		stripes: make([]stripe, n),
		shift:   uint8(64 - bits.TrailingZeros(uint(n))),
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("changuard: " + who + ": nil option")
		}
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// stripe returns the caller's stripe. The address of a local variable
// identifies the goroutine's stack; the variable does not escape, since
// only its address as a number is kept. A Fibonacci hash of the address
// spreads stacks of any size and alignment over the stripes; the top bits
// of the product are the index (shift is 64 with one stripe, and a shift
// by 64 gives 0).
func (c *Chan[T]) stripe() *stripe {
	var mark byte
	h := uint64(uintptr(unsafe.Pointer(&mark))>>stackShift) * 0x9e3779b97f4a7c15
	return &c.stripes[h>>c.shift]
}

// enter counts a sender in on s. It reports false if Close has run, in
// which case the sender must count itself out again with exit. It is
// small enough to be inlined on the fast path.
func (c *Chan[T]) enter(s *stripe) bool {
	return s.state.Add(inflightOne)&closedBit == 0
}

// exit counts a sender out of s. Every sender that passed enter before
// Close set closedBit on s is counted in s until it is done with ch, so
// when the count of s reaches zero after Close nobody can send on ch
// through s any more, and senders arriving later see closedBit in enter
// and never touch ch. Late senders come and go, so s can reach zero
// several times: doneBit makes only the first one count.
func (c *Chan[T]) exit(s *stripe) {
	if s.state.Add(^uint64(inflightOne-1))&lowMask == closedBit {
		c.stripeDone(s)
	}
}

// exitSent is exit for a sender whose value was accepted: the same Add
// counts it in Sent. The in-flight count is at least one, so subtracting
// it never borrows from the Sent bits; a carry out of bit 63 is the
// intended wrap-around.
func (c *Chan[T]) exitSent(s *stripe) {
	// Both rare cases in one test, so that the fast path inlines.
	// n<<1>>33 is the low 31 bits of the Sent field: zero at each half
	// crossing.
	if n := s.state.Add(sentOne - inflightOne); n&lowMask == closedBit || n<<1>>33 == 0 {
		c.exitSentRare(s, n)
	}
}

func (c *Chan[T]) exitSentRare(s *stripe, n uint64) {
	if n&lowMask == closedBit {
		c.stripeDone(s)
	}
	if uint32(n>>32)&(1<<31-1) == 0 {
		s.halves.Add(1)
	}
}

// stripeDone retires s after Close, once; the last retirement closes ch.
func (c *Chan[T]) stripeDone(s *stripe) {
	if s.state.Or(doneBit)&doneBit == 0 && c.pending.Add(-1) == 0 {
		c.closeData()
	}
}

// sentCount rebuilds the 64-bit Sent count of s. halves is read first, so
// it can only lag the state word: by at most one crossing, since the next
// one takes 2^31 sends. The parity of the number of crossings is bit 31 of
// the packed 32-bit field, which settles which of halves and halves+1 is
// right; every two crossings make one wrap of the field.
func (s *stripe) sentCount() uint64 {
	halves := s.halves.Load()
	lo := s.state.Load() >> 32
	if halves&1 != lo>>31 {
		halves++
	}
	return halves/2<<32 | lo
}

func (c *Chan[T]) closeData() {
	if c.dataClosed.CompareAndSwap(false, true) {
		close(c.ch)
	}
}

// Send delivers v, applying the overflow policy if the buffer is full.
// Under Block (the default) it waits for room; it returns nil once v is
// buffered, a *ClosedError carrying v if the Chan is or gets closed first,
// or, if ctx ends first, an error matching ctx.Err() and
// context.Cause(ctx) (v is then not sent). Under Reject it returns ErrFull
// instead of waiting; under the Drop policies it never waits and returns
// nil. A ctx already done, or nil, fails Send at once and v is not sent
// (see [Chan]).
func (c *Chan[T]) Send(ctx context.Context, v T) error {
	// One atomic load for a live ctx: the rule costs next to nothing.
	if ctx == nil || ctx.Err() != nil {
		c.canceled.Add(1)
		return wrapCtx("Chan.Send", ctxerr.Check(ctx))
	}
	s := c.stripe()
	if !c.enter(s) {
		c.exit(s)
		c.returned.Add(1)
		return &ClosedError[T]{Value: v}
	}
	blockhook.Unblock(c, blockhook.Value)
	select {
	case c.ch <- v:
		c.exitSent(s)
		return nil
	default:
	}
	return c.sendFull(ctx, s, v)
}

// TrySend delivers v if there is room, without waiting and whatever the
// overflow policy: it returns nil, ErrFull, or a *ClosedError carrying v.
func (c *Chan[T]) TrySend(v T) error {
	s := c.stripe()
	if !c.enter(s) {
		c.exit(s)
		c.returned.Add(1)
		return &ClosedError[T]{Value: v}
	}
	select {
	case c.ch <- v:
		c.exitSent(s)
		return nil
	default:
	}
	c.full.Add(1)
	c.rejected.Add(1)
	c.exit(s)
	return ErrFull
}

// sendFull is Send's slow path; the caller is counted in flight on s.
func (c *Chan[T]) sendFull(ctx context.Context, s *stripe, v T) error {
	c.full.Add(1)
	switch c.policy {
	case Reject:
		c.rejected.Add(1)
		c.exit(s)
		return ErrFull
	case DropNewest:
		c.dropped.Add(1)
		// Out of flight before running user code, so a slow onDrop never
		// holds up the closing of ch.
		c.exitSent(s)
		c.onDrop(v)
		return nil
	case DropOldest:
		return c.sendDropOldest(s, v)
	}
	return c.sendBlocked(ctx, s, v)
}

// sendBlocked waits for room, Close or the end of ctx. It is the one place
// where a Send blocks.
func (c *Chan[T]) sendBlocked(ctx context.Context, s *stripe, v T) error {
	blockhook.Wait(c, blockhook.Room)
	c.blocked.Add(1)
	defer c.blocked.Add(-1)
	select {
	case c.ch <- v:
		c.exitSent(s)
		return nil
	case <-c.closing:
		// A value that gets in before Close is still delivered (the select
		// may pick either ready case); one that does not comes back.
		c.returned.Add(1)
		c.exit(s)
		return &ClosedError[T]{Value: v}
	case <-ctx.Done():
		c.canceled.Add(1)
		c.exit(s)
		return wrapCtx("Chan.Send", ctxerr.Err(ctx))
	}
}

// sendDropOldest evicts the oldest value until v fits. Each round either
// buffers v, evicts a value, or finds that a receiver made room: some
// goroutine always makes progress, and no round waits.
func (c *Chan[T]) sendDropOldest(s *stripe, v T) error {
	for {
		select {
		case c.ch <- v:
			c.exitSent(s)
			return nil
		default:
		}
		select {
		case old := <-c.ch:
			c.dropped.Add(1)
			// Leave flight to run onDrop (see DropNewest), then come back
			// in like a new sender: Close may have run meanwhile.
			c.exit(s)
			c.onDrop(old)
			if !c.enter(s) {
				c.exit(s)
				c.returned.Add(1)
				return &ClosedError[T]{Value: v}
			}
		default:
		}
	}
}

// Recv returns the next value, waiting for one if the buffer is empty.
// After Close it keeps returning the buffered values (including those of
// senders that were in flight when Close ran), then ErrClosed. If ctx ends
// first it returns an error matching ctx.Err() and context.Cause(ctx); a
// ctx already done, or nil, fails Recv at once and takes nothing (see
// [Chan]).
func (c *Chan[T]) Recv(ctx context.Context) (T, error) {
	if ctx == nil || ctx.Err() != nil {
		var zero T
		return zero, wrapCtx("Chan.Recv", ctxerr.Check(ctx))
	}
	blockhook.Unblock(c, blockhook.Room)
	select {
	case v, ok := <-c.ch:
		if ok {
			return v, nil
		}
		return v, ErrClosed
	default:
	}
	return c.recvBlocked(ctx)
}

// recvBlocked waits for a value, Close or the end of ctx. It is the one
// place where a Recv blocks.
func (c *Chan[T]) recvBlocked(ctx context.Context) (T, error) {
	blockhook.Wait(c, blockhook.Value)
	done := ctx.Done()
	if done == nil {
		// A ctx that never ends: a plain receive parks for less than a
		// select does.
		if v, ok := <-c.ch; ok {
			return v, nil
		}
		var zero T
		return zero, ErrClosed
	}
	select {
	case v, ok := <-c.ch:
		if ok {
			return v, nil
		}
		return v, ErrClosed
	case <-done:
		var zero T
		return zero, wrapCtx("Chan.Recv", ctxerr.Err(ctx))
	}
}

// TryRecv returns the next buffered value and true, or the zero value and
// false if none is buffered right now (whether or not the Chan is closed).
func (c *Chan[T]) TryRecv() (T, bool) {
	select {
	case v, ok := <-c.ch:
		return v, ok
	default:
		var zero T
		return zero, false
	}
}

// RecvChan returns the receive side of the underlying channel, for use in
// select and range. It is closed once the Chan is closed and every sender
// in flight at Close has finished, so ranging over it ends after the last
// value. Values received from it are counted in Stats.Received like any
// other, because Received is derived from the other counters.
func (c *Chan[T]) RecvChan() <-chan T { return c.ch }

// All returns an iterator over the received values. It ends when the Chan
// is closed and empty, or when ctx ends; in the latter case it ends
// silently, so check ctx.Err() after the loop if it matters.
func (c *Chan[T]) All(ctx context.Context) iter.Seq[T] {
	return func(yield func(T) bool) {
		for {
			v, err := c.Recv(ctx)
			if err != nil || !yield(v) {
				return
			}
		}
	}
}

// Close closes the Chan, immediately: senders waiting for room are
// released with a *ClosedError carrying their value; later sends get the
// same; receivers get the buffered values, then ErrClosed. Close never
// blocks, never panics, and is safe to call concurrently with senders and
// with itself. It returns nil for the call that closed the Chan and
// ErrClosed for any later one, which changes nothing.
//
// A Chan has no Shutdown: the graceful part of stopping a channel, taking
// the values still buffered, belongs to its receivers, whose range over
// RecvChan or All ends after the last one.
func (c *Chan[T]) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	// pending is set before any stripe can see closedBit, so no sender
	// retires a stripe against a count that is not there yet. The extra
	// one is ours, released below once every stripe has been visited.
	c.pending.Store(int64(len(c.stripes)) + 1)
	close(c.closing)
	for i := range c.stripes {
		s := &c.stripes[i]
		// No sender in flight on s: nobody is bound to see its count
		// drop to zero, so retire it here (a late sender passing through
		// may retire it first; doneBit makes that count once).
		if s.state.Or(closedBit)&lowMask&^(closedBit|doneBit) == 0 {
			c.stripeDone(s)
		}
	}
	if c.pending.Add(-1) == 0 {
		c.closeData()
	}
	return nil
}

// Drain removes and returns the buffered values, counting them as drained.
// After Close it first waits for the senders that were in flight when
// Close ran (Close released any that were waiting, so this wait is short
// and never depends on receivers), so that the returned slice is
// everything that will ever be left: a closed Chan drained this way loses
// nothing. Before Close it takes what is buffered at the time without
// waiting.
func (c *Chan[T]) Drain() []T {
	var out []T
	if c.closed.Load() {
		for v := range c.ch {
			out = append(out, v)
		}
	} else {
	loop:
		for {
			select {
			case v, ok := <-c.ch:
				if !ok {
					break loop
				}
				out = append(out, v)
			default:
				break loop
			}
		}
	}
	c.drained.Add(uint64(len(out)))
	return out
}

// Len returns the number of values buffered right now.
func (c *Chan[T]) Len() int { return len(c.ch) }

// Cap returns the capacity given to NewChan.
func (c *Chan[T]) Cap() int { return cap(c.ch) }

// sentCount sums the stripes' Sent counts.
func (c *Chan[T]) sentCount() uint64 {
	var n uint64
	for i := range c.stripes {
		n += c.stripes[i].sentCount()
	}
	return n
}

// Stats returns the counters. Received is computed as
// Sent - Dropped - Drained - Len, which counts every way out of the buffer
// (including RecvChan) without a counter on the receive path.
func (c *Chan[T]) Stats() ChanStats {
	s := ChanStats{
		Drained:        c.drained.Load(),
		Dropped:        c.dropped.Load(),
		Len:            len(c.ch),
		Sent:           c.sentCount(),
		Rejected:       c.rejected.Load(),
		Returned:       c.returned.Load(),
		Canceled:       c.canceled.Load(),
		FullEvents:     c.full.Load(),
		BlockedSenders: int(c.blocked.Load()),
		Cap:            cap(c.ch),
	}
	// A value is counted in Sent just after it is buffered, and in
	// Dropped or Drained just after it left: under traffic the sum can
	// briefly exceed Sent.
	if out := s.Dropped + s.Drained + uint64(s.Len); out < s.Sent {
		s.Received = s.Sent - out
	}
	return s
}
