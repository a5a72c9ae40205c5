package garrisonprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/garrison-go/garrison/changuard"
	"github.com/garrison-go/garrison/contrib/prometheus/internal/collect"
	"github.com/garrison-go/garrison/internal/obs"
	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/lockorder"
	"github.com/garrison-go/garrison/spawn"
	"github.com/garrison-go/garrison/timeout"
)

// Source is anything with a Stats method returning S: *spawn.Spawner is a
// Source[spawn.Stats], *changuard.Chan[T] a Source[changuard.ChanStats].
// Collectors depend on this one method only, so they keep working as the
// primitives grow.
type Source[S any] interface{ Stats() S }

// SourceFunc adapts a snapshot function, such as a wrapper that adds up
// several primitives, to Source.
type SourceFunc[S any] func() S

// Stats calls f.
func (f SourceFunc[S]) Stats() S { return f() }

// NewSpawnerCollector exports a spawn.Spawner: tasks submitted and started,
// task outcomes (succeeded, failed, panicked, rejected, canceled,
// timed_out), and running, queued, waiting, keys, workers and overloaded
// gauges. It returns an error for an empty name or a nil s.
func NewSpawnerCollector(name string, s Source[spawn.Stats]) (prometheus.Collector, error) {
	return collect.New(name, s, obs.Spawner)
}

// NewListenerCollector exports a limiter.Listener: connections accepted,
// rejected by reason (a limiter.Reason string), active and tracked
// prefixes. It returns an error for an empty name or a nil l.
func NewListenerCollector(name string, l Source[limiter.ListenerStats]) (prometheus.Collector, error) {
	return collect.New(name, l, obs.Listener)
}

// NewKeyedCollector exports a limiter.Keyed's table: capacity, keys
// tracked, evictions and lossy evictions. It returns an error for an empty
// name or a nil k.
func NewKeyedCollector(name string, k Source[limiter.KeyedStats]) (prometheus.Collector, error) {
	return collect.New(name, k, obs.Keyed)
}

// NewChanCollector exports a changuard.Chan: values offered by outcome,
// values removed by how, full events, blocked senders, length and
// capacity. It returns an error for an empty name or a nil c.
func NewChanCollector(name string, c Source[changuard.ChanStats]) (prometheus.Collector, error) {
	return collect.New(name, c, obs.Chan)
}

// NewOwnerCollector exports a changuard.Owner: jobs queued, jobs by
// outcome and panics. It returns an error for an empty name or a nil o.
func NewOwnerCollector(name string, o Source[changuard.OwnerStats]) (prometheus.Collector, error) {
	return collect.New(name, o, obs.Owner)
}

// NewGuardedCollector exports a changuard.Guarded's lock counters. It
// returns an error for an empty name or a nil g.
func NewGuardedCollector(name string, g Source[changuard.GuardedStats]) (prometheus.Collector, error) {
	return collect.New(name, g, obs.Guarded)
}

// NewSnapshotCollector exports a changuard.Snapshot's version and retries.
// It returns an error for an empty name or a nil s.
func NewSnapshotCollector(name string, s Source[changuard.SnapshotStats]) (prometheus.Collector, error) {
	return collect.New(name, s, obs.Snapshot)
}

// NewDetacherCollector exports a timeout.Detacher: calls by outcome, late
// returns, and running, abandoned and max gauges. It returns an error for
// an empty name or a nil d.
func NewDetacherCollector(name string, d Source[timeout.DetacherStats]) (prometheus.Collector, error) {
	return collect.New(name, d, obs.Detacher)
}

// NewWatchdogCollector exports a timeout.Watchdog: tokens tracking and
// tracked, stalls and cancellations. It returns an error for an empty name
// or a nil w.
func NewWatchdogCollector(name string, w Source[timeout.WatchdogStats]) (prometheus.Collector, error) {
	return collect.New(name, w, obs.Watchdog)
}

// NewTimedMutexCollector exports a lockorder.TimedMutex: held, waiters,
// contended and abandoned acquisitions. It returns an error for an empty
// name or a nil m.
func NewTimedMutexCollector(name string, m Source[lockorder.TimedStats]) (prometheus.Collector, error) {
	return collect.New(name, m, obs.Timed)
}

// NewCheckerCollector exports the process-wide lock-order checker
// (lockorder.Stats): whether it is compiled in, known edges, live
// instance classes and reports, labelled name="<name>" (use the service's
// name). Register it once per registry.
func NewCheckerCollector(name string) (prometheus.Collector, error) {
	return collect.New(name, SourceFunc[lockorder.CheckerStats](lockorder.Stats), obs.Checker)
}

// NewCoalescerCollector exports a spawn.Coalescer: calls by outcome (executed, joined, rejected), callers that left, panics, executions in flight and keys. It returns an error for an
// empty name or a nil c.
func NewCoalescerCollector(name string, c Source[spawn.CoalescerStats]) (prometheus.Collector, error) {
	return collect.New(name, c, obs.Coalescer)
}

// NewAdaptiveCollector exports a limiter.AdaptiveLimiter: the current limit and its bounds, in-flight requests, baseline and latest latency, probes, limit changes by direction, and requests admitted, waited, dropped and rejected by criticality. It returns an error for an
// empty name or a nil a.
func NewAdaptiveCollector(name string, a Source[limiter.AdaptiveStats]) (prometheus.Collector, error) {
	return collect.New(name, a, obs.Adaptive)
}

// NewGroupCollector exports a spawn.Group: tasks admitted and rejected,
// failed, and pending. It returns an error for an empty name or a nil g.
func NewGroupCollector(name string, g Source[spawn.GroupStats]) (prometheus.Collector, error) {
	return collect.New(name, g, obs.Group)
}

// NewMiddlewareCollector exports a limiter.MiddlewareCounter: requests by
// outcome (allowed, rejected, dry-run rejected, exempt) and limiter errors.
// It returns an error for an empty name or a nil m.
func NewMiddlewareCollector(name string, m Source[limiter.MiddlewareStats]) (prometheus.Collector, error) {
	return collect.New(name, m, obs.Middleware)
}

// NewReadinessCollector exports a limiter.Readiness: ready, transitions by the state entered, and agent-check answers. It returns an error for an
// empty name or a nil r.
func NewReadinessCollector(name string, r Source[limiter.ReadinessStats]) (prometheus.Collector, error) {
	return collect.New(name, r, obs.Readiness)
}
