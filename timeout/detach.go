package timeout

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/garrison-go/garrison/internal/panics"
)

// Detacher runs functions that may not honour their context, returning to
// the caller at the deadline while fn keeps running on its own goroutine.
// Unlike the usual goroutine-and-select wrapper, which forgets fn at the
// deadline and so lets stuck work pile up without bound, a Detacher counts
// every fn until it really returns and refuses new calls when the count
// reaches its cap.
//
// A call holds one of the Detacher's slots from the moment its fn starts
// until fn returns, whether or not the caller is still waiting. Counting
// calls that are still in time is what makes the cap a guarantee: any of
// them may be abandoned a moment later, and the caller must then be able
// to return at once. So at most maxRunning fns run at once, and the
// number of abandoned ones, a subset of them, never exceeds it either.
//
// Stop a Detacher with Shutdown (refuse new calls, wait for every fn to
// return) or Close (refuse new calls, return at once).
//
// Use NewDetacher; the zero Detacher rejects every call with an error
// wrapping ErrInvalid. A Detacher is safe for concurrent use.
type Detacher struct {
	max int64
	// held is the number of fns running, plus detacherClosed once
	// Shutdown or Close has begun: one word, so that no call can take a
	// slot after a Shutdown has seen the count reach zero.
	held      atomic.Int64
	abandoned atomic.Int64

	waiters atomic.Int32
	mu      sync.Mutex
	idle    chan struct{} // closed when no fn runs; nil when nobody waits

	completed   atomic.Uint64
	timedOut    atomic.Uint64
	rejected    atomic.Uint64
	canceled    atomic.Uint64
	lateReturns atomic.Uint64
}

// DetacherStats is a snapshot of a Detacher's counters. Every call that
// passed validation is counted once in Completed, TimedOut, Rejected or
// Canceled; every TimedOut call is in Abandoned until its fn returns, and
// in LateReturns after.
type DetacherStats struct {
	Max         int    // the cap given to NewDetacher
	Running     int    // fns that have not returned, abandoned or not
	Abandoned   int    // fns still running whose caller has returned
	Completed   uint64 // calls that returned what fn returned
	TimedOut    uint64 // calls that returned at a deadline or cancellation, abandoning fn
	Rejected    uint64 // calls refused with ErrTooManyRunning or ErrClosed
	Canceled    uint64 // calls not started because ctx was already done
	LateReturns uint64 // abandoned fns that have since returned
}

// PanicError carries a panic out of a detached fn. A Detacher re-panics
// with a *PanicError on the caller's goroutine if the caller is still
// waiting, and on fn's own goroutine if fn was abandoned, exactly as an
// unrecovered panic in a plain goroutine would: it is never swallowed. If
// fn calls runtime.Goexit while its caller waits, the caller panics with
// a *PanicError too, since it has no result to return. It matches ErrPanic
// with errors.Is, and is one type with spawn.PanicError and
// changuard.PanicError: garrison has one panic policy, documented on
// spawn.PanicError.
type PanicError = panics.Error

// ErrPanic is matched (errors.Is) by every *PanicError. It is the same
// value as spawn.ErrPanic and changuard.ErrPanic.
var ErrPanic = panics.ErrPanic

var errGoexit = panics.ErrGoexit

// detacherClosed is the bit of Detacher.held set by Shutdown and Close,
// far above any count of running fns.
const detacherClosed = 1 << 62

// NewDetacher returns a Detacher that lets at most maxRunning fns run at
// once, abandoned or not: the cap on running calls is also the cap on
// abandoned ones. maxRunning must be positive and at most 1<<40.
func NewDetacher(maxRunning int) (*Detacher, error) {
	if maxRunning <= 0 || maxRunning > 1<<40 {
		return nil, invalid("timeout.NewDetacher: maxRunning %d is not in [1, 1<<40]", maxRunning)
	}
	return &Detacher{max: int64(maxRunning)}, nil
}

