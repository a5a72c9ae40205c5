package lockorder

import "sync"

// A WaitGroup is a drop-in replacement for sync.WaitGroup whose waits are
// checked in checking builds: Wait while holding a lock that a goroutine
// calling Done, or running a function passed to Go, acquires first is
// reported as ErrBlocking before Wait blocks. The zero value is ready to
// use. A WaitGroup must not be copied after first use. In production
// builds every method is the sync.WaitGroup method.
type WaitGroup struct {
	wg sync.WaitGroup
	ev eventMeta
}

// Add adds delta, which may be negative, to the counter; see
// sync.WaitGroup.Add.
func (wg *WaitGroup) Add(delta int) { wg.wg.Add(delta) }

// Done decrements the counter by one. In checking builds it first records
// that the locks the caller holds, or acquired since its last wait, are
// needed before Wait can return.
func (wg *WaitGroup) Done() {
	unblockEvent(wg, &wg.ev, "WaitGroup")
	wg.wg.Done()
}

// Wait blocks until the counter is zero. In checking builds it first
// reports ErrBlocking if the caller holds a lock that a Done caller (or a
// function passed to Go) acquires first.
func (wg *WaitGroup) Wait() {
	waitEvent(wg, &wg.ev, "WaitGroup", nil)
	wg.wg.Wait()
}

// Go calls f in a new goroutine and adds that task to the WaitGroup; see
// sync.WaitGroup.Go. In checking builds every lock f acquires is known to
// be needed before Wait returns from the moment f acquires it, so a Wait
// holding that lock is reported even in the run where the two meet for
// the first time.
func (wg *WaitGroup) Go(f func()) {
	if !checking {
		wg.wg.Go(f)
		return
	}
	wg.wg.Go(func() {
		beginEvent(wg, &wg.ev, "WaitGroup")
		defer unblockEvent(wg, &wg.ev, "WaitGroup")
		f()
	})
}
