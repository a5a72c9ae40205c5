package obs

import (
	"github.com/garrison-go/garrison/changuard"
	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/lockorder"
	"github.com/garrison-go/garrison/spawn"
	"github.com/garrison-go/garrison/timeout"
)

// Spawner is the catalog for spawn.Stats. Every task ends in one outcome,
// so sum(outcomes) + running + queued == submitted when the spawner is
// quiescent.
var Spawner = []Metric[spawn.Stats]{
	counter("spawn", "tasks_submitted", "Tasks passed to Go, TryGo, GoKey or Submit, admitted or not.",
		func(s spawn.Stats) uint64 { return uint64(s.Submitted) }),
	counter("spawn", "tasks_started", "Tasks that began to run.",
		func(s spawn.Stats) uint64 { return uint64(s.Started) }),
	labeled("spawn", "task_outcomes", "Tasks by the one state they ended in.", "outcome",
		[]string{"succeeded", "failed", "panicked", "rejected", "canceled", "timed_out", "shed"},
		func(s spawn.Stats) []uint64 {
			return []uint64{uint64(s.Succeeded), uint64(s.Failed), uint64(s.Panicked),
				uint64(s.Rejected), uint64(s.Canceled), uint64(s.TimedOut), uint64(s.Shed)}
		}),
	labeled("spawn", "tasks_refused_by_criticality", "Tasks refused at a criticality's share of capacity (counted in rejected too).", "criticality",
		[]string{"sheddable", "normal", "critical"},
		func(s spawn.Stats) []uint64 {
			return []uint64{uint64(s.RejectedSheddable), uint64(s.RejectedNormal), uint64(s.RejectedCritical)}
		}),
	gauge("spawn", "queue_lifo", "1 while queue-time shedding serves the queue newest first.", func(s spawn.Stats) float64 { return b2f(s.LIFO) }),
	counter("spawn", "queue_lifo_switches", "Times the queue switched to newest first.", func(s spawn.Stats) uint64 { return uint64(s.LIFOSwitches) }),
	gauge("spawn", "adaptive_limit", "The adaptive limit on running tasks (0 without WithAdaptiveLimit).", func(s spawn.Stats) float64 { return float64(s.Adaptive.Limit) }),
	gauge("spawn", "adaptive_baseline_seconds", "The learned no-load run time of a task.", func(s spawn.Stats) float64 { return s.Adaptive.Baseline.Seconds() }),
	gauge("spawn", "adaptive_latency_seconds", "The latest window's average run time.", func(s spawn.Stats) float64 { return s.Adaptive.Latency.Seconds() }),
	gauge("spawn", "tasks_running", "Tasks running now.", func(s spawn.Stats) float64 { return float64(s.Running) }),
	gauge("spawn", "tasks_queued", "Admitted tasks not yet started.", func(s spawn.Stats) float64 { return float64(s.Queued) }),
	gauge("spawn", "callers_waiting", "Callers parked in Go, GoKey or Submit.", func(s spawn.Stats) float64 { return float64(s.Waiting) }),
	gauge("spawn", "keys", "Keys in the per-key table.", func(s spawn.Stats) float64 { return float64(s.Keys) }),
	gauge("spawn", "workers", "Worker goroutines alive.", func(s spawn.Stats) float64 { return float64(s.Workers) }),
	gauge("spawn", "overloaded", "1 while the overload guard sheds work.", func(s spawn.Stats) float64 { return b2f(s.Overloaded) }),
}

