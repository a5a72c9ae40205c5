// Package adaptive holds garrison's one adaptive concurrency limit, shared by
// spawn's Spawner and limiter's HTTP middleware so that both move their
// limit by the same rule.
//
// A fixed concurrency cap is a guess: too low wastes capacity, too high lets
// a slow dependency pile up work until every caller times out. Little's law
// says the useful concurrency is throughput × minimum latency. A [Limit]
// learns the minimum (no-load) latency and keeps the measured latency
// within a tolerance of it, with one of two published rules:
//
//   - [Gradient] (the gradient controller of Netflix's concurrency-limits
//     and Envoy's adaptive concurrency filter): each window the limit is
//     multiplied by tolerance × baseline ÷ measured (the gradient, clamped
//     to [0.5, 1]), plus a headroom of up to √limit so that it can grow
//     while latency is flat; growth is smoothed more than a fall.
//   - [AIMD]: +1 per healthy window, ×0.9 when latency exceeds tolerance ×
//     baseline.
//
// The baseline cannot be observed while the limit keeps a queue in front
// of the dependency, so, as Envoy does, the limit is pinned to Min now and
// then (every ProbeInterval; at once after three windows slower than twice
// the tolerance: the dependency itself changed; and at once after three
// windows slower than the tolerance with the limit already at Min, where
// no queue of the limit's making explains them) until
// ProbeSamples operations admitted during the probe have finished (a third
// of them for a probe the slow windows started), or until a timeout
// (50 baselines, from 100 ms to 5 s); their median is the new baseline. A
// window a fifth faster than the baseline lowers it at once (the
// dependency got faster). A probe that finds the
// dependency much slower than before (more than twice the tolerance)
// restores the limit it had before the slow windows, scaled by Little's
// law from the latency it ran at to the new baseline: the same throughput
// at the new latency, reached at once instead of creeping up for minutes.
// A probe started at Min that finds the dependency slower by more than the
// tolerance than the last whole probe did has no limit from before to
// scale (the windows cut it to Min): the limit slow-starts from Min
// instead. One that finds it no slower (a dependency that Min already
// fills, whose noisy windows read as slow) stops windows at Min from
// starting probes until the next periodic one. A fixed limit (Min = Max)
// is never probed.
//
// Both start slowly as TCP does: the limit doubles each full window until
// the first window slower than the tolerance.
//
// Both rules treat a dropped operation (a timeout, an overload error) as a
// signal to back off by ×0.9 at once, and neither grows the limit while the
// caller uses less than half of it: an idle service proves nothing about a
// larger limit.
//
// The admission path is two atomic operations and a load; latency costs a
// clock read at each end, so outside slow start, probes and small limits
// on slow operations (below 2 × SampleEvery × MinWindow in flight, a
// baseline of 1 ms or more, where a sampled window would span several
// round trips) only one operation in SampleEvery is timed.
package adaptive

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/garrison-go/garrison/internal/criticality"
)

// Algorithm chooses how a [Limit] moves.
type Algorithm uint8

const (
	// Gradient scales the limit by the ratio of the baseline latency to
	// the latest window's (see the package doc).
	Gradient Algorithm = iota
	// AIMD adds one per healthy window and multiplies by 0.9 otherwise.
	AIMD
)

// String returns the algorithm's name, a stable label for metrics.
func (a Algorithm) String() string {
	switch a {
	case Gradient:
		return "gradient2"
	case AIMD:
		return "aimd"
	default:
		return fmt.Sprintf("Algorithm(%d)", uint8(a))
	}
}

// Config sets a [Limit] up. Min and Max are required; zero values elsewhere
// take the documented defaults.
type Config struct {
	Min, Max int
	// Initial is the limit before any measurement (default Min, raised to
	// at least 4 when Max allows).
	Initial   int
	Algorithm Algorithm
	// Tolerance is how much slower than the baseline a window may be
	// before the limit shrinks (default 1.5; at least 1).
	Tolerance float64
	// SampleEvery times one operation in this many on average (a power of
	// two; default 8): a clock read costs 30-50 ns on a virtual machine,
	// more than the rest of the admission path.
	SampleEvery int
	// MinWindow is the fewest timed operations in one window (default 4);
	// a window also holds at least limit/SampleEvery/2 samples, about half
	// a round trip, so the limit moves a few times per round trip.
	MinWindow int
	// ProbeInterval is the time between two baseline probes (default
	// 10s). A probe costs a dip: ProbeSamples operations at Min
	// concurrency. A fixed limit (Min = Max) is never probed.
	ProbeInterval time.Duration
	// ProbeSamples is how many operations admitted during a probe must
	// finish to end it (default 16).
	ProbeSamples int
}

