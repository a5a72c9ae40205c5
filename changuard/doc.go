// Package changuard gives a service a bounded channel that cannot panic or
// lose a value, and three containers whose state cannot be reached except
// through their guard.
//
// The threat: requests timed by an attacker race on shared state (lost
// updates, torn reads, "concurrent map writes" crashes), and channel misuse
// turns into crashes or memory blow-up: a send on a closed channel panics,
// so does a double close, an unbounded buffer grows until the process dies,
// and a sender with no way out blocks forever.
//
//   - Chan is a bounded channel (there is no unbounded mode) whose Send
//     takes a ctx, whose Close is idempotent and safe against concurrent
//     senders, and which hands every undelivered value back to its sender
//     (ClosedError.Value) or to an onDrop callback.
//   - Guarded is a lock and the data it protects in one value: the data is
//     reachable only inside With (or Read, shared), and WithContext gives up
//     waiting for the lock when a ctx ends, which sync.Mutex cannot do.
//   - Snapshot is copy-on-write state: lock-free reads of immutable
//     versions, compare-and-swap updates, and Changed to wait for the next
//     version.
//   - Owner confines state to one goroutine that runs the functions sent to
//     it through a bounded mailbox (an actor). Shutdown stops it after the
//     queued functions, Close at once.
//
// Every blocking call takes a ctx first and follows one rule: a nil ctx is
// an error matching ErrNilContext, never a panic, and a ctx already done
// fails the call at once with no effect, even if it could have gone
// through.
//
// Example:
//
//	jobs, err := changuard.NewChan[Job](1024) // full: Send waits, under ctx
//	if err != nil {
//		return err
//	}
//	go func() {
//		for j := range jobs.All(ctx) {
//			handle(j)
//		}
//	}()
//	if err := jobs.Send(ctx, j); err != nil {
//		var closed *changuard.ClosedError[Job]
//		if errors.As(err, &closed) {
//			requeue(closed.Value) // shutting down: j comes back, not lost
//		}
//	}
//	_ = jobs.Close() // at once; twice is fine (ErrClosed); so is a Send racing it
//
//	var hits changuard.Guarded[map[string]int]
//	hits.With(func(m *map[string]int) { /* only here can m be touched */ })
//
// # Do not let the pointer escape
//
// Go cannot stop a *T from escaping a With closure: the type system has no
// borrow checker, so the guarantee that the value is reached only under the
// lock holds only if callbacks keep the pointer (and any map, slice or
// pointer inside the value) to themselves until they return. The race
// detector catches violations in tests, not in review.
//
// Wrong: the pointer outlives the lock, and the write below races with
// every other With.
//
//	var leaked *Account
//	g.With(func(a *Account) { leaked = a })
//	leaked.Balance += 10 // data race: the lock is no longer held
//
// Right: do the work inside, and take copies out.
//
//	g.With(func(a *Account) { a.Balance += 10 })
//	balance := changuard.WithResult(g, func(a *Account) int { return a.Balance })
//
// The same rule holds for Read (its copy is shallow), for the functions
// sent to an Owner, and for values stored in a Snapshot, which must not be
// modified after Store or Update: build a new value instead.
package changuard