// Coalescer is the catalog for spawn.CoalescerStats. Every call is
// counted in one outcome.
var Coalescer = []Metric[spawn.CoalescerStats]{
	labeled("coalescer", "calls", "Calls of Do by outcome: started an execution, joined one in flight, or rejected.", "outcome",
		[]string{"executed", "joined", "rejected"},
		func(s spawn.CoalescerStats) []uint64 {
			return []uint64{uint64(s.Executions), uint64(s.Joined), uint64(s.Rejected)}
		}),
	counter("coalescer", "callers_left", "Callers whose context ended before the result was ready.",
		func(s spawn.CoalescerStats) uint64 { return uint64(s.Left) }),
	counter("coalescer", "panics", "Executions that panicked.", func(s spawn.CoalescerStats) uint64 { return uint64(s.Panicked) }),
	gauge("coalescer", "in_flight", "Executions running now, abandoned ones included.",
		func(s spawn.CoalescerStats) float64 { return float64(s.InFlight) }),
	gauge("coalescer", "keys", "Keys callers can join now.", func(s spawn.CoalescerStats) float64 { return float64(s.Keys) }),
}

// listenerReasons are the indexes into ListenerStats.Rejected (indexed by
// Reason, and growing with it) that a Listener counts: every Reason but
// NoReason and the two only request middlewares give.
var listenerReasons = func() (idx []int) {
	for i := 1; i < len(limiter.ListenerStats{}.Rejected); i++ {
		if r := limiter.Reason(i); r != limiter.RequestRate && r != limiter.Concurrency {
			idx = append(idx, i)
		}
	}
	return idx
}()

func listenerReasonNames() []string {
	names := make([]string, len(listenerReasons))
	for j, i := range listenerReasons {
		names[j] = limiter.Reason(i).String()
	}
	return names
}

// Listener is the catalog for limiter.ListenerStats. Every connection the
// inner listener returned is accepted or rejected for one reason.
var Listener = []Metric[limiter.ListenerStats]{
	counter("listener", "connections_accepted", "Connections handed to the server.",
		func(s limiter.ListenerStats) uint64 { return s.Accepted }),
	labeled("listener", "connections_rejected", "Connections closed by the listener, by reason.", "reason",
		listenerReasonNames(), func(s limiter.ListenerStats) []uint64 {
			out := make([]uint64, len(listenerReasons))
			for j, i := range listenerReasons {
				out[j] = s.Rejected[i]
			}
			return out
		}),
	gauge("listener", "connections_active", "Connections accepted and not yet closed.",
		func(s limiter.ListenerStats) float64 { return float64(s.Active) }),
	gauge("listener", "tracked_prefixes", "Source prefixes in the per-IP table.",
		func(s limiter.ListenerStats) float64 { return float64(s.TrackedIPs) }),
	counter("listener", "lossy_evictions", "Source prefixes forgotten before their accept rate refilled.",
		func(s limiter.ListenerStats) uint64 { return s.LossyEvictions }),
}

// Adaptive is the catalog for limiter.AdaptiveStats.
var Adaptive = []Metric[limiter.AdaptiveStats]{
	gauge("adaptive", "limit", "The current concurrency limit.", func(s limiter.AdaptiveStats) float64 { return float64(s.Limit) }),
	gauge("adaptive", "limit_min", "The lowest limit allowed.", func(s limiter.AdaptiveStats) float64 { return float64(s.Min) }),
	gauge("adaptive", "limit_max", "The highest limit allowed.", func(s limiter.AdaptiveStats) float64 { return float64(s.Max) }),
	gauge("adaptive", "in_flight", "Requests holding a slot now.", func(s limiter.AdaptiveStats) float64 { return float64(s.InFlight) }),
	gauge("adaptive", "baseline_seconds", "The learned no-load latency.",
		func(s limiter.AdaptiveStats) float64 { return s.Baseline.Seconds() }),
	gauge("adaptive", "latency_seconds", "The latest window's average latency.",
		func(s limiter.AdaptiveStats) float64 { return s.Latency.Seconds() }),
	gauge("adaptive", "probing", "1 while the limit is pinned to its minimum to measure the baseline.",
		func(s limiter.AdaptiveStats) float64 { return b2f(s.Probing) }),
	counter("adaptive", "probes", "Baseline probes.", func(s limiter.AdaptiveStats) uint64 { return s.Probes }),
	labeled("adaptive", "limit_changes", "Windows that moved the limit, by direction.", "direction",
		[]string{"increase", "decrease"}, func(s limiter.AdaptiveStats) []uint64 { return []uint64{s.Increases, s.Decreases} }),
	labeled("adaptive", "requests_rejected", "Requests refused, by criticality.", "criticality",
		[]string{"sheddable", "normal", "critical"},
		func(s limiter.AdaptiveStats) []uint64 {
			return []uint64{s.RejectedSheddable, s.RejectedNormal, s.RejectedCritical}
		}),
	counter("adaptive", "requests_admitted", "Requests let through.", func(s limiter.AdaptiveStats) uint64 { return s.Admitted }),
	counter("adaptive", "requests_waited", "Admitted requests that waited for a slot.", func(s limiter.AdaptiveStats) uint64 { return s.Waited }),
	counter("adaptive", "requests_dropped", "Requests whose deadline expired in flight.", func(s limiter.AdaptiveStats) uint64 { return s.Dropped }),
}

