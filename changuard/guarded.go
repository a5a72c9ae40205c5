package changuard

import (
	"context"
	"errors"
	"fmt"

	"github.com/garrison-go/garrison/internal/ctxerr"
	"github.com/garrison-go/garrison/internal/ctxlock"
)

// Guarded holds a value of type T that can only be reached while its lock
// is held: With and WithResult lend a *T to a callback under the exclusive
// lock, Read lends a copy under the shared lock, and WithContext bounds the
// wait for the lock by a ctx, which sync.Mutex cannot do.
//
// The zero Guarded is usable and holds the zero T. A Guarded must not be
// copied after first use. Callbacks must not keep the *T past their return
// (see the package doc) and must not call back into the same Guarded: the
// lock is not reentrant, as with sync.Mutex.
//
// The lock is the one lockorder.TimedMutex uses, with sync.Mutex's
// fairness: a running writer may take a just-released lock ahead of a
// parked one (avoiding a convoy), but a woken writer loses at most once in
// a row, and readers never pass queued writers.
type Guarded[T any] struct {
	l ctxlock.RW
	v T
}

// GuardedStats is a snapshot of a Guarded's lock counters.
type GuardedStats struct {
	Contended uint64 // acquisitions that had to wait
	Canceled  uint64 // WithContext calls that gave up because their ctx ended
	Waiting   int    // goroutines waiting for the lock now
}

// NewGuarded returns a Guarded holding v.
func NewGuarded[T any](v T) *Guarded[T] {
	return &Guarded[T]{v: v}
}

// With runs f with exclusive access to the value, waiting for the lock as
// long as it takes (WithContext bounds the wait). If f panics, the lock is
// released and the panic continues in the caller.
func (g *Guarded[T]) With(f func(*T)) {
	g.l.Lock(false)
	defer g.l.Unlock()
	f(&g.v)
}

// WithContext is With with a bounded wait: if ctx ends before the lock is
// acquired, f is not run and the error matches both ctx.Err() and
// context.Cause(ctx). A ctx that is already done fails at once, even if the
// lock is free (the context ended before the call, so the call prefers to
// fail, as x/sync's semaphore does); a nil ctx is an error matching
// [ErrNilContext]. A lock handed over just as ctx ends is kept. Once the
// lock is acquired f runs to completion even if ctx ends meanwhile (f can
// watch ctx itself). A nil f is an error.
func (g *Guarded[T]) WithContext(ctx context.Context, f func(*T)) error {
	if err := ctxerr.Check(ctx); err != nil {
		return wrapCtx("Guarded.WithContext", err)
	}
	if f == nil {
		return errors.New("changuard: Guarded.WithContext: nil function")
	}
	if !g.l.LockWait(false, ctx.Done(), nil) {
		return wrapCtx("Guarded.WithContext", ctxerr.Err(ctx))
	}
	defer g.l.Unlock()
	f(&g.v)
	return nil
}

// TryWith runs f with exclusive access and reports true if the lock is free
// right now; otherwise it returns false without running f.
func (g *Guarded[T]) TryWith(f func(*T)) bool {
	if !g.l.TryLock() {
		return false
	}
	defer g.l.Unlock()
	f(&g.v)
	return true
}

// Read runs f with a copy of the value under the shared lock: readers run
// concurrently with each other but not with With. The copy is shallow:
// maps, slices and pointers inside T still reach the guarded data, so f
// must only read through them. If f panics, the lock is released and the
// panic continues in the caller.
func (g *Guarded[T]) Read(f func(T)) {
	g.l.RLock()
	defer g.l.RUnlock()
	f(g.v)
}

// WithResult runs f with exclusive access to g's value and returns what f
// returns. It is With for callbacks that compute a result.
func WithResult[T, R any](g *Guarded[T], f func(*T) R) R {
	g.l.Lock(false)
	defer g.l.Unlock()
	return f(&g.v)
}

// Stats returns the lock's counters.
func (g *Guarded[T]) Stats() GuardedStats {
	s := g.l.Stats()
	return GuardedStats{Contended: s.Contended, Canceled: s.Canceled, Waiting: s.Waiting}
}

// wrapCtx names the operation in a ctx error from ctxerr, which keeps
// both ctx.Err() and context.Cause(ctx) visible to errors.Is.
func wrapCtx(op string, err error) error {
	return fmt.Errorf("changuard: %s: %w", op, err)
}
