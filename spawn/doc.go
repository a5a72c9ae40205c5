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
//	// Once per process: the bounded spawner every request shares.
//	s, err := spawn.New(spawn.WithMaxConcurrent(100), spawn.WithQueue(1000))
//	if err != nil {
//		return err
//	}
//
//	// Per request: a batch whose errors and panics come back.
//	g, ctx := spawn.NewGroup(ctx, s, spawn.WithCancelOnError())
//	for _, msg := range batch {
//		if err := g.Go(func(ctx context.Context) error { return handle(ctx, msg) }); err != nil {
//			break // not admitted: spawn.ErrSaturated, spawn.ErrClosed, ctx's error...
//		}
//	}
//	return g.Wait() // the first task error, or a *spawn.PanicError
//
// Go waits for room until its context is done; TryGo never waits; GoKey and
// TryGoKey add per-tenant caps; Submit and TrySubmit return a Handle with the
// task's result; a Group waits for its own batch and returns its errors, as
// errgroup.Group does, and nests inside tasks without deadlocking the
// spawner. Spawner.Wait waits for the whole spawner and returns no task
// error. A Coalescer runs one execution of identical concurrent requests
// (the request-stampede defence). Shutdown stops gracefully, Close at once.
//
// A task's context carries the values of the context it was submitted with
// (request ids, trace spans, slog handler context), but not its
// cancellation. Tasks submitted with one context share one allocation for
// this, so Go stays allocation-free per task in a batch.
//
// Every task ends in exactly one accounted state (see Stats). A panic in a
// task is recovered on the worker and reported as a *PanicError with its
// stack, never silently: through Handle.Wait, Group.Wait or Coalescer.Do to
// whoever waits, else Hooks.OnPanic, else a rate-limited slog.Default()
// record (see PanicError); so is a task calling runtime.Goexit. A task that submits into its own full spawner gets
// ErrWouldDeadlock instead of deadlocking. Optional layers shed work by
// admission rate (WithRate), per key (WithPerKey) and when the whole
// process is overloaded (WithOverloadGuard).
//
// # Overload control
//
// A constant MaxConcurrent is a guess; under overload the questions are
// how much to run, what to drop, and whose work goes first ("Handling
// Overload" in Google's SRE book, "Fail at Scale" from Facebook). Three
// options answer them, each off by default and each costing nothing when
// unused:
//
//   - WithAdaptiveLimit moves the cap on running tasks with their run time
//     (the gradient rule of Netflix's concurrency-limits, or AIMD), the
//     same algorithm as limiter's AdaptiveLimiter; MaxConcurrent stays the
//     hard cap.
//   - WithQueueTarget sheds queued tasks that waited longer than a target
//     once the queue has stood above it for an interval (CoDel), with
//     ErrQueueTimeout and a count in Stats.Shed, and serves the queue
//     newest first meanwhile (adaptive LIFO), so that what runs is what a
//     caller still waits for. A burst that drains in time loses nothing.
//   - A task submitted with a context marked by WithCriticality (or by
//     limiter's CriticalityMiddleware) is ranked: Sheddable work may fill
//     75 % of the capacity, Normal 90 %, Critical all of it.
//
// Spawner.Load reports how close to overload the spawner is, for a
// readiness check that takes the instance out of its load balancer before
// it fails.
//
// Workers exit after an idle timeout, so an idle spawner owns no goroutine,
// and Shutdown leaves none behind when it returns nil.
package spawn
