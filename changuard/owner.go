package changuard

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/garrison-go/garrison/internal/blockhook"
	"github.com/garrison-go/garrison/internal/ctxerr"
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
// Functions run one at a time in mailbox order. A function must not Call,
// Shutdown or Close the Owner that runs it: the owner would wait for
// itself until the ctx of that Call or Shutdown ends (forever, for a ctx
// that never ends). A panic in a function is recovered, so the owner
// goroutine keeps running (see Call and Post).
//
// Create Owners with NewOwner and stop them when done, with Shutdown (run
// what is queued, then stop) or Close (discard what is queued, stop after
// the function running now): the goroutine runs until then, so an Owner
// that is never stopped keeps it alive (goleak reports it). The zero Owner
// is not usable.
type Owner[T any] struct {
	state   T // touched only by the owner goroutine until done is closed
	mailbox *Chan[ownerJob[T]]
	done    chan struct{}
	// discarding is set by Close before it closes the mailbox: the owner
	// then discards the jobs left in it instead of running them.
	discarding atomic.Bool

	completed atomic.Uint64
	skipped   atomic.Uint64
	discarded atomic.Uint64
	panics    atomic.Uint64
	lastPanic atomic.Pointer[PanicError]
}

// OwnerStats is a snapshot of an Owner's counters. Every job accepted into
// the mailbox ends in exactly one of Completed, Skipped and Discarded.
type OwnerStats struct {
	Queued    int    // jobs waiting in the mailbox now
	Completed uint64 // jobs whose function ran: it returned, panicked or called runtime.Goexit
	Skipped   uint64 // Calls whose ctx ended before their function started: never run
	Discarded uint64 // jobs left in the mailbox by Close: never run (their Calls got ErrStopped)
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
	// discard tells the job it will never run, and reports false if it
	// had been abandoned by its caller already.
	discard() bool
}

// NewOwner starts the goroutine owning init and returns the Owner. mailbox
// is the number of jobs that can wait to run: at least 1 (an unbounded
// mailbox grows without limit) and at most [MaxCapacity]; an error wrapping
// [ErrInvalidCapacity] says which bound was broken.
func NewOwner[T any](init T, mailbox int) (*Owner[T], error) {
	mb, err := newChan[ownerJob[T]]("NewOwner", mailbox)
	if err != nil {
		return nil, err
	}
	o := &Owner[T]{state: init, mailbox: mb, done: make(chan struct{})}
	go o.loop()
	return o, nil
}

// loop runs until the mailbox is closed and every job accepted before the
// close has run or been discarded: ranging over RecvChan ends only after
// the last sender in flight at Close is done, so no job is left behind.
// Panics are recovered per job; a job that calls runtime.Goexit ends this
// goroutine, so a new one takes over the rest of the mailbox.
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
		switch {
		case o.discarding.Load():
			if j.discard() {
				o.discarded.Add(1)
			} else {
				o.skipped.Add(1)
			}
		case j.run(o):
			o.completed.Add(1)
		}
	}
	normal = true
}

type postJob[T any] func(*T)

func (f postJob[T]) run(o *Owner[T]) (ran bool) {
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
	// Set before f: a panic recovered above still returns true, since f
	// ran.
	ran = true
	f(&o.state)
	returned = true
	return ran
}

func (f postJob[T]) discard() bool { return true }

// A callJob's phase is one of the four states below, plus callWaiting once
// the caller has stopped yielding and parked on wake. The owner moves it
// from callPending to callStarted and then callFinished; the caller moves
// it from callPending to callAbandoned when its ctx ends first. Each move
// is an atomic operation that checks the state it leaves, so exactly one
// side decides the job's fate.
const (
	callPending = iota
	callStarted
	callFinished
	callAbandoned
	callStateMask = 3
	callWaiting   = 4
)

type callJob[T, R any] struct {
	f     func(*T) (R, error)
	phase atomic.Uint32
	wake  chan struct{} // set by the caller before it sets callWaiting
	r     R
	err   error
}

func (c *callJob[T, R]) run(o *Owner[T]) (ran bool) {
	if !c.start() {
		o.skipped.Add(1)
		return false
	}
	returned := false
	defer func() {
		if !returned {
			o.panics.Add(1)
			c.err = newPanicError("changuard: Call function", recover())
		}
		blockhook.End(o, blockhook.Done)
		c.finish()
	}()
	ran = true
	blockhook.Begin(o, blockhook.Done)
	c.r, c.err = c.f(&o.state)
	returned = true
	return true
}

// start moves the job from pending to started, keeping callWaiting, and
// reports false if the caller abandoned it first.
func (c *callJob[T, R]) start() bool {
	for {
		p := c.phase.Load()
		if p&callStateMask != callPending {
			return false
		}
		if c.phase.CompareAndSwap(p, p+callStarted) {
			return true
		}
	}
}

// finish publishes the result. r and err are written before the Add, and
// the caller reads them only after seeing callFinished, so it sees them.
// Only the caller's setting of callWaiting can race with the Add (the
// caller cannot abandon a started job), and it is a CAS that fails and
// retries; if it came first, the caller is parked and is woken here.
func (c *callJob[T, R]) finish() {
	if c.phase.Add(callFinished-callStarted)&callWaiting != 0 {
		close(c.wake)
	}
}

func (c *callJob[T, R]) discard() bool {
	if !c.start() {
		return false
	}
	c.err = ErrStopped
	c.finish()
	return true
}

