package lockorder

import "sync"

// A Cond is a drop-in replacement for sync.Cond whose waits are checked in
// checking builds: Wait while holding a lock (other than L, which Wait
// releases) that the goroutine calling Signal or Broadcast acquires first
// is reported as ErrBlocking before Wait blocks, e.g. a read lock held
// across Wait that the signaller must lock for writing. Create it with
// NewCond, or as Cond{L: l}. A Cond must not be copied after first use.
type Cond struct {
	// L is held while observing or changing the condition.
	L sync.Locker

	init sync.Once
	cond sync.Cond // its L is condLocker, which calls this Cond's L
	ev   eventMeta
}

// NewCond returns a new Cond with Locker l.
func NewCond(l sync.Locker) *Cond { return &Cond{L: l} }

// condLocker lets the embedded sync.Cond lock whatever L is, without
// writing L into it on every Wait (which would race with other waiters).
type condLocker Cond

func (l *condLocker) Lock()   { l.L.Lock() }
func (l *condLocker) Unlock() { l.L.Unlock() }

func (c *Cond) setup() { c.cond.L = (*condLocker)(c) }

// Wait atomically unlocks c.L and suspends the calling goroutine; after
// later resuming, it locks c.L before returning; see sync.Cond.Wait.
func (c *Cond) Wait() {
	c.init.Do(c.setup)
	waitEvent(c, &c.ev, "Cond", c.L)
	c.cond.Wait()
}

// Signal wakes one goroutine waiting on c, if there is any. In checking
// builds it first records which locks the caller needed to get here (held,
// or acquired since its last wait).
func (c *Cond) Signal() {
	unblockEvent(c, &c.ev, "Cond")
	c.init.Do(c.setup)
	c.cond.Signal()
}

// Broadcast wakes all goroutines waiting on c; see Signal.
func (c *Cond) Broadcast() {
	unblockEvent(c, &c.ev, "Cond")
	c.init.Do(c.setup)
	c.cond.Broadcast()
}
