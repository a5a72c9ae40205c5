// Package lockcheck is a static analyzer for the deadlocks a runtime lock
// graph cannot see: a goroutine that blocks on a channel, a WaitGroup, a
// Cond or the network while it holds a mutex another goroutine needs to
// unblock it. The hang needs unlucky timing; the bug is in the source, so
// lockcheck reports it at review time, before the service hangs:
//
//	func (s *Server) publish(ev Event) {
//		s.mu.Lock()
//		defer s.mu.Unlock()
//		s.events <- ev // the consumer calls s.Stats(), which locks s.mu
//	}
//
//	server.go:14:11: channel send while s.mu is held (locked at line 12); a
//	goroutine that needs it to unblock this one deadlocks with it
//
// Run it as a standalone command or under go vet (which adds build tags
// and test files the way the compiler sees them):
//
//	go install github.com/garrison-go/garrison/lockorder/lockcheck/cmd/lockcheck@latest
//	lockcheck ./...
//	go vet -vettool=$(command -v lockcheck) ./...
//
// # What is reported
//
// Within each function, lockcheck follows the locks held (a lockset over
// the SSA form, through branches, loops, early returns and deferred
// Unlocks) of sync.Mutex, sync.RWMutex, sync.Locker and the lockorder
// mutexes, and reports, when a lock is held on every path to it:
//
//   - a channel send or receive (including range over a channel), a select
//     without default, sync.WaitGroup.Wait, time.Sleep, network and HTTP
//     calls, os/exec waits, errgroup and semaphore waits, and the blocking
//     calls of the garrison packages (changuard.Chan.Send and Recv, Owner
//     and spawn waits);
//   - sync.Cond.Wait while a lock other than the Cond's own is held (Wait
//     releases only c.L);
//   - a call to a function of the same package that may block in one of
//     these ways, or that locks a mutex held here (double locking through
//     a helper), with the path to the operation;
//   - a mutex locked again while held, and an RLock of a mutex already
//     read-locked (a recursive read lock deadlocks as soon as a writer
//     waits between the two);
//   - sync.Once.Do of a function that locks a mutex held around the Do, or
//     that another Do of the same Once is made under (a cycle through the
//     Once's own lock);
//   - a return that keeps a lock held on every path to it while another
//     return of the function releases it: the missing Unlock on an early
//     return that deadlocks the next Lock;
//   - the callback of changuard.Guarded.With (and TryWith, WithContext,
//     WithResult) blocking: it runs under the Guarded's lock.
//
// Across the functions of a package, it records which lock class (a
// struct field such as T.mu, or a package variable such as pkg.mu) is
// acquired while which is held, directly or through calls, and reports
// every cycle (T.a then T.b in one function, T.b then T.a in another) at
// each of its sites.
//
// For changuard, it reports the pointer lent to a Guarded or Owner
// callback (or a pointer, slice or map reached through it) escaping the
// callback: assigned to a variable declared outside it, stored in a field,
// map or package variable, sent on a channel, returned, or handed to a
// goroutine. Once the callback returns, nothing protects what it points to.
//
// # False reports and misses
//
// A lock counts as held only if it is held on every path, and an Unlock
// the analysis cannot match to its Lock releases every lock of the same
// class: lockcheck prefers a missed report to a false one. It does not
// know channel capacities, so a send on a buffered channel under a lock
// is reported; write the reason next to it:
//
//	next <- token //lockcheck:ignore buffered (cap 1), sent once
//
// A "//lockcheck:ignore reason" comment silences reports on its line and
// the line below. Calls are followed only within the package under
// analysis, and through static calls and closures, not interface methods
// or func values; mutexes reached through a variable index are matched by
// class.
package lockcheck