// Readiness is the catalog for limiter.ReadinessStats. The unready cause is
// a free-form string, so it is not a label.
var Readiness = []Metric[limiter.ReadinessStats]{
	gauge("readiness", "ready", "1 while the instance reports ready.", func(s limiter.ReadinessStats) float64 { return b2f(s.Ready) }),
	labeled("readiness", "transitions", "Changes of readiness, by the state entered.", "to",
		[]string{"unready", "ready"}, func(s limiter.ReadinessStats) []uint64 { return []uint64{s.BecameUnready, s.BecameReady} }),
	counter("readiness", "agent_answers", "Agent-check lines sent to the load balancer.",
		func(s limiter.ReadinessStats) uint64 { return s.AgentAnswers }),
}

// Group is the catalog for spawn.GroupStats.
var Group = []Metric[spawn.GroupStats]{
	labeled("group", "tasks", "Tasks offered to the group, by admission.", "outcome",
		[]string{"admitted", "rejected"},
		func(s spawn.GroupStats) []uint64 { return []uint64{uint64(s.Admitted), uint64(s.Rejected)} }),
	counter("group", "tasks_failed", "Admitted tasks that ended with an error or a panic.",
		func(s spawn.GroupStats) uint64 { return uint64(s.Failed) }),
	gauge("group", "tasks_pending", "Admitted tasks not yet ended.", func(s spawn.GroupStats) float64 { return float64(s.Pending) }),
}

// Middleware is the catalog for limiter.MiddlewareStats (a
// MiddlewareCounter given to the rate-limit or concurrency middlewares).
var Middleware = []Metric[limiter.MiddlewareStats]{
	labeled("middleware", "requests", "Requests seen by the middleware, by outcome.", "outcome",
		[]string{"allowed", "rejected", "dry_run_rejected", "exempt"},
		func(s limiter.MiddlewareStats) []uint64 {
			return []uint64{s.Allowed, s.Rejected, s.DryRunRejected, s.Exempt}
		}),
	counter("middleware", "limiter_errors", "Decisions that came with a limiter error (counted in requests too).",
		func(s limiter.MiddlewareStats) uint64 { return s.Errors }),
}

// Keyed is the catalog for limiter.KeyedStats.
var Keyed = []Metric[limiter.KeyedStats]{
	gauge("keyed", "capacity", "Keys the table can track at once.",
		func(s limiter.KeyedStats) float64 { return float64(s.Capacity) }),
	gauge("keyed", "tracked_keys", "Keys tracked now.",
		func(s limiter.KeyedStats) float64 { return float64(s.Tracked) }),
	counter("keyed", "evictions", "Keys replaced by a new key.",
		func(s limiter.KeyedStats) uint64 { return s.Evictions }),
	counter("keyed", "lossy_evictions", "Evicted keys whose bucket was not yet full: their history was lost.",
		func(s limiter.KeyedStats) uint64 { return s.LossyEvictions }),
}

