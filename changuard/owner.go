package changuard

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/garrison-go/garrison/internal/panics"
)

// yieldRounds bounds how many times Call yields to the owner goroutine
// before it parks.
const yieldRounds = 2

// Owner confines a value of type T to one goroutine that it starts: other
// goroutines never touch the value, they send the owner functions to run on
// it (the actor model). Call runs a function and waits for its result; Post
// queues one without waiting. The mailbox is bounded, so a flood of work
// meets ErrFull or waits in Call under its ctx instead of growing memory.
//
// Functions run one at a time in mailbox order. A function must not Call
// or Stop the Owner that runs it: the owner would wait for itself until the
// ctx of that Call or Stop ends (forever, for a ctx that never ends). A
// panic in a function is recovered, so the owner goroutine keeps running
// (see Call and Post).
//
// Create Owners with NewOwner and Stop them when done: the goroutine runs
// until Stop, so an Owner that is never stopped keeps it alive (goleak
// reports it). The zero Owner is not usable.
type Owner[T any] struct {
	state   T // touched only by the owner goroutine until done is closed
	mailbox *Chan[ownerJob[T]]
	done    chan struct{}

	// replies recycles the 1-buffered channels on which jobs signal
	// completion. A channel goes back only after its token was received,
	// so a recycled channel is always empty.
	replies sync.Pool

	completed atomic.Uint64
	skipped   atomic.Uint64
	panics    atomic.Uint64
	lastPanic atomic.Pointer[PanicError]
}

// OwnerStats is a snapshot of an Owner's counters.
type OwnerStats struct {
	Queued    int    // jobs waiting in the mailbox now
	Completed uint64 // jobs whose function ran: it returned, panicked or called runtime.Goexit
	Skipped   uint64 // Calls whose ctx ended before their function started: never run
	Rejected  uint64 // Posts refused with ErrFull
	Panics    uint64 // functions that panicked, from Call and Post
	// LastPanic is the most recent panic of a Post function, which has no
	// caller to return it to (a Call returns its panic as an error). Nil
	// if none.
	LastPanic *PanicError
}

type ownerJob[T any] interface {
	// run runs the job on the owner goroutine and reports whether its
	// function ran.
	run(o *Owner[T]) bool
}

// NewOwner starts the goroutine owning init and returns the Owner. mailbox
// is the number of jobs that can wait to run, at least 1.
func NewOwner[T any](init T, mailbox int) (*Owner[T], error) {
	if mailbox < 1 {
		return nil, errors.New("changuard: NewOwner: mailbox must be >= 1 (an unbounded mailbox grows without limit)")
	}
	mb, err := NewChan[ownerJob[T]](mailbox)
	if err != nil {
		return nil, err
	}
	o := &Owner[T]{state: init, mailbox: mb, done: make(chan struct{})}
	go o.loop()
	return o, nil
}

// loop runs until the mailbox is closed and every job accepted before the
// close has run: ranging over RecvChan ends only after the last sender in
// flight at Close is done, so no job is left behind. Panics are recovered
// per job; a job that calls runtime.Goexit ends this goroutine, so a new
// one takes over the rest of the mailbox.
func (o *Owner[T]) loop() {
	normal := false
	defer func() {
		if normal {
			close(o.done)
		} else {
			// Only a function calling Goexit gets here: it ran, so it
			// counts as completed, like one that returned or panicked.
			o.completed.Add(1)
			go o.loop()
		}
	}()
	for j := range o.mailbox.RecvChan() {
		if j.run(o) {
			o.completed.Add(1)
		}
	}
	normal = true
}

type postJob[T any] func(*T)

func (f postJob[T]) run(o *Owner[T]) bool {
	returned := false
	defer func() {
		if !returned {
			pe := newPanicError("changuard: Post function", recover())
			o.panics.Add(1)
			o.lastPanic.Store(pe)
			// Nobody waits for a Post: the log is its only owner.
			panics.Report(pe)
		}
	}()
	f(&o.state)
	returned = true
	return true
}

const (
	callPending = iota
	callStarted
	callAbandoned
)

type callJob[T, R any] struct {
	f     func(*T) (R, error)
	phase atomic.Uint32
	done  chan struct{}
	r     R
	err   error
}

