package spawn

// Stats is a snapshot of a spawner's counters and gauges. Counters only
// grow. Every task passed to Go, TryGo, GoKey or Submit is counted in
// Submitted and ends in exactly one of Succeeded, Failed, Panicked,
// Rejected, Canceled, TimedOut or Shed, so whenever the spawner is
// quiescent (callers parked in Go may be waiting meanwhile)
//
//	Submitted == Succeeded+Failed+Panicked+Rejected+Canceled+TimedOut+Shed+Running+Queued
//
// The fields are read one by one without stopping the spawner, so a
// snapshot taken while tasks come and go is only approximately consistent.
type Stats struct {
	// Submitted counts every task passed in, admitted or not, from the
	// moment it is admitted or rejected: a caller still waiting in Go,
	// GoKey or Submit is counted in Waiting only.
	Submitted int64
	// Started counts tasks that began to run.
	Started int64
	// Succeeded counts tasks that returned nil in time.
	Succeeded int64
	// Failed counts tasks that returned an error in time.
	Failed int64
	// Panicked counts tasks that panicked or called runtime.Goexit.
	Panicked int64
	// Rejected counts tasks refused synchronously, which never ran.
	Rejected int64
	// Canceled counts admitted tasks dropped before running (Cancel, a done
	// submit context, Shutdown) and running tasks whose context was
	// canceled (Cancel, Shutdown) before they returned.
	Canceled int64
	// TimedOut counts tasks still running when their WithTaskTimeout
	// deadline passed, whatever they returned.
	TimedOut int64
	// Shed counts queued tasks dropped without running by queue-time
	// shedding (WithQueueTarget), each resolved with ErrQueueTimeout.
	Shed int64

	// RejectedSheddable, RejectedNormal and RejectedCritical count, of
	// Rejected, the tasks refused with ErrSaturated whose context carried
	// that criticality (see Criticality); unmarked tasks are in none.
	RejectedSheddable, RejectedNormal, RejectedCritical int64

	// Running is the number of tasks running now (at most MaxConcurrent).
	Running int
	// Queued is the number of admitted tasks not yet started.
	Queued int
	// Waiting is the number of callers parked in Go, GoKey or Submit.
	Waiting int
	// Keys is the number of keys in the WithPerKey table.
	Keys int
	// Workers is the number of worker goroutines alive, zero when idle.
	Workers int
	// Overloaded is the overload guard's last verdict.
	Overloaded bool
	// LIFO reports that queue-time shedding sees a standing queue: the
	// queue serves the newest task first and sheds stale ones.
	LIFO bool
	// LIFOSwitches counts the times LIFO began.
	LIFOSwitches int64
	// Adaptive is the WithAdaptiveLimit limit's state, zero without one.
	Adaptive AdaptiveStats
}

// ends reads the end counters, then the admitted count and the starts: what
// ends tasks before what starts them, so that the derived running gauge is
// never negative (a task's start and end are counted on the same stripe,
// its start first).
func (s *Spawner) ends() (succeeded, failed, panicked, timedOut, canceled, started, running, pending int64) {
	for i := range s.stripes {
		succeeded += s.stripes[i].succeeded.Load()
		failed += s.stripes[i].failed.Load()
	}
	panicked, timedOut = s.panicked.Load(), s.timedOut.Load()
	canceledRun := s.canceledRun.Load()
	canceled = canceledRun + s.canceledQueued.Load()
	pending = s.pending()
	for i := range s.stripes {
		started += s.stripes[i].started.Load()
	}
	running = started - (succeeded + failed + panicked + timedOut + canceledRun)
	return succeeded, failed, panicked, timedOut, canceled, started, min(max(running, 0), pending), pending
}

// Stats returns a snapshot of s's counters and gauges (zero for a nil s).
// It does not block.
func (s *Spawner) Stats() Stats {
	if s == nil {
		return Stats{}
	}
	st := Stats{Shed: s.shed.Load(), Rejected: s.rejected.Load()}
	var running, pending int64
	st.Succeeded, st.Failed, st.Panicked, st.TimedOut, st.Canceled, st.Started, running, pending = s.ends()
	// Every task submitted was admitted (counted in state), rejected or
	// run inline.
	st.Submitted = s.state.Load()&^closedBit + s.rejected.Load() + s.inline.Load()
	st.Running = int(running)
	st.Queued = int(pending - running)
	st.Waiting = int(s.waiting.Load())
	st.Workers = int(s.workers.Load())
	if s.keys != nil {
		st.Keys = int(s.keys.size.Load())
	}
	if s.guard != nil {
		st.Overloaded = s.guard.over.Load()
	}
	st.RejectedSheddable = s.rejectedLevel[0].Load()
	st.RejectedNormal = s.rejectedLevel[1].Load()
	st.RejectedCritical = s.rejectedLevel[2].Load()
	if s.cd != nil {
		// A queue that drained is not standing, even before a worker
		// has looked at it again and reset the state.
		st.LIFO = s.cd.overloaded.Load() && !s.queueEmpty()
		st.LIFOSwitches = s.cd.switches.Load()
	}
	st.Adaptive = s.adaptiveStats()
	return st
}

// Load is how close to overload the spawner is, shaped as the Load of a
// limiter.LoadProbe so that a service can feed its readiness check with
// it: 0 when idle, 1 at saturation, more beyond. It is the largest of the
// queued tasks over Queue, and with WithQueueTarget the queue delay (the
// oldest queued task's wait, as last seen by a worker) over the target;
// with no queue, running tasks over the running cap (the adaptive limit or
// MaxConcurrent). Running at the cap with an empty queue is not overload:
// the queue is what fills when work arrives faster than it is served. Load
// never blocks and allocates nothing; it returns 0 for a nil s. A service
// passes it as is:
//
//	limiter.LoadProbe{Name: "spawn", Load: s.Load}
func (s *Spawner) Load() float64 {
	if s == nil {
		return 0
	}
	_, _, _, _, _, _, running, pending := s.ends()
	var load float64
	if s.queueCap > 0 {
		load = float64(pending-running) / float64(s.queueCap)
	} else {
		load = float64(running) / float64(max(s.runCap(), 1))
	}
	if s.cd != nil {
		load = max(load, float64(s.cd.delay.Load())/float64(s.cd.target))
	}
	return load
}
