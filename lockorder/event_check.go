//go:build lockorder || race

package lockorder

import (
	"sync"
	"sync/atomic"
)

const checking = true

// eventMeta is the event class of a WaitGroup or Cond, created on first
// use like a mutex's per-instance class.
type eventMeta struct{ lk lockMeta }

func waitEvent[T any](owner *T, m *eventMeta, kind string, released sync.Locker) {
	waitFor(classOf(owner, &m.lk, kind), metaOf(released))
}

func unblockEvent[T any](owner *T, m *eventMeta, kind string) {
	unblock(classOf(owner, &m.lk, kind))
}

func beginEvent[T any](owner *T, m *eventMeta, kind string) {
	begin(classOf(owner, &m.lk, kind))
}

// metaOf returns the checking state of one of this package's lockers.
func metaOf(l sync.Locker) *lockMeta {
	switch l := l.(type) {
	case *Mutex:
		return &l.lk
	case *RWMutex:
		return &l.lk
	case *rlocker:
		return &l.lk
	case *TimedMutex:
		return &l.lk
	}
	return nil
}

// onceImpl is a Once built on this package's Mutex, so that waiting for a
// running f is an order-checked acquisition of a lock of class "Once".
type onceImpl struct {
	done atomic.Bool
	m    Mutex
}

func (o *onceImpl) Do(f func()) {
	if !o.done.Load() {
		o.doSlow(f)
	}
}

func (o *onceImpl) doSlow(f func()) {
	e := acquire(&o.m.lk, classOf(o, &o.m.lk, "Once"), false, 0)
	o.m.mu.Lock()
	e.acquired()
	defer o.m.Unlock()
	if !o.done.Load() {
		// Done even if f panics, as with sync.Once.
		defer o.done.Store(true)
		f()
	}
}
