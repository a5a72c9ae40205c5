package lockorder

// Blocking annotates a wait the checker cannot see (a raw channel
// operation, a select, a call into another library): the calling goroutine
// is about to block until some goroutine calls Unblocking(obj). In checking
// builds, if the caller holds a lock that a goroutine which unblocks obj
// acquires before doing so (while holding it, since its own last wait, or
// since WillUnblock(obj)), the checker reports ErrBlocking before the
// caller blocks, even if this run would not have hung. obj identifies the
// event: a pointer or a channel (compared by identity), or any other
// comparable value such as a string (compared by value); nil is ignored.
// In production builds Blocking does nothing.
//
//	lockorder.Blocking(results)
//	r := <-results
func Blocking(obj any) { blocking(obj) }

// Unblocking annotates the other side: the calling goroutine is about to
// end waits annotated with Blocking(obj) (it sends on, closes or signals
// obj). It also ends WillUnblock(obj). In production builds it does
// nothing.
func Unblocking(obj any) { unblocking(obj) }

// WillUnblock tells the checker that the calling goroutine starts work
// whose end (Unblocking(obj) on this goroutine) unblocks waiters of obj:
// every lock it acquires from now on is needed by them. This lets the
// checker report a waiter holding such a lock in the run that would hang,
// when both sides meet for the first time. In production builds it does
// nothing.
//
//	go func() {
//		lockorder.WillUnblock(done)
//		defer close(done)
//		defer lockorder.Unblocking(done)
//		work()
//	}()
func WillUnblock(obj any) { willUnblock(obj) }
