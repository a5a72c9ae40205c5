//go:build !lockorder && !race

package lockorder

import (
	"context"
	"sync"
	"unsafe"
)

// An RWMutex is a reader/writer mutual exclusion lock, a drop-in
// replacement for sync.RWMutex whose acquisitions are order-checked in
// checking builds. The zero value is an unlocked mutex that is its own lock
// class. An RWMutex must not be copied after first use.
//
// In this (production) build every method is a one-line call to the
// sync.RWMutex method and is inlined.
type RWMutex struct {
	mu sync.RWMutex
	lk lockMeta
}

// SetClass makes rw a member of class c; see Mutex.SetClass.
func (rw *RWMutex) SetClass(c *Class) { rw.lk.class = c }

// Lock locks rw for writing, blocking until no reader or writer holds it.
func (rw *RWMutex) Lock() { rw.mu.Lock() }

// TryLock tries to lock rw for writing without blocking and reports
// whether it did. Success is recorded as held without an order edge.
func (rw *RWMutex) TryLock() bool { return rw.mu.TryLock() }

// Unlock unlocks rw for writing. It is a run-time error if rw is not
// locked for writing.
func (rw *RWMutex) Unlock() { rw.mu.Unlock() }

// RLock locks rw for reading, blocking while a writer holds or waits for
// it. It must not be used for recursive read locking.
func (rw *RWMutex) RLock() { rw.mu.RLock() }

// TryRLock tries to lock rw for reading without blocking and reports
// whether it did. Success is recorded as held without an order edge.
func (rw *RWMutex) TryRLock() bool { return rw.mu.TryRLock() }

// RUnlock undoes a single RLock. It is a run-time error if rw is not
// locked for reading.
func (rw *RWMutex) RUnlock() { rw.mu.RUnlock() }

// RLocker returns a sync.Locker whose Lock and Unlock call rw.RLock and
// rw.RUnlock.
func (rw *RWMutex) RLocker() sync.Locker { return (*rlocker)(rw) }

func (rw *RWMutex) orderKey() (int, uint64, uintptr) {
	r, id := rw.lk.orderKey()
	return r, id, uintptr(unsafe.Pointer(rw))
}

func (rw *RWMutex) lockInGroup(uint64) { rw.mu.Lock() }

type rlocker RWMutex

func (r *rlocker) Lock()   { r.mu.RLock() }
func (r *rlocker) Unlock() { r.mu.RUnlock() }

func (r *rlocker) orderKey() (int, uint64, uintptr) { return (*RWMutex)(r).orderKey() }

func (r *rlocker) lockInGroup(uint64) { r.mu.RLock() }

func (rw *RWMutex) lockContext(ctx context.Context, _ uint64) error {
	return pollLock(ctx, rw.mu.TryLock)
}

func (r *rlocker) lockContext(ctx context.Context, _ uint64) error {
	return pollLock(ctx, r.mu.TryRLock)
}
