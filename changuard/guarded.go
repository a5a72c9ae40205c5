package changuard

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// multicore is read once: GOMAXPROCS changes after start-up only cost a
// few wasted polls or a few early parks.
var multicore = runtime.GOMAXPROCS(0) > 1

// Guarded holds a value of type T that can only be reached while its lock
// is held: With and WithResult lend a *T to a callback under the exclusive
// lock, Read lends a copy under the shared lock, and WithContext bounds the
// wait for the lock by a ctx, which sync.Mutex cannot do.
//
// The zero Guarded is usable and holds the zero T. A Guarded must not be
// copied after first use. Callbacks must not keep the *T past their return
// (see the package doc) and must not call back into the same Guarded: the
// lock is not reentrant, as with sync.Mutex.
type Guarded[T any] struct {
	l rwlock
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
	g.l.lock()
	defer g.l.unlock()
	f(&g.v)
}

// WithContext is With with a bounded wait: if ctx ends before the lock is
// acquired, f is not run and the error wraps context.Cause(ctx). As with
// x/sync's semaphore, a lock that is free is taken even if ctx is already
// done, and a lock handed over just as ctx ends is kept. Once the lock is
// acquired f runs to completion even if ctx ends meanwhile (f can watch
// ctx itself).
func (g *Guarded[T]) WithContext(ctx context.Context, f func(*T)) error {
	if !g.l.state.CompareAndSwap(0, wLocked) {
		if err := g.l.lockSlow(ctx, true); err != nil {
			return err
		}
	}
	defer g.l.unlock()
	f(&g.v)
	return nil
}

// TryWith runs f with exclusive access and reports true if the lock is free
// right now; otherwise it returns false without running f.
func (g *Guarded[T]) TryWith(f func(*T)) bool {
	if !g.l.state.CompareAndSwap(0, wLocked) {
		return false
	}
	defer g.l.unlock()
	f(&g.v)
	return true
}

// Read runs f with a copy of the value under the shared lock: readers run
// concurrently with each other but not with With. The copy is shallow:
// maps, slices and pointers inside T still reach the guarded data, so f
// must only read through them. If f panics, the lock is released and the
// panic continues in the caller.
func (g *Guarded[T]) Read(f func(T)) {
	g.l.rlock()
	defer g.l.runlock()
	f(g.v)
}

// WithResult runs f with exclusive access to g's value and returns what f
// returns. It is With for callbacks that compute a result.
func WithResult[T, R any](g *Guarded[T], f func(*T) R) R {
	g.l.lock()
	defer g.l.unlock()
	return f(&g.v)
}

// Stats returns the lock's counters.
func (g *Guarded[T]) Stats() GuardedStats {
	g.l.mu.Lock()
	defer g.l.mu.Unlock()
	return GuardedStats{Contended: g.l.contended, Canceled: g.l.canceled, Waiting: g.l.waiting}
}

// rwlock is a readers-writer lock whose waits can be abandoned when a ctx
// ends. Uncontended, Lock and Unlock are one CAS each, as in sync.Mutex.
// Waiters queue and block on a channel of their own, so a waiting goroutine
// is durably blocked for testing/synctest and can select on ctx.Done(). mu
// guards only the queue and is never held while waiting.
//
// state is wLocked | queued | readers*rOne, and queued is set exactly when
// the queue is not empty (both change under mu). A waiter sets queued with
// a CAS that also checks the lock is still busy, so the holder's release
// sees it and goes through dispatch: no wake-up is missed.
//
// Fairness follows sync.Mutex. A writer releasing the lock to a queued
// writer frees it and wakes that writer to compete, so a running writer
// may take the lock first ("barging"): under contention this avoids the
// convoy where the lock stays idle until a parked waiter is scheduled. A
// woken writer that loses goes back to the front of the queue marked for
// hand-off, and the next release passes the lock to it directly, so no
// writer loses more than once in a row. Readers never barge past waiters,
// so a stream of readers cannot starve a writer, and queued readers are
// always handed the lock directly.
type rwlock struct {
	state atomic.Uint64

	mu         sync.Mutex
	head, tail *lockWaiter
	waiting    int
	contended  uint64
	canceled   uint64
}

const (
	wLocked = 1
	queued  = 2
	rOne    = 4
)

type lockWaiter struct {
	write      bool
	handoff    bool // lost a race after a wake-up: gets the lock directly next
	granted    bool // under rwlock.mu: the lock was handed over
	woken      bool // under rwlock.mu: dequeued and told to compete
	ready      chan struct{}
	prev, next *lockWaiter
}

func (l *rwlock) lock() {
	if !l.state.CompareAndSwap(0, wLocked) {
		_ = l.lockSlow(context.Background(), true)
	}
}

func (l *rwlock) unlock() {
	if !l.state.CompareAndSwap(wLocked, 0) {
		l.mu.Lock()
		l.dispatch(true)
		l.mu.Unlock()
	}
}