const (
	callRunning int32 = iota
	callReturned
	callAbandoned
)

// detachedCall is shared by the caller and fn's goroutine. state decides,
// exactly once, which of them owns the outcome: the caller, which reads
// err and panic, when fn returns first (callReturned); the goroutine,
// which keeps the slot, when the context ends first (callAbandoned).
type detachedCall struct {
	state atomic.Int32
	err   error
	panic *PanicError
}

// Run calls fn on a new goroutine with a context that expires after
// timeout and waits for whichever comes first: fn returning, or the
// context ending. In the first case it returns what Run would (an *Error
// if fn failed after the deadline). In the second it returns at once,
// without waiting for fn: an *Error naming the operation if timeout
// passed, or an error wrapping context.Cause(ctx) if ctx ended first;
// fn's slot stays taken until fn returns.
//
// If every slot is taken, Run returns an error wrapping ErrTooManyRunning
// without starting fn, and after Shutdown or Close one wrapping ErrClosed.
// If ctx is already done, fn is not started. A nil ctx or fn, or a timeout
// that is not positive, is rejected with an error wrapping ErrInvalid (and
// ErrNilContext for the ctx).
func (d *Detacher) Run(ctx context.Context, timeout time.Duration, fn func(context.Context) error, opts ...Option) error {
	if fn == nil {
		return invalid("timeout.Detacher.Run: nil fn")
	}
	if d.max <= 0 {
		return invalid("timeout.Detacher.Run: zero Detacher, use NewDetacher")
	}
	if ctx == nil {
		return nilContext("timeout.Detacher.Run")
	}
	if timeout <= 0 {
		return invalid("timeout.Detacher.Run: duration %v is not positive", timeout)
	}
	if ctx.Err() != nil {
		d.canceled.Add(1)
		return ctxError(ctx)
	}
	if err := d.acquire(); err != nil {
		d.rejected.Add(1)
		return err
	}
	tctx, cancel, cause, err := begin(ctx, timeout, opts, "timeout.Detacher.Run")
	if err != nil {
		d.release()
		d.canceled.Add(1)
		return err
	}
	defer cancel()

	// The goroutine cancels tctx once fn returns, so one channel wakes
	// the caller for all three outcomes (fn returned, deadline, parent
	// done) and the call needs no channel of its own. state tells which.
	c := new(detachedCall)
	go d.exec(c, tctx, cancel, cause, fn)
	<-tctx.Done()
	if c.state.CompareAndSwap(callRunning, callAbandoned) {
		// The goroutine now owns the slot and gives it back when fn
		// returns. It may decrement abandoned before this increment;
		// Abandoned clamps that brief undercount.
		d.abandoned.Add(1)
		d.timedOut.Add(1)
		if context.Cause(tctx) == error(cause) {
			return expired(tctx, cause, nil)
		}
		return ctxError(tctx)
	}
	// The failed swap read callReturned, which the goroutine stored after
	// writing err and panic: they are visible here.
	d.completed.Add(1)
	if c.panic != nil {
		panic(c.panic)
	}
	return c.err
}

// acquire takes a slot if one is free and the Detacher is open. A
// compare-and-swap rather than an add-then-undo keeps the count exact, so
// Stats never shows more running fns than the cap, even for an instant.
func (d *Detacher) acquire() error {
	for {
		n := d.held.Load()
		if n&detacherClosed != 0 {
			return fmt.Errorf("%w: Run after Shutdown or Close", ErrClosed)
		}
		if n >= d.max {
			return fmt.Errorf("%w: all %d slots are held by fns that have not returned (%d abandoned)",
				ErrTooManyRunning, d.max, d.Abandoned())
		}
		if d.held.CompareAndSwap(n, n+1) {
			return nil
		}
	}
}

