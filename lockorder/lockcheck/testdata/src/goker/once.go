package goker

import "sync"

// A registry initializes lazily under its Once; the initializer takes the
// registry's lock, and a lookup calls the Once while holding that lock: a
// cycle through the Once's own lock.
type registry struct {
	mu    sync.Mutex
	once  sync.Once
	items map[string]int
}

func (r *registry) init() {
	r.once.Do(func() {
		r.mu.Lock()
		r.items = map[string]int{}
		r.mu.Unlock()
	})
}

func (r *registry) lookup(k string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.once.Do(func() { r.items = map[string]int{} }) // want `registry.once.Do while r.mu is held \(locked at line 23\), but the Do at line 15 runs a function that locks registry.mu`
	return r.items[k]
}

// selfOnce deadlocks in one goroutine: Do's function takes the lock held.
func (r *registry) selfOnce() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.once.Do(r.init2) // want `sync.Once.Do of a function that locks r.mu` `registry.once.Do while r.mu is held`
}

func (r *registry) init2() {
	r.mu.Lock()
	r.items = nil
	r.mu.Unlock()
}
