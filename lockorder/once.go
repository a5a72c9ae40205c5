package lockorder

// A Once is a drop-in replacement for sync.Once whose internal lock is
// order-checked in checking builds: a goroutine that calls Do while
// holding a lock that f (running in another goroutine) acquires is a lock
// order cycle through the Once, reported before it blocks, and so is f
// calling Do on its own Once. The zero value is ready to use. A Once must
// not be copied after first use. In production builds Do is
// sync.Once.Do.
type Once struct {
	o onceImpl
}

// Do calls f if and only if Do is being called for the first time for
// this Once; every call returns after f has returned; see sync.Once.Do.
func (o *Once) Do(f func()) { o.o.Do(f) }
