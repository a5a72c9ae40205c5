//go:build lockorder || race

package lockorder

import (
	"context"
	"sync"
	"unsafe"
)

// Enabled reports whether order checking is compiled into this build: true
// with the build tag lockorder or under -race.
func Enabled() bool { return true }

// A Mutex is a mutual exclusion lock, a drop-in replacement for sync.Mutex
// whose acquisitions are order-checked in checking builds. The zero value
// is an unlocked mutex that is its own lock class. A Mutex must not be
// copied after first use.
//
// As with sync.Mutex, a locked Mutex is not tied to a goroutine: one
// goroutine may Lock and another Unlock; the checker then clears the
// record from the locking goroutine.
type Mutex struct {
	mu sync.Mutex
	lk lockMeta
}

// SetClass makes m a member of class c. Call it before the first Lock; a
// later call applies to later acquisitions only. In production builds it
// only stores c, which LockAll uses to order locks by rank.
func (m *Mutex) SetClass(c *Class) { m.lk.setClass(c) }

// Lock locks m, blocking until it is available. In checking builds an
// order violation is reported before blocking.
func (m *Mutex) Lock() {
	c := classOf(m, &m.lk, "Mutex")
	e := acquire(&m.lk, c, false, 0)
	if !m.mu.TryLock() {
		contendedHold(e, &m.lk, c, false)
		m.mu.Lock()
	}
	e.acquired()
}

// TryLock tries to lock m without blocking and reports whether it did. A
// successful TryLock is recorded as held but adds no order edge.
func (m *Mutex) TryLock() bool {
	if !m.mu.TryLock() {
		return false
	}
	tried(&m.lk, classOf(m, &m.lk, "Mutex"), false)
	return true
}

// Unlock unlocks m. It is a run-time error if m is not locked.
func (m *Mutex) Unlock() {
	release(&m.lk, false)
	m.mu.Unlock()
}

func (m *Mutex) orderKey() (int, uint64, uintptr) {
	r, id := m.lk.orderKey()
	return r, id, uintptr(unsafe.Pointer(m))
}

func (m *Mutex) lockInGroup(group uint64) {
	e := acquire(&m.lk, classOf(m, &m.lk, "Mutex"), false, group)
	m.mu.Lock()
	e.acquired()
}

func (m *Mutex) lockContext(ctx context.Context, group uint64) error {
	e := acquire(&m.lk, classOf(m, &m.lk, "Mutex"), false, group)
	if err := pollLock(ctx, m.mu.TryLock); err != nil {
		e.abandon()
		return err
	}
	e.acquired()
	return nil
}