func (l *rwlock) rlock() {
	s := l.state.Load()
	if s&(wLocked|queued) != 0 || !l.state.CompareAndSwap(s, s+rOne) {
		_ = l.lockSlow(context.Background(), false)
	}
}

func (l *rwlock) runlock() {
	// The last reader out with waiters queued lets dispatch serve them.
	if n := l.state.Add(^uint64(rOne - 1)); n&queued != 0 && n < rOne {
		l.mu.Lock()
		l.dispatch(false)
		l.mu.Unlock()
	}
}

// tryTake takes the lock in state s if the rules allow: a writer needs it
// free (and may barge past the queue), a reader needs no writer holding or
// waiting.
func (l *rwlock) tryTake(s uint64, write bool) (taken, allowed bool) {
	if write {
		if s&wLocked != 0 || s >= rOne {
			return false, false
		}
		return l.state.CompareAndSwap(s, s|wLocked), true
	}
	if s&(wLocked|queued) != 0 {
		return false, false
	}
	return l.state.CompareAndSwap(s, s+rOne), true
}

// spinLoads bounds how long an acquirer polls a busy lock before queueing.
// Critical sections guarded by a Guarded are usually a few field updates,
// shorter than a park and wake-up, so a brief poll (like sync.Mutex's
// spinning) avoids most queueing. It is skipped when only one P exists,
// where the holder cannot run while we poll.
const spinLoads = 100

func (l *rwlock) lockSlow(ctx context.Context, write bool) error {
	retry := false
	for {
		if multicore {
			for range spinLoads {
				if taken, _ := l.tryTake(l.state.Load(), write); taken {
					return nil
				}
			}
		}
		l.mu.Lock()
		for {
			s := l.state.Load()
			taken, allowed := l.tryTake(s, write)
			if taken {
				l.mu.Unlock()
				return nil
			}
			if allowed {
				continue // lost a CAS: look again
			}
			if s&queued != 0 || l.state.CompareAndSwap(s, s|queued) {
				break
			}
		}
		w := &lockWaiter{write: write, handoff: retry, ready: make(chan struct{})}
		if retry {
			l.pushFront(w)
		} else {
			l.pushBack(w)
			l.contended++
		}
		l.mu.Unlock()

		select {
		case <-w.ready:
			if w.granted {
				return nil
			}
			retry = true
			continue
		case <-ctx.Done():
		}
		l.mu.Lock()
		if w.granted {
			// The lock was handed over while ctx was ending. Giving it
			// back would mean re-running dispatch; keeping it is just as
			// correct, since the caller asked for it.
			l.mu.Unlock()
			return nil
		}
		if !w.woken {
			l.remove(w)
		}
		l.canceled++
		// w may have held back the readers behind it, or have been woken
		// to take a free lock: pass the turn on.
		l.dispatch(false)
		l.mu.Unlock()
		return ctxError("Guarded.WithContext", ctx)
	}
}

// dispatch serves the head of the queue: it wakes a writer to compete for
// the lock, hands the lock directly to a writer marked for hand-off, or
// hands it to the run of readers at the head. release is true when called
// by the writer releasing the lock, whose wLocked is cleared in the same
// CAS, so a hand-off never leaves the lock free for a barger. Otherwise
// dispatch does nothing while the lock is busy: its holder's release will
// call it. Called with mu held.
func (l *rwlock) dispatch(release bool) {
	for {
		s := l.state.Load()
		base := s
		if release {
			base &^= wLocked
		}
		h := l.head
		if h == nil {
			if l.state.CompareAndSwap(s, base&^queued) {
				return
			}
			continue
		}
		if base&wLocked != 0 || h.write && base >= rOne {
			return
		}
		next, last := base, h
		switch {
		case h.write && !h.handoff:
			// Leave the lock free; h competes for it when it runs.
		case h.write:
			next |= wLocked
		default:
			next += rOne
			for last.next != nil && !last.next.write {
				last = last.next
				next += rOne
			}
		}
		if last.next == nil {
			next &^= queued
		}
		// Readers leaving and writers barging change state: retry.
		if !l.state.CompareAndSwap(s, next) {
			continue
		}
		for {
			w := l.head
			l.remove(w)
			if h.write && !h.handoff {
				w.woken = true
			} else {
				w.granted = true
			}
			close(w.ready)
			if w == last {
				return
			}
		}
	}
}

func (l *rwlock) pushBack(w *lockWaiter) {
	w.prev = l.tail
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.waiting++
}

func (l *rwlock) pushFront(w *lockWaiter) {
	w.next = l.head
	if l.head != nil {
		l.head.prev = w
	} else {
		l.tail = w
	}
	l.head = w
	l.waiting++
}

func (l *rwlock) remove(w *lockWaiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next = nil, nil
	l.waiting--
}
