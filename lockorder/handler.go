package lockorder

import "sync/atomic"

var handler atomic.Pointer[func(*OrderError)]

// SetHandler installs f as the function that receives order violations and
// returns a function that restores the previous handler. A nil f restores
// the default, which panics with the *OrderError so that a test run fails
// at the offending acquisition. Nothing in this package calls os.Exit.
//
// The handler runs on the goroutine that attempted the acquisition, after
// the checker has released all of its internal locks and before the lock
// is taken, so it may lock other lockorder mutexes, log, or panic. If it
// returns, the acquisition proceeds (and may then really deadlock). Each
// violation is reported once per process. In production builds the handler
// is stored but never called.
func SetHandler(f func(*OrderError)) (restore func()) {
	var p *func(*OrderError)
	if f != nil {
		p = &f
	}
	old := handler.Swap(p)
	return func() { handler.Store(old) }
}