// MaxLimit is the largest Max a [Limit] accepts: well beyond any useful
// concurrency, small enough that no arithmetic here overflows.
const MaxLimit = 1 << 20

// ErrConfig is matched by every configuration error of [New].
var ErrConfig = errors.New("adaptive: bad configuration")

func (c *Config) validate() error {
	switch {
	case c.Min < 1 || c.Max < c.Min || c.Max > MaxLimit:
		return fmt.Errorf("%w: need 1 <= Min (%d) <= Max (%d) <= %d", ErrConfig, c.Min, c.Max, MaxLimit)
	case c.Initial != 0 && (c.Initial < c.Min || c.Initial > c.Max):
		return fmt.Errorf("%w: Initial %d outside [Min %d, Max %d]", ErrConfig, c.Initial, c.Min, c.Max)
	case c.Algorithm > AIMD:
		return fmt.Errorf("%w: unknown %v", ErrConfig, c.Algorithm)
	case c.Tolerance != 0 && (c.Tolerance < 1 || c.Tolerance > 100 || math.IsNaN(c.Tolerance)):
		return fmt.Errorf("%w: Tolerance %v outside [1, 100]", ErrConfig, c.Tolerance)
	case c.SampleEvery < 0 || c.SampleEvery > 1024 || c.SampleEvery&(c.SampleEvery-1) != 0:
		return fmt.Errorf("%w: SampleEvery %d is not a power of two up to 1024", ErrConfig, c.SampleEvery)
	case c.MinWindow < 0 || c.MinWindow > 1<<16:
		return fmt.Errorf("%w: MinWindow %d outside [0, 65536]", ErrConfig, c.MinWindow)
	case c.ProbeInterval < 0:
		return fmt.Errorf("%w: negative ProbeInterval %v", ErrConfig, c.ProbeInterval)
	case c.ProbeSamples < 0 || c.ProbeSamples > 1024:
		return fmt.Errorf("%w: ProbeSamples %d outside [0, 1024]", ErrConfig, c.ProbeSamples)
	}
	if c.Initial == 0 {
		c.Initial = min(max(c.Min, 4), c.Max)
	}
	if c.Tolerance == 0 {
		c.Tolerance = 1.5
	}
	if c.SampleEvery == 0 {
		c.SampleEvery = 8
	}
	if c.MinWindow == 0 {
		c.MinWindow = 4
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = 10 * time.Second
	}
	if c.ProbeSamples == 0 {
		c.ProbeSamples = 16
	}
	return nil
}

// Limit is an adaptive concurrency limit. [Limit.Acquire] admits an
// operation while fewer than the current limit are in flight; every admitted
// operation must be ended by exactly one [Limit.Release].
type Limit struct {
	// limit and mask are read by every admission and written once per
	// window at most: they have a cache line of their own, so that the
	// writes of in-flight counting and of the lock do not evict it from
	// every reader's cache. The leading pad keeps it from the tail of
	// whatever object the allocator put before this one: a Limit is not
	// allocated on a cache-line boundary.
	_     [64]byte
	limit atomic.Int64
	// mask selects the timed operations: SampleEvery-1, or 0 (time every
	// operation) during a probe.
	mask atomic.Uint64
	// epoch is the zero of [Limit.Now], read by every timed operation.
	epoch time.Time
	_     [24]byte

	// ops is the one word every admission writes, once in Acquire and
	// once in Release, as a static counter would: its low 32 bits are the
	// operations in flight (with, for an instant, the Acquires being
	// refused), its high 32 bits the low bits of the count of Releases.
	// Admitted is Releases plus in flight, so counting it costs no atomic
	// operation of its own. releaseHalves counts the times the Release
	// bits crossed a multiple of 2³¹, enough to rebuild the full count
	// (see released).
	ops           atomic.Uint64
	releaseHalves atomic.Uint64
	_             [48]byte

	// waiters is read by every Release, written only by callers that
	// wait: its own line, so that the counters' writes do not evict it.
	waiters atomic.Int64
	_       [56]byte

	mu  sync.Mutex // guards est
	est estimator

	rejected [3]atomic.Uint64 // by levelIndex
	waited   atomic.Uint64    // admitted by AcquireWait after waiting
	dropped  atomic.Uint64
	// admittedSeen is the highest Admitted returned (see admitted).
	admittedSeen atomic.Uint64

	// wake carries one token per Release seen by a waiter; a woken waiter
	// that loses the race for the slot waits again.
	wake chan struct{}
}