// Chan is the catalog for changuard.ChanStats.
var Chan = []Metric[changuard.ChanStats]{
	labeled("chan", "values_offered", "Values passed to Send or TrySend, by outcome: sent, or handed back.", "outcome",
		[]string{"sent", "rejected", "returned", "canceled"},
		func(s changuard.ChanStats) []uint64 { return []uint64{s.Sent, s.Rejected, s.Returned, s.Canceled} }),
	labeled("chan", "values_removed", "Sent values taken out of the buffer, by how.", "how",
		[]string{"received", "drained", "dropped"},
		func(s changuard.ChanStats) []uint64 { return []uint64{s.Received, s.Drained, s.Dropped} }),
	counter("chan", "full_events", "Sends that found the buffer full, whatever the policy.",
		func(s changuard.ChanStats) uint64 { return s.FullEvents }),
	gauge("chan", "blocked_senders", "Senders waiting for room now.",
		func(s changuard.ChanStats) float64 { return float64(s.BlockedSenders) }),
	gauge("chan", "length", "Values buffered now.", func(s changuard.ChanStats) float64 { return float64(s.Len) }),
	gauge("chan", "capacity", "Buffer capacity.", func(s changuard.ChanStats) float64 { return float64(s.Cap) }),
}

// Owner is the catalog for changuard.OwnerStats.
var Owner = []Metric[changuard.OwnerStats]{
	gauge("owner", "jobs_queued", "Jobs waiting in the mailbox now.",
		func(s changuard.OwnerStats) float64 { return float64(s.Queued) }),
	labeled("owner", "jobs", "Jobs by outcome.", "outcome",
		[]string{"completed", "skipped", "rejected"},
		func(s changuard.OwnerStats) []uint64 { return []uint64{s.Completed, s.Skipped, s.Rejected} }),
	counter("owner", "panics", "Jobs whose function panicked.", func(s changuard.OwnerStats) uint64 { return s.Panics }),
}

// Guarded is the catalog for changuard.GuardedStats.
var Guarded = []Metric[changuard.GuardedStats]{
	counter("guarded", "contended", "Acquisitions that had to wait.", func(s changuard.GuardedStats) uint64 { return s.Contended }),
	counter("guarded", "canceled", "Waits given up because their context ended.", func(s changuard.GuardedStats) uint64 { return s.Canceled }),
	gauge("guarded", "waiting", "Goroutines waiting for the lock now.", func(s changuard.GuardedStats) float64 { return float64(s.Waiting) }),
}

// Snapshot is the catalog for changuard.SnapshotStats.
var Snapshot = []Metric[changuard.SnapshotStats]{
	gauge("snapshot", "version", "Current version.", func(s changuard.SnapshotStats) float64 { return float64(s.Version) }),
	counter("snapshot", "retries", "Update rounds that lost a race and ran again.", func(s changuard.SnapshotStats) uint64 { return s.Retries }),
}

// Detacher is the catalog for timeout.DetacherStats.
var Detacher = []Metric[timeout.DetacherStats]{
	labeled("detacher", "calls", "Calls by outcome.", "outcome",
		[]string{"completed", "timed_out", "rejected", "canceled"},
		func(s timeout.DetacherStats) []uint64 {
			return []uint64{s.Completed, s.TimedOut, s.Rejected, s.Canceled}
		}),
	counter("detacher", "late_returns", "Abandoned functions that have since returned.",
		func(s timeout.DetacherStats) uint64 { return s.LateReturns }),
	gauge("detacher", "running", "Functions that have not returned, abandoned or not.",
		func(s timeout.DetacherStats) float64 { return float64(s.Running) }),
	gauge("detacher", "abandoned", "Functions still running whose caller has returned.",
		func(s timeout.DetacherStats) float64 { return float64(s.Abandoned) }),
	gauge("detacher", "max", "The cap on functions running.", func(s timeout.DetacherStats) float64 { return float64(s.Max) }),
}

