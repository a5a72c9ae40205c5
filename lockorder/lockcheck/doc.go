// Package lockcheck is a static analyzer for the deadlocks a runtime lock
// graph cannot see: a goroutine that blocks on a channel, a WaitGroup, a
// Cond or the network while it holds a mutex another goroutine needs to
// unblock it. The hang needs unlucky timing; the bug is in the source, so
// lockcheck reports it at review time, before the service hangs:
//
//	func (s *Server) publish(ev Event) {
//		s.mu.Lock()
//		defer s.mu.Unlock()
//		s.count++
//		s.events <- ev // line 17
//	}
//
//	func (s *Server) consume() {
//		for range s.events { // line 21
//			_ = s.Stats() // locks s.mu
//		}
//	}
//
// reports:
//
//	server.go:17:11: channel send while s.mu is held (locked at line 14);
//	a goroutine that needs it to unblock this one deadlocks with it; the
//	receive at line 21 (in Server.consume) takes Server.mu
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
// mutexes, including lockorder.LockAll and UnlockAll, locks taken by a
// helper that returns holding them, and
// conditional acquisitions on the branch where they succeeded (if
// mu.TryLock(), if err := mu.LockContext(ctx); err != nil { return err }),
// and reports, when a lock is held on every path to it:
//
//   - a channel send on an unbuffered channel, a channel receive (including
//     range over a channel), a select without default, sync.WaitGroup.Wait,
//     time.Sleep, network and HTTP calls, os/exec waits, errgroup and
//     semaphore waits, and the blocking calls of the garrison packages
//     (changuard.Chan.Send and Recv, Owner and spawn waits);
//   - sync.Cond.Wait while a lock other than the Cond's own is held (Wait
//     releases only c.L);
//   - a call to a function of the same package that waits for another
//     goroutine in one of these ways, itself or in a function it calls,
//     with the path to the operation; or that locks a mutex held here
//     (double locking through a helper);
//   - a mutex locked again while held, and an RLock of a mutex already
//     read-locked (a recursive read lock deadlocks as soon as a writer
//     waits between the two);
//   - sync.Once.Do of a function that locks a mutex held around the Do, or
//     made under a lock that a function passed to another Do of the same
//     Once takes (a cycle through the Once's own lock);
//   - an early return that keeps a lock held on every path to it while a
//     later return releases it: the missing Unlock on an error path that
//     deadlocks the next Lock;
//   - a blocking operation in the callback of changuard.Guarded.With (and
//     TryWith, WithContext, Read, WithResult): it runs under the Guarded's
//     lock.
//
// When the other side of the wait (a receive or send on the same channel
// field, a close, a WaitGroup's Done, a Cond's Signal) runs in a function
// of the package that takes a lock of the held lock's role, the report
// names it, as above: that is the deadlock, not just a slow path.
//
// Across the functions of a package, it records which lock role is
// acquired while which is held, directly or through calls, and reports
// every cycle (A then B in one function, B then A in another, or longer)
// at each of its sites. A role is the field path from the outermost named
// struct or package variable to the mutex, stopping at a pointer: s.mu of
// a *Server is Server.mu, c.in.Mutex and c.out.Mutex are two roles, and the
// mu of the *conn that r.conn points to is conn.mu.
//
// For changuard, it reports the pointer lent to a Guarded or Owner
// callback (With, TryWith, WithContext, WithResult, Owner.Post, Call), or a
// pointer, slice or map reached through it, escaping the callback:
// assigned to a variable declared outside it, stored in a field, map or
// package variable, sent on a channel, returned, or captured by a
// goroutine. Once the callback returns, nothing protects what it points to.
//
// # False reports and misses
//
// lockcheck prefers a missed report to a false one:
//
//   - A lock counts as held only if it is held on every path, and an
//     Unlock it cannot match to its Lock releases every lock of the same
//     role.
//   - A send on a buffered channel is not reported: a channel made in the
//     function with a capacity, or read from a field (or the elements of a
//     slice or map field) that every store in the package fills with one.
//   - Blocking is followed at most two calls deep, only within the package,
//     only through static calls and closures (not interface methods or
//     func values), and only for waits on other goroutines: I/O under a
//     lock that serializes writes is reported where it is made, not in
//     every caller.
//   - A function that never releases a lock it takes is a lock helper, not
//     a missing Unlock; so is one that releases it on an early error
//     return only, or returns a func (the Unlock) to its caller.
//   - select {} is a deliberate park, not a wait.
//
// What it reports is a lock held across a wait; whether the goroutine
// that would end the wait needs that lock is for the reader to judge, and
// a guard the analysis cannot see (state checked under the lock, a
// channel known to be ready) makes a report a false one. Write the reason
// next to it:
//
//	v := <-w.result //lockcheck:ignore delivered before done was set
//
// A "//lockcheck:ignore reason" comment silences reports on its line and
// the line below.
package lockcheck
