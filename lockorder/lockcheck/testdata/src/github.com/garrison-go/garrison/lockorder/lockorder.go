// Package lockorder is a stub of the garrison package with the method sets
// the analyzer recognizes.
package lockorder

import (
	"context"
	"sync"
)

type Mutex struct{ mu sync.Mutex }

func (m *Mutex) Lock()   { m.mu.Lock() }
func (m *Mutex) Unlock() { m.mu.Unlock() }

type RWMutex struct{ mu sync.RWMutex }

func (m *RWMutex) Lock()    { m.mu.Lock() }
func (m *RWMutex) Unlock()  { m.mu.Unlock() }
func (m *RWMutex) RLock()   { m.mu.RLock() }
func (m *RWMutex) RUnlock() { m.mu.RUnlock() }

type TimedMutex struct{ mu sync.Mutex }

func (m *TimedMutex) Lock()                                 { m.mu.Lock() }
func (m *TimedMutex) Unlock()                               { m.mu.Unlock() }
func (m *TimedMutex) TryLock() bool                         { return m.mu.TryLock() }
func (m *TimedMutex) LockContext(ctx context.Context) error { m.mu.Lock(); return nil }

type WaitGroup struct{ wg sync.WaitGroup }

func (w *WaitGroup) Wait() { w.wg.Wait() }

func LockAll(ms ...sync.Locker) {
	for _, m := range ms {
		m.Lock()
	}
}

func UnlockAll(ms ...sync.Locker) {
	for _, m := range ms {
		m.Unlock()
	}
}
