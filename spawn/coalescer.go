package spawn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/garrison-go/garrison/internal/ctxerr"
	"github.com/garrison-go/garrison/internal/panics"
)

// Coalescer defends against request stampedes: when many callers ask for
// the same expensive result at once (10,000 identical requests for a cold
// cache entry), the work runs once and every caller gets its result. It is
// golang.org/x/sync/singleflight.Group made context-aware and bounded:
//
//   - A caller whose ctx ends leaves at once with its ctx error; the shared
//     work goes on for the callers still waiting, and its context is
//     canceled only when every caller has left.
//   - At most maxKeys executions are in flight at once, abandoned ones
//     included; a call that would start another gets ErrSaturated.
//   - A panic (or runtime.Goexit) in fn reaches every waiting caller as a
//     *PanicError; if every caller has left, it is logged (see PanicError).
//
// The zero value is not usable: create one with NewCoalescer. All methods
// are safe for concurrent use. In tests, give each testing/synctest bubble
// its own Coalescer, as it has its own channels: a caller that joins an
// execution started on the other side of a bubble's boundary waits on a
// channel or WaitGroup that the other side closes or releases, which the
// runtime treats as a fatal error.
type Coalescer[T any] struct {
	maxKeys int

	mu         sync.Mutex
	calls      map[string]*coalescedCall[T]
	inFlight   int   // executions running, abandoned ones included
	executions int64 // counted under mu, which the calls hold anyway
	joined     int64

	left, rejected, panicked atomic.Int64 // off the hot path
}

// coalescedCall is one execution of fn and the callers waiting for it.
// fn's context is not kept here: exec gets it as an argument, and what a
// cancelable execution needs besides lives in the cancelableCall around
// it, so that an execution on a caller that cannot leave (the
// singleflight case) allocates 80 bytes, as singleflight's call does, not
// 112.
type coalescedCall[T any] struct {
	cancel context.CancelCauseFunc // nil when fn runs on a caller that cannot leave

	// ready is what callers that cannot leave wait on, without a channel.
	// Callers that can leave wait on done, made by the first of them.
	// ready counts one only once the first joiner that cannot leave arms
	// it, so an execution nobody joins, the common case, pays no atomic
	// operation for it.
	// done, waiters, dups, over, armed and gone are guarded by the
	// Coalescer's mu.
	ready   sync.WaitGroup
	done    chan struct{}
	waiters int  // callers still waiting
	dups    int  // callers that joined the first one
	over    bool // the execution has ended; val and err are set
	shared  bool // next to over, so that the flags share a word
	armed   bool // ready counts one: the execution has a joiner waiting on it
	gone    bool // no longer in the Coalescer's map (every caller left)

	val T
	err error
}

// cancelableCall is a coalescedCall whose fn runs on a goroutine of its
// own: values is the parent of fn's context, under the WithCancelCause
// context that cancel ends.
type cancelableCall[T any] struct {
	coalescedCall[T]
	values valuesOnly
}

// valuesOnly is context.WithoutCancel without its allocation: the values
// of parent, never done. It lives in the cancelableCall, under the
// WithCancelCause context that fn gets, which answers context.Cause for
// everything below it, so the parent's cancellation never shows through.
type valuesOnly struct{ parent context.Context }

func (*valuesOnly) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*valuesOnly) Done() <-chan struct{}       { return nil }
func (*valuesOnly) Err() error                  { return nil }
func (v *valuesOnly) Value(key any) any         { return v.parent.Value(key) }

func (v *valuesOnly) String() string {
	if s, ok := v.parent.(fmt.Stringer); ok {
		return s.String() + ".WithoutCancel"
	}
	return "context.WithoutCancel"
}

// CoalescerStats is a snapshot of a Coalescer's counters and gauges. Every
// call of Do is counted in Calls and in exactly one of Executions (it
// started fn), Joined (it joined an execution in flight) or Rejected
// (ErrSaturated, a nil or done ctx, a nil fn): Calls is their sum.
type CoalescerStats struct {
	Calls      int64
	Executions int64
	Joined     int64
	Rejected   int64
	// Left counts callers (starting or joined) whose ctx ended before the
	// result was ready.
	Left int64
	// Panicked counts executions of fn that panicked or called
	// runtime.Goexit.
	Panicked int64
	// InFlight is the number of executions running now, abandoned ones
	// included (at most maxKeys).
	InFlight int
	// Keys is the number of keys callers can join now.
	Keys int
}

// ErrAbandoned is the context cause of a coalesced execution whose callers
// have all left.
var ErrAbandoned = errors.New("spawn: every caller of the coalesced call left")

var (
	errCoalescerFull = fmt.Errorf("%w: Coalescer has maxKeys executions in flight", ErrSaturated)
	errNilCoalescer  = errors.New("spawn: nil or zero Coalescer: create it with NewCoalescer")
	errNilFunc       = errors.New("spawn: nil function")
)

// NewCoalescer returns a Coalescer that runs at most maxKeys executions at
// once (1 to 1<<22), or an error for a maxKeys out of range.
func NewCoalescer[T any](maxKeys int) (*Coalescer[T], error) {
	if err := checkSize("NewCoalescer maxKeys", maxKeys, 1); err != nil {
		return nil, err
	}
	return &Coalescer[T]{maxKeys: maxKeys, calls: make(map[string]*coalescedCall[T])}, nil
}

