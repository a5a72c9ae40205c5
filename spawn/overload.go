package spawn

import (
	"math"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// OverloadGuard makes a spawner shed new tasks with ErrOverloaded while the
// whole process looks overloaded, whatever the spawner's own limits say: a
// last line of defense when many spawners (or other code) together exhaust
// memory or the scheduler.
//
// The guard reads runtime/metrics at most once per SampleEvery, lazily: the
// first admission attempt after the period has elapsed takes the sample
// (costing it a few microseconds); every other attempt costs one clock read
// and two atomic loads. No goroutine is started. The verdict of the last
// sample holds until the next one, so the guard needs admission attempts to
// notice that the process recovered.
type OverloadGuard struct {
	// MaxHeapBytes is the largest heap, in bytes occupied by objects
	// (runtime/metrics "/memory/classes/heap/objects:bytes"), at which
	// tasks are still admitted. 0 disables this check.
	MaxHeapBytes uint64
	// MaxGoroutines is the largest number of live goroutines
	// ("/sched/goroutines:goroutines") at which tasks are still admitted.
	// 0 disables this check. At least one of the two must be set.
	MaxGoroutines int
	// SampleEvery is the least time between two samples; 0 means
	// DefaultSampleEvery.
	SampleEvery time.Duration
	// OnCrossing, if set, is called on the sampling goroutine each time a
	// sample changes the verdict (into or out of overload), so a service
	// can alert. It is not called under any lock of the spawner.
	OnCrossing func(OverloadEvent)
}

// OverloadEvent describes the sample that changed an OverloadGuard's
// verdict.
type OverloadEvent struct {
	// Overloaded is the new verdict: true if a threshold is exceeded.
	Overloaded bool
	// HeapBytes and Goroutines are the sampled values.
	HeapBytes  uint64
	Goroutines int
}

const (
	metricHeap       = "/memory/classes/heap/objects:bytes"
	metricGoroutines = "/sched/goroutines:goroutines"
)

type guard struct {
	cfg   OverloadGuard
	epoch time.Time    // origin of due, a monotonic clock reading
	due   atomic.Int64 // nanoseconds since epoch when the next sample is due
	over  atomic.Bool

	mu      sync.Mutex // guards samples
	samples [2]metrics.Sample
}

func newGuard(cfg OverloadGuard) *guard {
	g := &guard{cfg: cfg, epoch: time.Now()}
	g.samples[0].Name = metricHeap
	g.samples[1].Name = metricGoroutines
	return g
}

// overloaded returns the current verdict, first refreshing it if a sample is
// due. The CAS on due elects one caller per period to sample.
func (g *guard) overloaded() bool {
	now := int64(time.Since(g.epoch))
	if due := g.due.Load(); now >= due && g.due.CompareAndSwap(due, g.after(now)) {
		g.sample()
	}
	return g.over.Load()
}

// after returns when the sample after one taken at now is due, saturating
// rather than overflowing for a huge SampleEvery.
func (g *guard) after(now int64) int64 {
	if next := now + int64(g.cfg.SampleEvery); next >= now {
		return next
	}
	return math.MaxInt64
}

func (g *guard) sample() {
	g.mu.Lock()
	metrics.Read(g.samples[:])
	ev := OverloadEvent{
		HeapBytes:  uint64Value(g.samples[0].Value),
		Goroutines: int(uint64Value(g.samples[1].Value)),
	}
	ev.Overloaded = g.cfg.MaxHeapBytes > 0 && ev.HeapBytes > g.cfg.MaxHeapBytes ||
		g.cfg.MaxGoroutines > 0 && ev.Goroutines > g.cfg.MaxGoroutines
	changed := g.over.Swap(ev.Overloaded) != ev.Overloaded
	g.mu.Unlock()
	if changed && g.cfg.OnCrossing != nil {
		g.cfg.OnCrossing(ev)
	}
}

// uint64Value reads a sample, treating a metric this runtime does not have
// as 0 (never over its threshold) rather than failing admissions.
func uint64Value(v metrics.Value) uint64 {
	if v.Kind() != metrics.KindUint64 {
		return 0
	}
	return v.Uint64()
}