// Watchdog is the catalog for timeout.WatchdogStats.
var Watchdog = []Metric[timeout.WatchdogStats]{
	gauge("watchdog", "tracking", "Tokens tracked now.", func(s timeout.WatchdogStats) float64 { return float64(s.Tracking) }),
	counter("watchdog", "tracked", "Track calls.", func(s timeout.WatchdogStats) uint64 { return s.Tracked }),
	counter("watchdog", "stalls", "Stalls found.", func(s timeout.WatchdogStats) uint64 { return s.Stalls }),
	counter("watchdog", "canceled", "Contexts cancelled because their token stalled.", func(s timeout.WatchdogStats) uint64 { return s.Canceled }),
}

// Checker is the catalog for lockorder.CheckerStats, the process-wide
// order checker.
var Checker = []Metric[lockorder.CheckerStats]{
	gauge("lockorder", "enabled", "1 when order checking is compiled in.", func(s lockorder.CheckerStats) float64 { return b2f(s.Enabled) }),
	gauge("lockorder", "edges", "Known lock-class pairs (held A while acquiring B).", func(s lockorder.CheckerStats) float64 { return float64(s.Edges) }),
	gauge("lockorder", "instance_classes", "Live per-instance lock classes.", func(s lockorder.CheckerStats) float64 { return float64(s.InstanceClasses) }),
	counter("lockorder", "reports", "Order violations delivered to the handler.", func(s lockorder.CheckerStats) uint64 { return s.Reports }),
}

// Timed is the catalog for lockorder.TimedStats.
var Timed = []Metric[lockorder.TimedStats]{
	gauge("timed_mutex", "locked", "1 while the mutex is held.", func(s lockorder.TimedStats) float64 { return b2f(s.Locked) }),
	gauge("timed_mutex", "waiters", "Goroutines queued for the lock.", func(s lockorder.TimedStats) float64 { return float64(s.Waiters) }),
	counter("timed_mutex", "contended", "Acquisitions that had to wait.", func(s lockorder.TimedStats) uint64 { return s.Contended }),
	counter("timed_mutex", "abandoned", "Timed acquisitions that gave up.", func(s lockorder.TimedStats) uint64 { return s.Abandoned }),
}

// StoreStats mirrors limiter/redisstore's Stats, which this module cannot
// import (redisstore is a nested module that requires this one). The
// contrib modules copy a redisstore.Stats into it field by field.
type StoreStats struct {
	Allowed, Denied, Failed, Errors, FallbackDecisions, CacheHits, RoundTrips uint64
	BreakerOpen                                                               bool
	DenyCacheSize                                                             int
}

// Store is the catalog for a shared-store rate limiter (redisstore).
var Store = []Metric[StoreStats]{
	labeled("redisstore", "decisions", "Decisions by result; fallback and cache decisions included.", "result",
		[]string{"allowed", "denied"}, func(s StoreStats) []uint64 { return []uint64{s.Allowed, s.Denied} }),
	counter("redisstore", "failed_calls", "Calls that returned an error: empty key, caller's context done.",
		func(s StoreStats) uint64 { return s.Failed }),
	counter("redisstore", "errors", "Redis round trips that failed or timed out.", func(s StoreStats) uint64 { return s.Errors }),
	counter("redisstore", "fallback_decisions", "Decisions made by the fail policy because Redis was unavailable.",
		func(s StoreStats) uint64 { return s.FallbackDecisions }),
	counter("redisstore", "deny_cache_hits", "Denials answered by the deny cache without a round trip.",
		func(s StoreStats) uint64 { return s.CacheHits }),
	counter("redisstore", "round_trips", "Commands sent to Redis.", func(s StoreStats) uint64 { return s.RoundTrips }),
	gauge("redisstore", "breaker_open", "1 while the circuit breaker skips Redis.", func(s StoreStats) float64 { return b2f(s.BreakerOpen) }),
	gauge("redisstore", "deny_cache_size", "Entries the deny cache can hold.", func(s StoreStats) float64 { return float64(s.DenyCacheSize) }),
}
