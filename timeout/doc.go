// Package timeout defends a service against work that takes too long or
// gets stuck. An attacker who can trigger slow upstreams, huge inputs or
// tasks that ignore cancellation can otherwise keep every worker busy
// forever, and the usual fixes leak: a wrapper that runs fn in a goroutine
// and returns at the deadline frees the caller's slot while the work goes
// on, so stuck goroutines pile up without bound, and a bare "context
// deadline exceeded" does not say which operation ran out of time.
//
// Here every limit on time is explicit, attributed and leak-free. Run and
// Do bound a call inline, and an expiry is an *Error naming the operation,
// its budget and the time it took. A Detacher bounds calls that ignore
// their context, returning at the deadline while counting the abandoned
// work until it really returns, under a hard cap. Budget and Sub split one
// deadline across steps and retries. A Watchdog reports, and optionally
// cancels, work that stopped making progress.
//
//	err := timeout.Run(ctx, 200*time.Millisecond, func(ctx context.Context) error {
//		return db.QueryRowContext(ctx, q, id).Scan(&name)
//	}, timeout.Named("users.get"))
//	var te *timeout.Error
//	if errors.As(err, &te) {
//		log.Printf("%s took %v of its %v budget", te.Op, te.Elapsed, te.Budget)
//	}
//
//	// Each attempt gets half of what is left of ctx's deadline.
//	actx, cancel, err := timeout.Sub(ctx, 0.5, 10*time.Millisecond)
//
// Run and Do start no goroutine and, when an operation repeats with the
// same name and timeout, allocate nothing beyond context.WithTimeout.
// errors.Is(err, context.DeadlineExceeded) holds for every *Error, so code
// that tests for the standard error keeps working.
package timeout
