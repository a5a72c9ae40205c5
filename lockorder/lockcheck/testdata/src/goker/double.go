package goker

import "sync"

// A container locks itself again in an error path (double locking in one
// function).
type container struct {
	mu    sync.Mutex
	state string
}

func (c *container) start() error {
	c.mu.Lock()
	if c.state == "" {
		c.mu.Lock() // want `c.mu is locked again while held`
		c.state = "created"
		c.mu.Unlock()
	}
	c.mu.Unlock()
	return nil
}

// The daemon calls a method that takes the lock it holds (double locking
// through a call).
type daemon struct {
	mu         sync.Mutex
	containers map[string]*container
}

func (d *daemon) get(id string) *container {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.containers[id]
}

func (d *daemon) restart(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.get(id); c != nil { // want `d.mu is locked again by the call to daemon.get while held`
		c.state = "restarting"
	}
}

// A recursive read lock through a helper: a writer queued between the two
// RLocks deadlocks all three goroutines (the RWR class).
type index struct {
	rw   sync.RWMutex
	keys map[string]bool
}

func (x *index) has(k string) bool {
	x.rw.RLock()
	defer x.rw.RUnlock()
	return x.keys[k]
}

func (x *index) hasAll(ks []string) bool {
	x.rw.RLock()
	defer x.rw.RUnlock()
	for _, k := range ks {
		if !x.has(k) { // want `x.rw is read-locked again by the call to index.has while read-locked`
			return false
		}
	}
	return true
}

func (x *index) add(k string) {
	x.rw.Lock()
	x.keys[k] = true
	x.rw.Unlock()
}

// A missing unlock on an early return: the next Lock, in any goroutine,
// blocks forever.
type lease struct {
	mu      sync.Mutex
	expired bool
	n       int
}

func (l *lease) renew() bool {
	l.mu.Lock()
	if l.expired {
		return false // want `return with l.mu held`
	}
	l.n++
	l.mu.Unlock()
	return true
}