// reserve is how many slots work of level lv leaves, at least, to more
// critical work, whatever the limit: a share alone leaves a single slot at
// a small limit (a quarter of 4), and two critical requests arriving
// together at a service that just started would find one refused.
func reserve(lv criticality.Level) int64 {
	if lv <= criticality.Sheddable {
		return 2
	}
	return 1
}

// levelIndex maps Sheddable, Normal and Critical to 0, 1 and 2.
func levelIndex(lv criticality.Level) int {
	return int(min(max(lv, criticality.Sheddable), criticality.Critical) + 1)
}

// estimator is the state that moves the limit; only Release's timed path
// touches it, under Limit.mu.
type estimator struct {
	cfg      Config
	epoch    time.Time // the Limit's, for now
	limit    float64
	baseline float64 // learned no-load latency, ns; 0 until the first window
	short    float64 // latest window's average latency, ns
	sum      float64
	n        int
	peak     int64 // most in flight seen in this window
	drops    int

	grown      bool  // slow start is over: a window was slower than the tolerance
	appLimited bool  // the latest window used less than half the limit
	lastProbe  int64 // when the last probe ended (or New), on now's clock
	slow       int   // consecutive windows slower than 2 × tolerance × baseline
	// pinned counts consecutive windows slower than the tolerance closed
	// with the limit already at Min (see closeWindow).
	pinned      int
	probing     bool
	pinnedProbe bool // the running probe was started by pinned windows
	// pinnedSpent: a probe started by pinned windows found the
	// dependency no slower than the last whole probe did, so pinned
	// windows start no other probe until the next periodic one (a noisy
	// dependency that Min already fills would otherwise be probed every
	// few windows, for nothing).
	pinnedSpent bool
	probed      float64 // the median of the latest whole probe, ns; 0 before the first
	probeStart  int64
	probe       []float64 // latencies of operations admitted in this probe, ns
	saved       float64   // the limit before the probe
	steady      float64   // the limit when the current run of slow windows began
	steadyRTT   float64   // and the latency of the window before it, ns
	prevShort   float64   // the latency of the window before the latest, ns

	windows, increases, decreases, probes uint64
}

// New returns a Limit, or an error matching [ErrConfig].
func New(cfg Config) (*Limit, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	epoch := time.Now()
	l := &Limit{wake: make(chan struct{}, 64), epoch: epoch}
	l.est = estimator{cfg: cfg, limit: float64(cfg.Initial), probe: make([]float64, 0, cfg.ProbeSamples),
		grown: cfg.Initial >= cfg.Max, epoch: epoch}
	l.est.lastProbe = l.est.now()
	l.mask.Store(l.est.mask())
	l.limit.Store(int64(cfg.Initial))
	return l, nil
}

// Token is what [Limit.Acquire] hands out and [Limit.Release] takes back.
// Its zero value is not an admission.
type Token struct {
	start int64 // [Limit.Now] when admitted; zero unless this operation is timed
	ok    bool
}

// Outcome says how an admitted operation ended.
type Outcome uint8

const (
	// Success: the operation finished; its latency is a fair sample.
	Success Outcome = iota
	// Dropped: the operation failed for overload (a timeout, a rejection
	// downstream): the limit backs off at once.
	Dropped
	// Ignore: the operation ended for reasons that say nothing of capacity
	// (it failed fast on bad input, it panicked); not sampled.
	Ignore
	// Abandoned: the caller left before the operation ended. A caller that
	// left after waiting longer than the tolerated latency (Tolerance ×
	// the baseline) most likely left because it was slow: that counts as
	// Dropped. One that left sooner says nothing of capacity: ignored.
	// Only a timed operation can tell; an untimed one is ignored.
	Abandoned
)

// Acquire admits one operation if fewer than the limit are in flight. The
// increment comes first and is undone on refusal: one atomic add on the
// common path instead of a compare-and-swap loop under contention; a
// concurrent Acquire may briefly see the transient excess and refuse too,
// which errs on the side of the limit.
func (l *Limit) Acquire() (Token, bool) {
	return l.AcquireLevel(criticality.Critical)
}

// AcquireLevel is [Limit.Acquire] for work of criticality lv: it may fill
// only criticality.Share(lv) of the limit (at least one slot), so that
// under overload sheddable work is refused first and critical work keeps a
// reserved share.
func (l *Limit) AcquireLevel(lv criticality.Level) (Token, bool) {
	t, ok := l.tryAcquire(lv)
	if !ok {
		l.refuse(lv)
	}
	return t, ok
}

