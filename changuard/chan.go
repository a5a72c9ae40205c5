package changuard

import (
	"context"
	"errors"
	"iter"
	"sync/atomic"

	"github.com/garrison-go/garrison/internal/blockhook"
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

// Chan.state packs, so that a send costs two atomic operations on one
// word: bit 0, set by Close; bits 1-31, the senders in flight (a sender
// counts itself in before touching ch and out after, so Close can tell when
// ch may be closed without any send on it panicking); bits 32-63, the low
// 32 bits of the Sent counter, bumped by the same Add that counts a
// successful sender out. Chan.sentHalves counts how many times those 32
// bits crossed a multiple of 2^31, which is enough to rebuild the full
// 64-bit count (see sentCount).
const (
	closedBit   = 1
	inflightOne = 2
	lowMask     = 1<<32 - 1
	sentOne     = 1 << 32
)

// Chan is a bounded channel that cannot panic and does not lose values:
// sending on a closed Chan hands the value back in a *ClosedError, Close is
// idempotent, and every value ends up received, drained, dropped through
// onDrop, or handed back to its sender.
//
// A Chan is backed by a Go channel, so receivers can select on RecvChan and
// blocked goroutines are durably blocked for testing/synctest. It uses no
// helper goroutine and never spins.
//
// Create Chans with NewChan; the zero Chan is not usable.
type Chan[T any] struct {
	// Read-only after NewChan.
	ch      chan T
	closing chan struct{} // closed by Close: releases blocked senders
	policy  Overflow
	onDrop  func(T)

	_ [64]byte // keep the senders' hot words off the line read by receivers

	state atomic.Uint64

	_ [56]byte

	sentHalves atomic.Uint64

	dataClosed atomic.Bool
	drained    atomic.Uint64
	dropped    atomic.Uint64
	rejected   atomic.Uint64
	returned   atomic.Uint64
	canceled   atomic.Uint64
	full       atomic.Uint64
	blocked    atomic.Int64
}

// NewChan returns a Chan buffering up to capacity values. capacity must be
// at least 1: there is no unbounded mode. The default overflow policy is
// Block.
func NewChan[T any](capacity int, opts ...ChanOption[T]) (*Chan[T], error) {
	if capacity < 1 {
		return nil, errors.New("changuard: NewChan: capacity must be >= 1 (there is no unbounded mode)")
	}
	c := &Chan[T]{
		ch:      make(chan T, capacity),
		closing: make(chan struct{}),
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// enter counts a sender in. It reports false if Close has run, in which
// case the sender has already been counted out again.
func (c *Chan[T]) enter() bool {
	if c.state.Add(inflightOne)&closedBit == 0 {
		return true
	}
	c.exit()
	return false
}

// exit counts a sender out. The sender that leaves a closed Chan with no
// sender in flight closes ch: every sender that passed enter before Close
// set closedBit is counted in state until it is done with ch, so when the
// count reaches zero after Close nobody can send on ch any more, and
// senders arriving later see closedBit in enter and never touch ch.
// Several transitions to zero are possible (late senders come and go), so
// closeData is guarded to run once.
func (c *Chan[T]) exit() {
	if c.state.Add(^uint64(inflightOne-1))&lowMask == closedBit {
		c.closeData()
	}
}

// exitSent is exit for a sender whose value was accepted: the same Add
// counts it in Sent. The in-flight count is at least one, so subtracting
// it never borrows from the Sent bits; a carry out of bit 63 is the
// intended wrap-around.
func (c *Chan[T]) exitSent() {
	n := c.state.Add(sentOne - inflightOne)
	if n&lowMask == closedBit {
		c.closeData()
	}
	if uint32(n>>32)&(1<<31-1) == 0 {
		c.sentHalves.Add(1)
	}
}

// sentCount rebuilds the 64-bit Sent counter. halves is read first, so it
// can only lag the state word: by at most one crossing, since the next one
// takes 2^31 sends. The parity of the number of crossings is bit 31 of the
// packed 32-bit field, which settles which of halves and halves+1 is right;
// every two crossings make one wrap of the field.
func (c *Chan[T]) sentCount() uint64 {
	halves := c.sentHalves.Load()
	lo := c.state.Load() >> 32
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
// or, if ctx ends first, an error wrapping context.Cause(ctx) (v is then
// not sent). Under Reject it returns ErrFull instead of waiting; under the
// Drop policies it never waits and returns nil.
func (c *Chan[T]) Send(ctx context.Context, v T) error {
	if !c.enter() {
		c.returned.Add(1)
		return &ClosedError[T]{Value: v}
	}
	blockhook.Unblock(c, blockhook.Value)
	// Fast path: room in the buffer. ctx is not consulted, so a Send with
	// room succeeds even if ctx is already done, as a plain channel send
	// in a select would.
	select {
	case c.ch <- v:
		c.exitSent()
		return nil
	default:
	}
	return c.sendFull(ctx, v)
}

// TrySend delivers v if there is room, without waiting and whatever the
// overflow policy: it returns nil, ErrFull, or a *ClosedError carrying v.
func (c *Chan[T]) TrySend(v T) error {
	if !c.enter() {
		c.returned.Add(1)
		return &ClosedError[T]{Value: v}
	}
	select {
	case c.ch <- v:
		c.exitSent()
		return nil
	default:
	}
	c.full.Add(1)
	c.rejected.Add(1)
	c.exit()
	return ErrFull
}

// sendFull is Send's slow path; the caller is counted in flight.
func (c *Chan[T]) sendFull(ctx context.Context, v T) error {
	c.full.Add(1)
	switch c.policy {
	case Reject:
		c.rejected.Add(1)
		c.exit()
		return ErrFull
	case DropNewest:
		c.dropped.Add(1)
		// Out of flight before running user code, so a slow onDrop never
		// holds up the closing of ch.
		c.exitSent()
		c.onDrop(v)
		return nil
	case DropOldest:
		return c.sendDropOldest(v)
	}

	c.blocked.Add(1)
	defer c.blocked.Add(-1)
	blockhook.Wait(c, blockhook.Room)
	select {
	case c.ch <- v:
		c.exitSent()
		return nil
	case <-c.closing:
		// A value that gets in before Close is still delivered (the select
		// may pick either ready case); one that does not comes back.
		c.returned.Add(1)
		c.exit()
		return &ClosedError[T]{Value: v}
	case <-ctx.Done():
		c.canceled.Add(1)
		c.exit()
		return ctxError("Chan.Send", ctx)
	}
}

// sendDropOldest evicts the oldest value until v fits. Each round either
// buffers v, evicts a value, or finds that a receiver made room: some
// goroutine always makes progress, and no round waits.
func (c *Chan[T]) sendDropOldest(v T) error {
	for {
		select {
		case c.ch <- v:
			c.exitSent()
			return nil
		default:
		}
		select {
		case old := <-c.ch:
			c.dropped.Add(1)
			// Leave flight to run onDrop (see DropNewest), then come back
			// in like a new sender: Close may have run meanwhile.
			c.exit()
			c.onDrop(old)
			if !c.enter() {
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
// first it returns an error wrapping context.Cause(ctx).
func (c *Chan[T]) Recv(ctx context.Context) (T, error) {
	blockhook.Unblock(c, blockhook.Room)
	select {
	case v, ok := <-c.ch:
		if ok {
			return v, nil
		}
		return v, ErrClosed
	default:
	}
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
		return zero, ctxError("Chan.Recv", ctx)
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

// Close closes the Chan. Senders waiting for room are released with a
// *ClosedError carrying their value; later sends get the same; receivers
// get the buffered values, then ErrClosed. Close never blocks, never
// panics, is safe to call concurrently with senders and with itself, and
// reports true only for the call that closed the Chan.
func (c *Chan[T]) Close() bool {
	old := c.state.Or(closedBit)
	if old&closedBit != 0 {
		return false
	}
	close(c.closing)
	// No sender was in flight: nobody else will see the count drop to
	// zero, so ch is closed here. Otherwise the last sender out does it.
	if old&lowMask == 0 {
		c.closeData()
	}
	return true
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
	if c.state.Load()&closedBit != 0 {
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
