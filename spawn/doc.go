// Package spawn defends a service against being made to start goroutines
// without limit: an attacker who can trigger one goroutine per request,
// per message or per retry can exhaust CPU and memory with a flood. A
// Spawner is what the service uses instead of a bare go statement. It is
// related to errgroup.Group with SetLimit, but it reuses its workers,
// bounds everything it holds (running tasks, queued tasks and parked
// callers are all finite by default, so memory stays
// O(MaxConcurrent + Queue + MaxWaiters) however many submissions arrive),
// sheds excess work synchronously in a few atomic operations with errors
// that say why, and accounts for every task it is given.
//
//	s, err := spawn.New(spawn.WithMaxConcurrent(100), spawn.WithQueue(1000))
//	if err != nil {
//		return err
//	}
//	defer s.Shutdown(context.Background())
//	for _, msg := range batch {
//		if err := s.Go(ctx, func(ctx context.Context) error { return handle(ctx, msg) }); err != nil {
//			return err // spawn.ErrSaturated, spawn.ErrClosed, ctx's error...
//		}
//	}
//	return s.Wait(ctx)
//
// Go waits for room until its context is done; TryGo never waits; GoKey adds
// per-tenant caps; Submit returns a Handle with the task's result.
//
// Every task ends in exactly one accounted state (see Stats). A panic in a
// task is recovered on the worker and reported as a *PanicError with its
// stack (through the Handle, Hooks.OnPanic and Stats); so is a task calling
// runtime.Goexit. A task that submits into its own full spawner gets
// ErrWouldDeadlock instead of deadlocking. Optional layers shed work by
// admission rate (WithRate), per key (WithPerKey) and when the whole
// process is overloaded (WithOverloadGuard).
//
// Workers exit after an idle timeout, so an idle spawner owns no goroutine,
// and Shutdown leaves none behind when it returns nil.
package spawn