// release gives a slot back and wakes Wait if it was the last one.
// Wait counts itself in waiters before it reads held, and release reads
// waiters after it writes held, so either Wait sees the slot given back
// or release sees the waiter: a wake-up cannot be lost.
func (d *Detacher) release() {
	if d.held.Add(-1)&^detacherClosed == 0 && d.waiters.Load() > 0 {
		d.mu.Lock()
		if d.idle != nil && d.held.Load()&^detacherClosed == 0 {
			close(d.idle)
			d.idle = nil
		}
		d.mu.Unlock()
	}
}

// Wait blocks until no fn started by the Detacher is running, abandoned or
// not, or until ctx is done, in which case it returns an error matching
// ctx.Err() and context.Cause(ctx). Calls started while Wait blocks are
// waited for too, since Wait does not stop admission (Shutdown does). A
// ctx already done fails Wait at once; a nil ctx is rejected with an error
// wrapping ErrInvalid and ErrNilContext.
func (d *Detacher) Wait(ctx context.Context) error {
	if ctx == nil {
		return nilContext("timeout.Detacher.Wait")
	}
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	d.waiters.Add(1)
	defer d.waiters.Add(-1)
	d.mu.Lock()
	if d.held.Load()&^detacherClosed == 0 {
		d.mu.Unlock()
		return nil
	}
	if d.idle == nil {
		d.idle = make(chan struct{})
	}
	idle := d.idle
	d.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctxError(ctx)
	}
}

// Shutdown stops d gracefully: later calls of Run fail with ErrClosed,
// and Shutdown waits until every fn started before, abandoned or not, has
// returned, or until ctx is done, in which case it returns an error
// matching ctx.Err() and context.Cause(ctx) and the fns go on. A ctx
// already done fails Shutdown at once without closing d; a nil ctx is
// rejected with an error wrapping ErrInvalid and ErrNilContext. Shutdown
// may be called more than once, and after Close.
func (d *Detacher) Shutdown(ctx context.Context) error {
	if ctx == nil {
		return nilContext("timeout.Detacher.Shutdown")
	}
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	d.held.Or(detacherClosed)
	return d.Wait(ctx)
}

// Close stops d immediately: later calls of Run fail with ErrClosed, and
// Close returns without waiting for the fns still running (Stats shows
// them; Wait or Shutdown waits for them). It is idempotent and returns
// nil.
func (d *Detacher) Close() error {
	d.held.Or(detacherClosed)
	return nil
}

func (d *Detacher) exec(c *detachedCall, ctx context.Context, cancel context.CancelFunc, cause *Error, fn func(context.Context) error) {
	returned := false
	defer func() {
		goexit := false
		if !returned {
			// Since Go 1.21 panic(nil) recovers as a *runtime.PanicNilError,
			// so nil here means fn called runtime.Goexit.
			v := recover()
			goexit = v == nil
			c.panic = panics.New("timeout: detached fn", v)
		}
		if c.state.CompareAndSwap(callRunning, callReturned) {
			d.release()
			cancel()
			return
		}
		d.abandoned.Add(-1)
		d.release()
		d.lateReturns.Add(1)
		if c.panic != nil && !goexit {
			panic(c.panic)
		}
	}()
	// The result is judged here, before cancel hides whether the deadline
	// had passed when fn returned.
	c.err = end(ctx, cause, fn(ctx))
	returned = true
}

// Abandoned returns the number of fns still running after their caller
// returned at a deadline or cancellation.
func (d *Detacher) Abandoned() int {
	return int(max(d.abandoned.Load(), 0))
}

// Stats returns a snapshot of the Detacher's counters. The fields are read
// one by one, so under load they may be off by the calls in flight.
func (d *Detacher) Stats() DetacherStats {
	return DetacherStats{
		Max:         int(d.max),
		Running:     int(max(d.held.Load()&^detacherClosed, 0)),
		Abandoned:   d.Abandoned(),
		Completed:   d.completed.Load(),
		TimedOut:    d.timedOut.Load(),
		Rejected:    d.rejected.Load(),
		Canceled:    d.canceled.Load(),
		LateReturns: d.lateReturns.Load(),
	}
}
