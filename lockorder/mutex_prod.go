//go:build !lockorder && !race

package lockorder

import (
	"context"
	"sync"
	"unsafe"
)

// Enabled reports whether order checking is compiled into this build: true
// with the build tag lockorder or under -race.
func Enabled() bool { return false }

// lockMeta holds only the class, for LockAll's rank order.
type lockMeta struct{ class *Class }

func (k *lockMeta) setClass(c *Class) { k.class = c }

func (k *lockMeta) orderKey() (int, uint64) {
	if k.class == nil {
		return 0, 0
	}
	return k.class.rank, k.class.id
}

// A Mutex is a mutual exclusion lock, a drop-in replacement for sync.Mutex
// whose acquisitions are order-checked in checking builds. The zero value
// is an unlocked mutex that is its own lock class. A Mutex must not be
// copied after first use.
//
// In this (production) build every method is a one-line call to the
// sync.Mutex method and is inlined.
type Mutex struct {
	mu sync.Mutex
	lk lockMeta
}

// SetClass makes m a member of class c. Call it before the first Lock; a
// later call applies to later acquisitions only. In production builds it
// only stores c, which LockAll uses to order locks by rank.
func (m *Mutex) SetClass(c *Class) { m.lk.class = c }

// Lock locks m, blocking until it is available. In checking builds an
// order violation is reported before blocking.
func (m *Mutex) Lock() { m.mu.Lock() }

// TryLock tries to lock m without blocking and reports whether it did. A
// successful TryLock is recorded as held but adds no order edge.
func (m *Mutex) TryLock() bool { return m.mu.TryLock() }

// Unlock unlocks m. It is a run-time error if m is not locked.
func (m *Mutex) Unlock() { m.mu.Unlock() }

func (m *Mutex) orderKey() (int, uint64, uintptr) {
	r, id := m.lk.orderKey()
	return r, id, uintptr(unsafe.Pointer(m))
}

func (m *Mutex) lockInGroup(uint64) { m.mu.Lock() }

func (m *Mutex) lockContext(ctx context.Context, _ uint64) error { return pollLock(ctx, m.mu.TryLock) }