// refuse counts a refusal; it is also where an overdue probe ends, since a
// probe starved of traffic gets no Release to end it.
func (l *Limit) refuse(lv criticality.Level) {
	l.rejected[levelIndex(lv)].Add(1)
	if l.mask.Load() != 0 || l.limit.Load() != int64(l.est.cfg.Min) {
		// Not probing: a probe times every operation and pins the limit
		// to Min (cfg never changes after New, so reading it needs no
		// lock). Refusals at a small limit, where every operation is
		// timed too, take no lock.
		return
	}
	l.mu.Lock()
	if e := &l.est; e.probing && time.Duration(e.now()-e.probeStart) > e.probeTimeout() {
		e.endProbe()
		l.limit.Store(int64(e.limit))
		l.mask.Store(e.mask())
	}
	l.mu.Unlock()
}

// AcquireWait is [Limit.AcquireLevel] that, at the limit, waits up to
// maxWait (and no longer than ctx) for a slot to free instead of refusing
// at once: a burst larger than the limit is smoothed over a few
// milliseconds rather than refused, while a sustained overload still is,
// since nobody waits longer than maxWait (CoDel's insight: a queue is good
// when it drains within a target delay, bad when it stands). Waiting costs
// a timer, on the slow path only.
func (l *Limit) AcquireWait(ctx context.Context, lv criticality.Level, maxWait time.Duration) (Token, bool) {
	if t, ok := l.tryAcquire(lv); ok || maxWait <= 0 {
		if !ok {
			l.refuse(lv)
		}
		return t, ok
	}
	l.waiters.Add(1)
	defer l.waiters.Add(-1)
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	for slept := false; ; slept = true {
		// A Release between the failed attempt and registering as a
		// waiter may have found no waiter and sent no wake: try again
		// after registering, before sleeping.
		if t, ok := l.tryAcquire(lv); ok {
			if slept {
				l.waited.Add(1)
			}
			return t, true
		}
		select {
		case <-l.wake:
		case <-timer.C:
			l.refuse(lv)
			return Token{}, false
		case <-ctx.Done():
			l.refuse(lv)
			return Token{}, false
		}
	}
}

// mix is the SplitMix64 finalizer, a bijection whose every output bit
// depends on every input bit. Admission samples one operation in
// SampleEvery by mixing the value of ops its Acquire produced, which no
// other admitted operation produces (the release count only grows, and
// between two Releases each Acquire raises the in-flight count), so the
// timed operations are a pseudo-random pick, not a periodic one that a
// periodic workload could alias, and picking them costs two multiplies
// where a per-thread random number cost about 10 ns.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// Timed reports whether the caller of [Limit.Observe] should time its
// operation number seq: one in SampleEvery, or every one during slow
// start and probes. seq is any number the caller counts anyway that no
// other operation gets (spawn's count of started tasks); it is mixed (see
// mix), so consecutive numbers make a pseudo-random pick. It costs two
// multiplies and an atomic load.
func (l *Limit) Timed(seq uint64) bool { return mix(seq)&l.mask.Load() == 0 }

// Now is the time to pass to [Limit.Observe] as an operation's start: the
// monotonic nanoseconds since the limit was made, plus one, so that it is
// never zero (zero means untimed). It reads the clock once where
// time.Now reads it twice (wall and monotonic), and every timed operation
// reads it at both ends: on a paravirtual clock that is ~25 ns saved per
// timed operation. In a testing/synctest bubble it is the bubble's time,
// as time.Since is.
func (l *Limit) Now() int64 { return int64(time.Since(l.epoch)) + 1 }

// now is [Limit.Now] for the estimator, which keeps its own copy of the
// epoch: the Limit's is on the line every admission reads, and the
// estimator's on the line its lock writes.
func (e *estimator) now() int64 { return int64(time.Since(e.epoch)) + 1 }

// Observe ends an operation that the caller admitted and timed itself: for
// a caller that bounds its concurrency by [Limit.Current] on its own (spawn
// caps its workers at the limit) and so needs only the measurement, at no
// atomic operation per untimed operation. start is when the operation
// began, from [Limit.Now], if [Limit.Timed] said to time it, else zero; inflight is how many
// operations ran beside it. Such operations are in neither InFlight nor
// Admitted of [Stats].
func (l *Limit) Observe(start int64, o Outcome, inflight int) {
	l.sample(start, o, int64(inflight))
}

func (l *Limit) tryAcquire(lv criticality.Level) (Token, bool) {
	limit := l.limit.Load()
	if lv < criticality.Critical {
		limit = max(1, min(int64(float64(limit)*criticality.Share(lv)), limit-reserve(lv)))
	}
	n := l.ops.Add(1)
	if int64(uint32(n)) > limit {
		l.ops.Add(^uint64(0))
		return Token{}, false
	}
	t := Token{ok: true}
	if mix(n)&l.mask.Load() == 0 {
		t.start = l.Now()
	}
	return t, true
}

