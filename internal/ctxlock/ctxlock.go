// Package ctxlock holds garrison's one readers-writer lock whose waits can
// be abandoned: lockorder.TimedMutex and changuard.Guarded are both built on
// it, so a lock that gives up when a ctx ends behaves the same in both.
//
// Uncontended, Lock and Unlock are one compare-and-swap each, as in
// sync.Mutex. Waiters queue and block on a channel of their own, so a
// waiting goroutine is durably blocked for testing/synctest and can select
// on ctx.Done() or a timer. An internal mutex guards only the queue and is
// never held while waiting.
//
// Two fairness policies share the code:
//
//   - Barging (fifo false), as sync.Mutex: a writer releasing the lock to a
//     queued writer frees it and wakes that writer to compete, so a running
//     writer may take the lock first; under contention this avoids the
//     convoy where the lock stays idle until a parked waiter is scheduled.
//     A woken writer that loses goes back to the front of the queue marked
//     for hand-off, and the next release passes the lock to it directly, so
//     no writer loses more than once in a row.
//   - FIFO (fifo true): every release hands the lock directly to the
//     longest waiter, and nobody takes a free lock while others queue.
//
// In both, readers never barge past waiters, so a stream of readers cannot
// starve a writer, and queued readers are always handed the lock directly.
//
// Callers apply the context rule of internal/ctxerr (fail at once when the
// ctx is already done) before calling LockWait: this package only sees the
// channels to wait on.
package ctxlock

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// multicore is read once: GOMAXPROCS changes after start-up only cost a
// few wasted polls or a few early parks.
var multicore = runtime.GOMAXPROCS(0) > 1

// RW is the lock. The zero RW is unlocked. It must not be copied after
// first use.
//
// state is wLocked | queued | readers*rOne, and queued is set exactly when
// the queue is not empty (both change under mu). A waiter sets queued with
// a CAS that also checks the lock is still busy, so the holder's release
// sees it and goes through dispatch: no wake-up is missed.
type RW struct {
	state atomic.Uint64

	mu         sync.Mutex
	head, tail *waiter
	waiting    int
	contended  uint64
	canceled   uint64
}

// Stats is a snapshot of an RW's counters.
type Stats struct {
	Locked    bool   // a writer holds the lock
	Readers   int    // readers holding the lock
	Waiting   int    // goroutines queued now
	Contended uint64 // acquisitions that had to queue
	Canceled  uint64 // waits given up because done or expired fired
}

const (
	wLocked = 1
	queued  = 2
	rOne    = 4
)

type waiter struct {
	write      bool
	handoff    bool // lost a race after a wake-up: gets the lock directly next
	granted    bool // under RW.mu: the lock was handed over
	woken      bool // under RW.mu: dequeued and told to compete
	ready      chan struct{}
	prev, next *waiter
}

// TryLock takes the write lock if it is free and nobody queues for it.
func (l *RW) TryLock() bool { return l.state.CompareAndSwap(0, wLocked) }

// Lock takes the write lock, waiting as long as it takes.
func (l *RW) Lock(fifo bool) {
	if !l.state.CompareAndSwap(0, wLocked) {
		l.lockSlow(true, fifo, nil, nil)
	}
}

// LockWait takes the write lock, or gives up when done is closed or
// expired fires (either may be nil): it reports whether the lock is held.
// A lock handed over just as the wait ends is kept, since the caller asked
// for it and giving it back would mean another hand-off.
func (l *RW) LockWait(fifo bool, done <-chan struct{}, expired <-chan time.Time) bool {
	return l.state.CompareAndSwap(0, wLocked) || l.lockSlow(true, fifo, done, expired)
}

// Unlock releases the write lock and reports false, changing nothing, if
// it was not held.
func (l *RW) Unlock() bool {
	if l.state.CompareAndSwap(wLocked, 0) {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state.Load()&wLocked == 0 {
		return false
	}
	l.dispatch(true)
	return true
}

// RLock takes the read lock, waiting as long as it takes.
func (l *RW) RLock() {
	s := l.state.Load()
	if s&(wLocked|queued) != 0 || !l.state.CompareAndSwap(s, s+rOne) {
		l.lockSlow(false, false, nil, nil)
	}
}

// RUnlock releases a read lock.
func (l *RW) RUnlock() {
	// The last reader out with waiters queued lets dispatch serve them.
	if n := l.state.Add(^uint64(rOne - 1)); n&queued != 0 && n < rOne {
		l.mu.Lock()
		l.dispatch(false)
		l.mu.Unlock()
	}
}

// Stats returns the counters.
func (l *RW) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state.Load()
	return Stats{
		Locked:    s&wLocked != 0,
		Readers:   int(s / rOne),
		Waiting:   l.waiting,
		Contended: l.contended,
		Canceled:  l.canceled,
	}
}

// tryTake takes the lock in state s if the rules allow: a writer needs it
// free (and, barging, may pass the queue), a reader needs no writer holding
// or waiting.
func (l *RW) tryTake(s uint64, write, fifo bool) (taken, allowed bool) {
	if write {
		if s&wLocked != 0 || s >= rOne || fifo && s&queued != 0 {
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
// Critical sections are usually a few field updates, shorter than a park
// and wake-up, so a brief poll (like sync.Mutex's spinning) avoids most
// queueing. It is skipped when only one P exists, where the holder cannot
// run while we poll.
const spinLoads = 100

func (l *RW) lockSlow(write, fifo bool, done <-chan struct{}, expired <-chan time.Time) bool {
	retry := false
	for {
		if multicore {
			for range spinLoads {
				if taken, _ := l.tryTake(l.state.Load(), write, fifo); taken {
					return true
				}
			}
		}
		l.mu.Lock()
		for {
			s := l.state.Load()
			taken, allowed := l.tryTake(s, write, fifo)
			if taken {
				l.mu.Unlock()
				return true
			}
			if allowed {
				continue // lost a CAS: look again
			}
			if s&queued != 0 || l.state.CompareAndSwap(s, s|queued) {
				break
			}
		}
		// Not pooled: a channel made inside a testing/synctest bubble must
		// not be used outside it.
		w := &waiter{write: write, handoff: retry || fifo, ready: make(chan struct{})}
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
				return true
			}
			retry = true
			continue
		case <-done:
		case <-expired:
		}
		l.mu.Lock()
		if w.granted {
			l.mu.Unlock()
			return true
		}
		if !w.woken {
			l.remove(w)
		}
		l.canceled++
		// w may have held back the readers behind it, or have been woken
		// to take a free lock: pass the turn on.
		l.dispatch(false)
		l.mu.Unlock()
		return false
	}
}

// dispatch serves the head of the queue: it wakes a barging writer to
// compete for the lock, hands the lock directly to a writer marked for
// hand-off, or hands it to the run of readers at the head. release is true
// when called by the writer releasing the lock, whose wLocked is cleared in
// the same CAS, so a hand-off never leaves the lock free for a barger.
// Otherwise dispatch does nothing while the lock is busy: its holder's
// release will call it. Called with mu held.
func (l *RW) dispatch(release bool) {
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

func (l *RW) pushBack(w *waiter) {
	w.prev = l.tail
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.waiting++
}

func (l *RW) pushFront(w *waiter) {
	w.next = l.head
	if l.head != nil {
		l.head.prev = w
	} else {
		l.tail = w
	}
	l.head = w
	l.waiting++
}

func (l *RW) remove(w *waiter) {
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