// Do returns the result of fn for key, running fn only if no execution for
// key is in flight, and otherwise waiting for that execution's result;
// shared reports whether the result went to more than one caller. It
// returns when the result is ready, or, with the zero value and ctx's error
// wrapping context.Cause(ctx), as soon as ctx is done (a ctx already done
// fails at once). It returns ErrSaturated when fn would start while maxKeys
// executions are in flight, and ErrNilContext or an error for a nil fn or
// Coalescer.
//
// fn's context carries the values of the ctx of the caller that started
// it, not its cancellation: it is canceled, with cause ErrAbandoned, only
// once every caller has left. fn runs on a goroutine of its own, except
// when the starting caller's ctx can never end (its Done is nil, as for
// context.Background()), in which case it runs on that caller, as with
// singleflight. An execution whose callers all left still counts against
// maxKeys until fn returns, but a new call for its key starts afresh.
func (c *Coalescer[T]) Do(ctx context.Context, key string, fn func(context.Context) (T, error)) (v T, shared bool, err error) {
	var zero T
	if c == nil || c.maxKeys == 0 {
		return zero, false, errNilCoalescer
	}
	if err := ctxerr.Check(ctx); err != nil {
		c.rejected.Add(1)
		return zero, false, err
	}
	if fn == nil {
		c.rejected.Add(1)
		return zero, false, errNilFunc
	}
	c.mu.Lock()
	if cl, ok := c.calls[key]; ok {
		cl.waiters++
		cl.dups++
		c.joined++
		if ctx.Done() == nil {
			// This caller cannot leave: no channel needed.
			if !cl.armed {
				cl.armed = true
				cl.ready.Add(1)
			}
			c.mu.Unlock()
			cl.ready.Wait()
			return cl.val, true, cl.err
		}
		if cl.done == nil {
			cl.done = make(chan struct{})
		}
		c.mu.Unlock()
		return c.wait(ctx, key, cl)
	}
	if c.inFlight >= c.maxKeys {
		c.mu.Unlock()
		c.rejected.Add(1)
		return zero, false, errCoalescerFull
	}
	c.inFlight++
	c.executions++
	if ctx.Done() == nil {
		// This caller can never leave, so the call always has a waiter
		// and is never canceled: run fn here and save a goroutine.
		cl := &coalescedCall[T]{waiters: 1}
		c.calls[key] = cl
		c.mu.Unlock()
		c.exec(ctx, key, cl, fn)
		return cl.val, cl.shared, cl.err
	}
	cc := &cancelableCall[T]{coalescedCall: coalescedCall[T]{waiters: 1, done: make(chan struct{})}}
	cl := &cc.coalescedCall
	c.calls[key] = cl
	cc.values.parent = ctx
	fnCtx, cancel := context.WithCancelCause(&cc.values)
	cl.cancel = cancel
	c.mu.Unlock()
	go c.exec(fnCtx, key, cl, fn)
	return c.wait(ctx, key, cl)
}

// exec runs fn with ctx for cl and publishes its result to the waiting
// callers.
func (c *Coalescer[T]) exec(ctx context.Context, key string, cl *coalescedCall[T], fn func(context.Context) (T, error)) {
	returned := false
	defer func() {
		var pe *PanicError
		if !returned {
			pe = panics.New("spawn: Coalescer function", recover())
			cl.err = pe
			c.panicked.Add(1)
		}
		c.mu.Lock()
		if !cl.gone {
			// Not removed by the last caller leaving, so key still maps
			// to cl (no new call for key could start meanwhile).
			delete(c.calls, key)
		}
		c.inFlight--
		cl.shared = cl.dups > 0
		cl.over = true
		armed, done, orphan := cl.armed, cl.done, cl.waiters == 0
		c.mu.Unlock()
		// Removed from the map and marked over under mu, so no caller
		// joins after this point; those that joined before wait on
		// ready or on done, which publish val and err to them.
		if armed {
			cl.ready.Done()
		}
		if done != nil {
			close(done)
		}
		if cl.cancel != nil {
			cl.cancel(context.Canceled)
		}
		if pe != nil && orphan {
			panics.Report(pe)
		}
	}()
	cl.val, cl.err = fn(ctx)
	returned = true
}

// wait waits for cl's result or for ctx to end.
func (c *Coalescer[T]) wait(ctx context.Context, key string, cl *coalescedCall[T]) (T, bool, error) {
	var zero T
	select {
	case <-cl.done:
		return cl.val, cl.shared, cl.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	if cl.over {
		// The result arrived as ctx ended: take it.
		c.mu.Unlock()
		<-cl.done
		return cl.val, cl.shared, cl.err
	}
	cl.waiters--
	last := cl.waiters == 0
	if last {
		// Nobody waits for this execution any more: a new call for key
		// starts afresh rather than joining work that is being canceled.
		// cl is still in the map: it leaves it only here or when over,
		// and a caller joins no execution that has left it.
		delete(c.calls, key)
		cl.gone = true
	}
	c.mu.Unlock()
	c.left.Add(1)
	if last {
		cl.cancel(ErrAbandoned)
	}
	return zero, false, ctxError(ctx)
}

// Stats returns a snapshot of c's counters and gauges. It does not block
// for long.
func (c *Coalescer[T]) Stats() CoalescerStats {
	if c == nil {
		return CoalescerStats{}
	}
	c.mu.Lock()
	inFlight, keys, executions, joined := c.inFlight, len(c.calls), c.executions, c.joined
	c.mu.Unlock()
	rejected := c.rejected.Load()
	return CoalescerStats{
		Calls:      executions + joined + rejected,
		Executions: executions,
		Joined:     joined,
		Left:       c.left.Load(),
		Rejected:   rejected,
		Panicked:   c.panicked.Load(),
		InFlight:   inFlight,
		Keys:       keys,
	}
}
