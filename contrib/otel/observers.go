package garrisonotel

import (
	"go.opentelemetry.io/otel/metric"

	"github.com/garrison-go/garrison/changuard"
	"github.com/garrison-go/garrison/contrib/otel/internal/observe"
	"github.com/garrison-go/garrison/internal/obs"
	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/lockorder"
	"github.com/garrison-go/garrison/spawn"
	"github.com/garrison-go/garrison/timeout"
)

// Source is anything with a Stats method returning S: *spawn.Spawner is a
// Source[spawn.Stats], *changuard.Chan[T] a Source[changuard.ChanStats].
// Observers depend on this one method only, so they keep working as the
// primitives grow.
type Source[S any] interface{ Stats() S }

// SourceFunc adapts a snapshot function, such as a wrapper that adds up
// several primitives, to Source.
type SourceFunc[S any] func() S

// Stats calls f.
func (f SourceFunc[S]) Stats() S { return f() }

// ObserveSpawner observes a spawn.Spawner: tasks submitted and started,
// task outcomes (succeeded, failed, panicked, rejected, canceled,
// timed_out), and running, queued, waiting, keys, workers and overloaded
// gauges. It returns an error for a nil meter, an empty name or a nil s.
func ObserveSpawner(meter metric.Meter, name string, s Source[spawn.Stats]) (metric.Registration, error) {
	return observe.Register(meter, name, s, obs.Spawner)
}

// ObserveListener observes a limiter.Listener: connections accepted,
// rejected by reason (a limiter.Reason string), active and tracked
// prefixes. It returns an error for a nil meter, an empty name or a nil l.
func ObserveListener(meter metric.Meter, name string, l Source[limiter.ListenerStats]) (metric.Registration, error) {
	return observe.Register(meter, name, l, obs.Listener)
}

// ObserveKeyed observes a limiter.Keyed's table: capacity, keys
// tracked, evictions and lossy evictions. It returns an error for a nil
// meter, an empty name or a nil k.
func ObserveKeyed(meter metric.Meter, name string, k Source[limiter.KeyedStats]) (metric.Registration, error) {
	return observe.Register(meter, name, k, obs.Keyed)
}

// ObserveChan observes a changuard.Chan: values offered by outcome,
// values removed by how, full events, blocked senders, length and
// capacity. It returns an error for a nil meter, an empty name or a nil c.
func ObserveChan(meter metric.Meter, name string, c Source[changuard.ChanStats]) (metric.Registration, error) {
	return observe.Register(meter, name, c, obs.Chan)
}

// ObserveOwner observes a changuard.Owner: jobs queued, jobs by
// outcome and panics. It returns an error for a nil meter, an empty name or a nil o.
func ObserveOwner(meter metric.Meter, name string, o Source[changuard.OwnerStats]) (metric.Registration, error) {
	return observe.Register(meter, name, o, obs.Owner)
}

// ObserveGuarded observes a changuard.Guarded's lock counters. It
// returns an error for a nil meter, an empty name or a nil g.
func ObserveGuarded(meter metric.Meter, name string, g Source[changuard.GuardedStats]) (metric.Registration, error) {
	return observe.Register(meter, name, g, obs.Guarded)
}

// ObserveSnapshot observes a changuard.Snapshot's version and retries.
// It returns an error for a nil meter, an empty name or a nil s.
func ObserveSnapshot(meter metric.Meter, name string, s Source[changuard.SnapshotStats]) (metric.Registration, error) {
	return observe.Register(meter, name, s, obs.Snapshot)
}

// ObserveDetacher observes a timeout.Detacher: calls by outcome, late
// returns, and running, abandoned and max gauges. It returns an error for
// a nil meter, an empty name or a nil d.
func ObserveDetacher(meter metric.Meter, name string, d Source[timeout.DetacherStats]) (metric.Registration, error) {
	return observe.Register(meter, name, d, obs.Detacher)
}

// ObserveWatchdog observes a timeout.Watchdog: tokens tracking and
// tracked, stalls and cancellations. It returns an error for a nil meter, an empty
// name or a nil w.
func ObserveWatchdog(meter metric.Meter, name string, w Source[timeout.WatchdogStats]) (metric.Registration, error) {
	return observe.Register(meter, name, w, obs.Watchdog)
}

// ObserveTimedMutex observes a lockorder.TimedMutex: held, waiters,
// contended and abandoned acquisitions. It returns an error for a nil
// meter, an empty name or a nil m.
func ObserveTimedMutex(meter metric.Meter, name string, m Source[lockorder.TimedStats]) (metric.Registration, error) {
	return observe.Register(meter, name, m, obs.Timed)
}

// ObserveChecker observes the process-wide lock-order checker
// (lockorder.Stats): whether it is compiled in, known edges, live
// instance classes and reports, labelled name=<name> (use the service's
// name). Observe it once per meter.
func ObserveChecker(meter metric.Meter, name string) (metric.Registration, error) {
	return observe.Register(meter, name, SourceFunc[lockorder.CheckerStats](lockorder.Stats), obs.Checker)
}

// ObserveCoalescer observes a spawn.Coalescer: calls by outcome (executed, joined, rejected), callers that left, panics, executions in flight and keys. It returns an error for a nil
// meter, an empty name or a nil c.
func ObserveCoalescer(meter metric.Meter, name string, c Source[spawn.CoalescerStats]) (metric.Registration, error) {
	return observe.Register(meter, name, c, obs.Coalescer)
}

// ObserveAdaptive observes a limiter.AdaptiveLimiter: the current limit and its bounds, in-flight requests, baseline and latest latency, probes, limit changes by direction, and requests admitted, waited, dropped and rejected by criticality. It returns an error for a nil
// meter, an empty name or a nil a.
func ObserveAdaptive(meter metric.Meter, name string, a Source[limiter.AdaptiveStats]) (metric.Registration, error) {
	return observe.Register(meter, name, a, obs.Adaptive)
}

// ObserveGroup observes a spawn.Group: tasks admitted and rejected, failed,
// and pending. It returns an error for a nil meter, an empty name or a nil
// g.
func ObserveGroup(meter metric.Meter, name string, g Source[spawn.GroupStats]) (metric.Registration, error) {
	return observe.Register(meter, name, g, obs.Group)
}

// ObserveMiddleware observes a limiter.MiddlewareCounter: requests by
// outcome (allowed, rejected, dry-run rejected, exempt) and limiter errors.
// It returns an error for a nil meter, an empty name or a nil m.
func ObserveMiddleware(meter metric.Meter, name string, m Source[limiter.MiddlewareStats]) (metric.Registration, error) {
	return observe.Register(meter, name, m, obs.Middleware)
}

// ObserveReadiness observes a limiter.Readiness: ready, transitions by the state entered, and agent-check answers. It returns an error for a nil
// meter, an empty name or a nil r.
func ObserveReadiness(meter metric.Meter, name string, r Source[limiter.ReadinessStats]) (metric.Registration, error) {
	return observe.Register(meter, name, r, obs.Readiness)
}