// Call runs f on o's goroutine with o's value and returns f's results.
// ctx bounds both the wait for room in the mailbox and the wait for the
// result:
//   - if ctx ends before f starts, f never runs, and the error matches
//     ctx.Err() and context.Cause(ctx);
//   - if ctx ends while f runs, Call returns the same error at once; f runs
//     to completion on the owner, its changes to the value stay, and its
//     results are discarded.
//
// A ctx already done, or nil, fails Call at once and f never runs (the
// rule of [Chan]). If f panics, Call returns a *PanicError
// (errors.Is(err, ErrPanic)) and the owner goroutine carries on. After
// Shutdown or Close, or if Close discarded f before it ran, Call returns
// ErrStopped. A nil f is an error.
func Call[T, R any](ctx context.Context, o *Owner[T], f func(*T) (R, error)) (R, error) {
	var zero R
	if f == nil {
		return zero, errors.New("changuard: Call: nil function")
	}
	c := &callJob[T, R]{f: f}
	blockhook.Wait(o, blockhook.Done)
	if err := o.mailbox.Send(ctx, c); err != nil {
		if errors.Is(err, ErrClosed) {
			return zero, ErrStopped
		}
		return zero, fmt.Errorf("changuard: Owner.Call: %w", errors.Unwrap(err))
	}
	// Yield before parking: the owner goroutine was most likely readied
	// on this P by the send and runs a short f at once, after which one
	// atomic load finds the result. That is two goroutine switches and no
	// channel operation, where parking costs a multiple of that.
	for range yieldRounds {
		runtime.Gosched()
		if c.phase.Load()&callStateMask == callFinished {
			return c.r, c.err
		}
	}
	return c.wait(ctx)
}

// wait parks the caller until the job finishes or ctx ends. It is the one
// place where a Call blocks after its job is queued.
func (c *callJob[T, R]) wait(ctx context.Context) (R, error) {
	var zero R
	c.wake = make(chan struct{})
	for {
		p := c.phase.Load()
		if p&callStateMask == callFinished {
			return c.r, c.err
		}
		if c.phase.CompareAndSwap(p, p|callWaiting) {
			break
		}
	}
	select {
	case <-c.wake:
		return c.r, c.err
	case <-ctx.Done():
	}
	if c.phase.CompareAndSwap(callPending|callWaiting, callAbandoned|callWaiting) {
		// The owner will skip f.
		return zero, fmt.Errorf("changuard: Owner.Call: %w", ctxerr.Err(ctx))
	}
	// f has started. If it has also finished, its result is as good as
	// the ctx error, and more useful.
	if c.phase.Load()&callStateMask == callFinished {
		return c.r, c.err
	}
	return zero, fmt.Errorf("changuard: Owner.Call: %w", ctxerr.Err(ctx))
}

// Post queues f to run on o's goroutine and returns without waiting: nil
// once f is queued, ErrFull if the mailbox is full, ErrStopped after
// Shutdown or Close. A panic in f is recovered and recorded in Stats
// (Panics, LastPanic). A nil f is an error.
func (o *Owner[T]) Post(f func(*T)) error {
	if f == nil {
		return errors.New("changuard: Owner.Post: nil function")
	}
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

// Shutdown stops o gracefully: it stops admission (later Calls and Posts
// get ErrStopped, and Calls waiting for room in the mailbox are released
// with ErrStopped), waits for every job queued before it to run, and
// returns nil once the owner goroutine has exited; Final then returns the
// final value. If ctx ends first, Shutdown returns an error matching
// ctx.Err() and context.Cause(ctx); the goroutine still runs the queue to
// the end and exits. A ctx already done, or nil, fails Shutdown at once
// without stopping anything. Shutdown may be called more than once, and
// after Close.
func (o *Owner[T]) Shutdown(ctx context.Context) error {
	if err := ctxerr.Check(ctx); err != nil {
		return fmt.Errorf("changuard: Owner.Shutdown: %w", err)
	}
	_ = o.mailbox.Close() // ErrClosed only says an earlier call did it
	select {
	case <-o.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("changuard: Owner.Shutdown: %w", ctxerr.Err(ctx))
	}
}

// Close stops o immediately: it stops admission like Shutdown, and the
// jobs still queued are discarded instead of run (their Calls return
// ErrStopped, and Stats counts them in Discarded). The function running
// now, if any, runs to its end, since nothing can stop it safely; the
// goroutine exits after it, and Done is closed then. Close does not wait
// for that: use Shutdown or Done to. It is idempotent and returns nil.
func (o *Owner[T]) Close() error {
	// discarding is set before the mailbox closes, so the owner sees it
	// for every job it takes after admission stopped.
	o.discarding.Store(true)
	_ = o.mailbox.Close()
	return nil
}

// Done returns a channel closed once the owner goroutine has exited after
// Shutdown or Close.
func (o *Owner[T]) Done() <-chan struct{} { return o.done }

// Final returns the value once the owner goroutine has exited after
// Shutdown or Close, or ErrRunning before: only then is the value no
// longer the goroutine's.
func (o *Owner[T]) Final() (T, error) {
	select {
	case <-o.done:
		return o.state, nil
	default:
		var zero T
		return zero, ErrRunning
	}
}

// Stats returns the Owner's counters.
func (o *Owner[T]) Stats() OwnerStats {
	return OwnerStats{
		Queued:    o.mailbox.Len(),
		Completed: o.completed.Load(),
		Skipped:   o.skipped.Load(),
		Discarded: o.discarded.Load(),
		Rejected:  o.mailbox.Stats().Rejected,
		Panics:    o.panics.Load(),
		LastPanic: o.lastPanic.Load(),
	}
}