// Release ends an operation admitted by [Limit.Acquire]. Releasing a zero
// Token does nothing, so a caller may release unconditionally.
func (l *Limit) Release(t Token, o Outcome) {
	if !t.ok {
		return
	}
	// One Release more, one operation less in flight: the low half is at
	// least one, so the subtraction never borrows from the high half.
	ops := l.ops.Add(releaseOne - 1)
	if uint32(ops>>32)&(1<<31-1) == 0 {
		l.releaseHalves.Add(1)
	}
	n := int64(uint32(ops)) + 1 // in flight while this one was
	if l.waiters.Load() > 0 {
		// Wake one waiter; a full channel already holds enough wakes.
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	l.sample(t.start, o, n)
}

// sample feeds one ended operation to the estimator; n is the number in
// flight while it was.
func (l *Limit) sample(start int64, o Outcome, n int64) {
	if o == Dropped {
		l.dropped.Add(1)
	}
	if o == Ignore || (start == 0 && o != Dropped) {
		return
	}
	var rtt time.Duration
	if start != 0 {
		rtt = time.Duration(l.Now() - start)
	}
	l.mu.Lock()
	if o == Abandoned {
		// A caller that waited past the tolerated latency and left was
		// failed by the overload as surely as a timeout: without this,
		// a limit far above a dependency that lost capacity would see
		// only callers leaving at their deadline, no sample at all, and
		// stay there.
		if e := &l.est; e.baseline == 0 || float64(rtt) <= e.cfg.Tolerance*e.baseline {
			l.mu.Unlock()
			return
		}
		o = Dropped
		l.dropped.Add(1)
	}
	if next, changed := l.est.observe(start, rtt, o == Dropped, n); changed {
		l.limit.Store(next)
	}
	if m := l.est.mask(); m != l.mask.Load() {
		l.mask.Store(m)
	}
	l.mu.Unlock()
}

// observe adds one sample (rtt 0 for an untimed drop) and closes the window
// when it is full; it reports the new limit when that moved.
func (e *estimator) observe(start int64, rtt time.Duration, dropped bool, inflight int64) (int64, bool) {
	before := int64(e.limit)
	if e.probing {
		e.probeSample(start, rtt, dropped)
	} else {
		e.sample(rtt, dropped, inflight)
	}
	after := int64(e.limit)
	return after, after != before
}

// probeSample counts only operations admitted after the probe began: those
// admitted before ran beside the old queue and would hide the baseline.
func (e *estimator) probeSample(start int64, rtt time.Duration, dropped bool) {
	if time.Duration(e.now()-e.probeStart) > e.probeTimeout() {
		// Overdue: too few operations finish at Min (slow ones, or a
		// caller that never refuses, as spawn's workers do not, so that
		// refuse never runs). End it with what it has.
		e.endProbe()
		return
	}
	if dropped || rtt <= 0 || start <= e.probeStart {
		return
	}
	e.probe = append(e.probe, float64(rtt))
	want := e.cfg.ProbeSamples
	if e.slow >= 3 {
		// Started by slow windows: the probe confirms a step of more
		// than twice the tolerance, not a noisy drift, and every round
		// trip it lasts is spent at Min while the dependency waits for
		// work. A third of the samples (at least 5) tells such a step.
		// A probe started by windows at Min takes them all: it tells a
		// rise of more than the tolerance, which the median of five
		// noisy samples can show by chance.
		want = max(min(5, want), want/3)
	}
	if len(e.probe) < want {
		return
	}
	e.endProbe()
}

// endProbe takes the median of the probe's samples as the baseline (if it
// has any) and restores the limit. The median, not the mean: the first
// operations admitted in a probe may still queue behind older ones; and
// not the minimum, which on a noisy dependency is far below the typical
// no-load latency and would hold the limit down.
func (e *estimator) endProbe() {
	if len(e.probe) > 0 {
		slices.Sort(e.probe)
		old, prevProbed := e.baseline, e.probed
		if prevProbed == 0 {
			prevProbed = old
		}
		e.baseline = e.probe[len(e.probe)/2]
		if len(e.probe) >= e.cfg.ProbeSamples {
			// Only a whole probe's median is a reference for the next
			// one started at Min (see below): five noisy samples can put
			// it far below the typical latency.
			e.probed = e.baseline
		}
		if old > 0 && e.steadyRTT > 0 && e.baseline > 2*e.cfg.Tolerance*old {
			// The dependency itself got slower (a failover to a distant
			// replica): by Little's law the throughput it had
			// before now needs proportionally more concurrency, which
			// the smoothed growth would take many round trips to reach.
			// Restore the limit it had then, scaled from the latency it
			// ran at to the new baseline: the throughput it had, at no
			// queue. The gradient grows it from there; if the dependency
			// also lost capacity, it takes the excess back within a few
			// round trips.
			//
			// The latency it ran at is taken at most tolerance × the old
			// baseline: the window before the slow ones may already hold
			// some of the slower operations, and would understate the
			// throughput the limit had.
			e.saved = max(e.saved, e.steady*e.baseline/min(e.steadyRTT, e.cfg.Tolerance*old))
		} else if e.slow >= 3 && e.short > 0 {
			// Slow windows started this probe, yet the dependency is
			// not slower at no load: the latency was a queue (its
			// capacity dropped, or a limit restored above it). Come back
			// at the limit that queue allows, by Little's law, not at
			// the one that built it.
			e.saved *= min(1, max(0.1, e.cfg.Tolerance*e.baseline/e.short))
		} else if e.pinnedProbe && e.baseline > e.cfg.Tolerance*prevProbed {
			// Windows at Min started this probe, and the dependency is
			// slower at Min than the last whole probe found it, by more
			// than the tolerance (compared with that probe's median,
			// not with a baseline a fast window may have lowered
			// since). The limit before the latency rose is gone (the
			// windows cut it to Min), so find the concurrency the new
			// latency needs the way a new limit does: slow start from
			// Min, doubling each full window until a window is slower
			// than the tolerance.
			e.grown = false
		} else if e.pinnedProbe {
			e.pinnedSpent = true
		}
	}
	e.probing, e.pinnedProbe = false, false
	e.lastProbe, e.slow, e.pinned = e.now(), 0, 0
	e.set(e.saved)
	e.resetWindow()
}

// probeTimeout bounds a probe: one that has not gathered its samples by
// then (too little traffic: an instance its load balancer drained) ends
// with what it has, so that the limit is never left pinned to Min.
func (e *estimator) probeTimeout() time.Duration {
	return min(max(time.Duration(50*e.baseline), 100*time.Millisecond), 5*time.Second)
}

func (e *estimator) sample(rtt time.Duration, dropped bool, inflight int64) {
	if dropped {
		e.drops++
	}
	if rtt > 0 {
		e.sum += float64(rtt)
		e.n++
	}
	e.peak = max(e.peak, inflight)
	// About half a round trip of samples: limit/2 operations end per
	// half round trip, of which one in SampleEvery is timed. While every
	// operation is timed (see mask), a whole round trip: a window of
	// fewer operations would still see the queue of the limit before the
	// last move and move it again, down to Min after a step.
	want := max(e.cfg.MinWindow, int(e.limit)/e.cfg.SampleEvery/2)
	if e.mask() == 0 {
		// A round trip is as many operations as are in flight: the
		// limit when the caller fills it, fewer when it does not (then
		// waiting for limit samples could keep every operation timed
		// for as long as the caller stays below its limit).
		want = max(e.cfg.MinWindow, min(int(e.limit), 2*int(e.peak)))
	}
	if e.n < want && e.drops == 0 {
		return
	}
	e.closeWindow()
	e.resetWindow()
}

// mask selects the operations to time: every one during probes and slow
// start (few operations, and each one counts), one in SampleEvery after.
//
// Also every one while the limit is small (below 2 × SampleEvery ×
// MinWindow) and can move, and operations are slow (a baseline of a
// millisecond or more): few operations are then in flight, so one in
// SampleEvery would give a window only every several round trips, and a
// dependency that turned ten times slower would be noticed seconds late;
// the two clock reads are then a hundred-thousandth of each operation.
// Fast operations keep the sampled path, whose cost the bench measures.
func (e *estimator) mask() uint64 {
	small := e.cfg.Min < e.cfg.Max && e.limit < float64(2*e.cfg.SampleEvery*e.cfg.MinWindow) && e.baseline >= float64(time.Millisecond)
	// Slow start times every operation only while the caller fills the
	// limit: one far below it (an idle service, a fixed limit with Min =
	// Max) would otherwise pay two clock reads per operation for as long
	// as it stays there, learning nothing.
	if e.probing || (!e.grown && !e.appLimited) || small {
		return 0
	}
	return uint64(e.cfg.SampleEvery - 1)
}

func (e *estimator) resetWindow() { e.sum, e.n, e.peak, e.drops = 0, 0, 0, 0 }

func (e *estimator) closeWindow() {
	e.windows++
	old := e.limit
	// An operation in this window may have ended for overload without a
	// latency: back off by the same factor whichever algorithm runs.
	if e.drops > 0 && e.n == 0 {
		e.set(old * 0.9)
		return
	}
	e.prevShort, e.short = e.short, e.sum/float64(e.n)
	// A window much faster than the baseline means the dependency got
	// faster (a slow phase ended): take it at once. A little faster is
	// noise, and following it down would make every noisy window pull the
	// limit down until the next probe.
	if e.baseline == 0 || e.short < 0.8*e.baseline {
		e.baseline = e.short
	}
	if e.short > 2*e.cfg.Tolerance*e.baseline {
		if e.slow == 0 {
			e.steady, e.steadyRTT = old, e.prevShort
		}
		e.slow++
	} else {
		e.slow = 0
	}
	// Windows slower than the tolerance with the limit already at Min:
	// the limit cannot cut further, and at Min no queue of its making
	// explains the latency, so the dependency itself most likely got
	// slower, by less than the slow windows' twice the tolerance (a
	// failover to a replica twice as far). Waiting for the next periodic
	// probe would hold the limit at Min, serving a fraction of what the
	// dependency can do, for up to ProbeInterval: measure the baseline
	// now. The probe costs nothing, the limit being at Min already.
	if !e.pinnedSpent && int64(old) <= int64(e.cfg.Min) && e.short > e.cfg.Tolerance*e.baseline {
		e.pinned++
	} else {
		e.pinned = 0
	}
	// A fixed limit (Min = Max) has nothing to learn from a probe, which
	// would only time every operation while it lasts.
	due := e.slow >= 3 || e.pinned >= 3 || time.Duration(e.now()-e.lastProbe) >= e.cfg.ProbeInterval
	if due && e.cfg.Min < e.cfg.Max {
		e.startProbe()
		return
	}
	if e.drops > 0 {
		e.set(old * 0.9)
		return
	}
	// The caller uses less than half of what it could: of what its least
	// critical work may fill, so that the reserve kept for more critical
	// work (a whole slot at a small limit) does not read as idleness.
	appLimited := float64(2*e.peak) < math.Floor(criticality.Share(criticality.Sheddable)*old)
	e.appLimited = appLimited
	if !e.grown {
		// Slow start, as TCP does: until the first window slower than the
		// tolerance, a window that filled the limit doubles it, so a
		// service starting at Initial finds a large capacity in a few
		// windows instead of refusing work while it creeps up.
		//
		// Only a window that filled the limit (what its least critical
		// work may fill) doubles it: latency answers a larger limit one
		// round trip late, so a limit that is no longer what holds the
		// work back must stop doubling before latency says so, or it
		// overshoots the dependency's capacity several times over.
		filled := float64(e.peak) >= math.Floor(criticality.Share(criticality.Sheddable)*old)
		switch {
		case e.short > e.cfg.Tolerance*e.baseline:
			e.grown = true
		case filled:
			e.set(old * 2)
			e.grown = e.limit >= float64(e.cfg.Max)
			return
		case !appLimited:
			e.grown = true // used, not filled: the smoothed rule from here
		default:
			return
		}
	}
	switch e.cfg.Algorithm {
	case AIMD:
		switch {
		case e.short > e.cfg.Tolerance*e.baseline:
			e.set(old * 0.9)
		case !appLimited:
			e.set(old + 1)
		}
	default:
		gradient := min(1, max(0.5, e.cfg.Tolerance*e.baseline/e.short))
		if gradient >= 1 && appLimited {
			return
		}
		// The headroom √limit lets the limit grow while latency is flat
		// and gives it a fixed point under a steady queue (gradient =
		// 1 - 1/√limit); it shrinks to nothing as the gradient falls to
		// 0.5, so that a latency step is answered by the gradient alone:
		// a doubling of latency takes the limit ×0.75 per window at the
		// default Tolerance, halving it in three to five round trips.
		// Growth is smoothed (a fifth per window) so that noise does not
		// walk the limit up; a small fall (gradient above 0.85, what a
		// noisy window gives) is halved, a large one (a real step) taken
		// whole.
		next := old*gradient + math.Sqrt(old)*(2*gradient-1)
		switch {
		case next > old:
			next = old + 0.2*(next-old)
		case gradient > 0.85:
			next = old + 0.5*(next-old)
		}
		e.set(next)
	}
}

// startProbe pins the limit to Min until ProbeSamples operations admitted
// from now on have finished (see probeSample).
func (e *estimator) startProbe() {
	e.pinnedProbe = e.slow < 3 && e.pinned >= 3
	if e.slow < 3 && !e.pinnedProbe {
		e.pinnedSpent = false // a periodic probe
	}
	if e.slow == 0 && !e.pinnedProbe {
		// A periodic probe: the limit and latency now are the steady
		// state a slower dependency would be scaled from.
		e.steady, e.steadyRTT = e.limit, e.short
	}
	e.probes++
	e.probing = true
	e.probeStart = e.now()
	e.probe = e.probe[:0]
	e.saved = e.limit
	e.set(float64(e.cfg.Min))
}

func (e *estimator) set(v float64) {
	v = min(max(v, float64(e.cfg.Min)), float64(e.cfg.Max))
	switch {
	case int64(v) > int64(e.limit):
		e.increases++
	case int64(v) < int64(e.limit):
		e.decreases++
	}
	e.limit = v
}

// Stats is a snapshot of a [Limit]: the limit and what moved it.
type Stats struct {
	Algorithm Algorithm
	Limit     int // current limit
	Min, Max  int
	InFlight  int
	// Baseline is the learned no-load latency; ShortRTT the latest
	// window's average latency of timed operations.
	Baseline, ShortRTT time.Duration
	Probing            bool   // the limit is pinned to Min to measure Baseline
	Probes             uint64 // probes started
	Windows            uint64 // windows closed
	Increases          uint64 // windows that raised the limit
	Decreases          uint64 // windows that lowered it
	// Rejected counts refused Acquire calls by criticality: index 0
	// sheddable, 1 normal, 2 critical (Acquire without a level counts as
	// critical).
	Rejected [3]uint64
	// Admitted counts Acquire calls admitted. It never decreases; read
	// while Acquires are being refused, it may count the few being refused
	// at that instant; it then holds still until as many more are admitted.
	Admitted uint64
	Waited   uint64 // of which AcquireWait admitted after waiting
	Dropped  uint64 // releases with outcome Dropped
}

// Stats returns a snapshot; it takes the estimator's lock briefly.
func (l *Limit) Stats() Stats {
	l.mu.Lock()
	e := l.est
	l.mu.Unlock()
	return Stats{
		Algorithm: e.cfg.Algorithm,
		Limit:     int(l.limit.Load()),
		Min:       e.cfg.Min,
		Max:       e.cfg.Max,
		InFlight:  l.InFlight(),
		Baseline:  time.Duration(e.baseline),
		Probing:   e.probing,
		Probes:    e.probes,
		ShortRTT:  time.Duration(e.short),
		Windows:   e.windows,
		Increases: e.increases,
		Decreases: e.decreases,
		Rejected:  [3]uint64{l.rejected[0].Load(), l.rejected[1].Load(), l.rejected[2].Load()},
		Admitted:  l.admitted(),
		Waited:    l.waited.Load(),
		Dropped:   l.dropped.Load(),
	}
}

// Current returns the current limit without locking.
func (l *Limit) Current() int { return int(l.limit.Load()) }

// InFlight returns the number of admitted, unreleased operations.
func (l *Limit) InFlight() int { return int(uint32(l.ops.Load())) }

// releaseOne is one Release in the high half of ops.
const releaseOne = 1 << 32

// admitted returns the number of operations admitted: those released plus
// those in flight, read from one load of ops.
//
// An Acquire being refused is in the in-flight half for an instant, so a
// read in that instant counts it, and the next read may be lower. Admitted
// is exported as a counter (Prometheus takes any decrease for a restart)
// and compared between reads (AdaptiveLimiter.Load), so it is kept from
// going down: a read returns at least every value returned before. The
// excess, if any, is the few Acquires refused at one instant, which later
// admissions absorb; an exact count would cost every Acquire a
// compare-and-swap loop instead of one add.
func (l *Limit) admitted() uint64 {
	halves := l.releaseHalves.Load()
	ops := l.ops.Load()
	n := released(halves, ops>>32) + uint64(uint32(ops))
	for {
		seen := l.admittedSeen.Load()
		if n <= seen {
			return seen
		}
		if l.admittedSeen.CompareAndSwap(seen, n) {
			return n
		}
	}
}

// released rebuilds the 64-bit count of Releases from its low 32 bits lo
// and halves, the number of times lo crossed a multiple of 2³¹, read
// before lo. halves can lag lo by at most one crossing, since the next one
// takes 2³¹ Releases; the parity of the crossings is bit 31 of lo, which
// settles whether halves or halves+1 is right; two crossings make one wrap.
func released(halves, lo uint64) uint64 {
	if halves&1 != lo>>31 {
		halves++
	}
	return halves/2<<32 | lo
}