func (c *callJob[T, R]) run(o *Owner[T]) bool {
	if !c.phase.CompareAndSwap(callPending, callStarted) {
		o.skipped.Add(1)
		return false
	}
	returned := false
	defer func() {
		if !returned {
			o.panics.Add(1)
			c.err = newPanicError("changuard: Call function", recover())
		}
		c.done <- struct{}{}
	}()
	c.r, c.err = c.f(&o.state)
	returned = true
	return true
}

// Call runs f on o's goroutine with o's value and returns f's results.
// ctx bounds both the wait for room in the mailbox and the wait for the
// result:
//   - if ctx ends before f starts, f never runs, and the error wraps
//     context.Cause(ctx);
//   - if ctx ends while f runs, Call returns the same error at once; f runs
//     to completion on the owner, its changes to the value stay, and its
//     results are discarded.
//
// If f panics, Call returns a *PanicError (errors.Is(err, ErrPanic)) and
// the owner goroutine carries on. After Stop, Call returns ErrStopped.
func Call[T, R any](ctx context.Context, o *Owner[T], f func(*T) (R, error)) (R, error) {
	var zero R
	done, _ := o.replies.Get().(chan struct{})
	if done == nil {
		done = make(chan struct{}, 1)
	}
	c := &callJob[T, R]{f: f, done: done}
	if err := o.mailbox.Send(ctx, c); err != nil {
		o.replies.Put(done) // never queued, so never signalled
		if errors.Is(err, ErrClosed) {
			return zero, ErrStopped
		}
		return zero, ctxError("Owner.Call", ctx)
	}
	// Yield before parking: the owner goroutine was most likely readied
	// on this P by the send and runs a short f at once, after which a
	// plain check finds the result. That is two goroutine switches, where
	// parking in a two-case select costs a multiple of that.
	for range yieldRounds {
		runtime.Gosched()
		select {
		case <-done:
			o.replies.Put(done)
			return c.r, c.err
		default:
		}
	}
	select {
	case <-done:
		o.replies.Put(done)
		return c.r, c.err
	case <-ctx.Done():
	}
	if c.phase.CompareAndSwap(callPending, callAbandoned) {
		// The owner will skip f and never signal: done is reusable.
		o.replies.Put(done)
		return zero, ctxError("Owner.Call", ctx)
	}
	// f has started. If it has also finished, its result is as good as
	// the ctx error, and more useful.
	select {
	case <-done:
		o.replies.Put(done)
		return c.r, c.err
	default:
		// The reply channel is not recycled: f will still signal on it.
		return zero, ctxError("Owner.Call", ctx)
	}
}

// Post queues f to run on o's goroutine and returns without waiting: nil
// once f is queued, ErrFull if the mailbox is full, ErrStopped after Stop.
// A panic in f is recovered and recorded in Stats (Panics, LastPanic).
func (o *Owner[T]) Post(f func(*T)) error {
	err := o.mailbox.TrySend(postJob[T](f))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrClosed):
		return ErrStopped
	default:
		return err
	}
}

// Stop stops admission (later Calls and Posts get ErrStopped, and Calls
// waiting for room in the mailbox are released with ErrStopped), waits for
// every job queued before it to run, and returns the final value once the
// owner goroutine has exited. If ctx ends first, Stop returns an error
// wrapping context.Cause(ctx); the goroutine still runs the queue to the
// end and exits. Stop may be called more than once; every call that
// returns nil returns the same final value.
func (o *Owner[T]) Stop(ctx context.Context) (T, error) {
	o.mailbox.Close()
	select {
	case <-o.done:
		return o.state, nil
	case <-ctx.Done():
		var zero T
		return zero, ctxError("Owner.Stop", ctx)
	}
}

// Done returns a channel closed once the owner goroutine has exited after
// Stop.
func (o *Owner[T]) Done() <-chan struct{} { return o.done }

// Stats returns the Owner's counters.
func (o *Owner[T]) Stats() OwnerStats {
	return OwnerStats{
		Queued:    o.mailbox.Len(),
		Completed: o.completed.Load(),
		Skipped:   o.skipped.Load(),
		Rejected:  o.mailbox.Stats().Rejected,
		Panics:    o.panics.Load(),
		LastPanic: o.lastPanic.Load(),
	}
}
