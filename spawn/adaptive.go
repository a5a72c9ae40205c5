package spawn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/garrison-go/garrison/internal/adaptive"
)

// AdaptiveOption tunes [WithAdaptiveLimit].
type AdaptiveOption func(*adaptive.Config)

// AdaptiveAIMD moves the limit by AIMD (+1 per healthy window, ×0.9 when
// task latency exceeds the tolerance) instead of the gradient rule:
// simpler, slower to find a large limit, and a sawtooth on a steady load.
func AdaptiveAIMD() AdaptiveOption {
	return func(c *adaptive.Config) { c.Algorithm = adaptive.AIMD }
}

// AdaptiveTolerance is how much slower than the baseline run time a window
// of tasks may be before the limit shrinks (default 1.5, from 1 to 100):
// higher admits more contention for more throughput.
func AdaptiveTolerance(t float64) AdaptiveOption {
	return func(c *adaptive.Config) { c.Tolerance = t }
}

// AdaptiveInitial sets the limit before the first measurement (default
// min, raised to 4 when max allows).
func AdaptiveInitial(n int) AdaptiveOption {
	return func(c *adaptive.Config) { c.Initial = n }
}

// WithAdaptiveLimit makes the cap on running tasks move between min and
// max with the tasks' run time, instead of a constant an operator must
// guess: the limit grows while tasks run about as fast as they do unloaded
// and shrinks in proportion when they slow down (a saturated dependency,
// a contended lock). It is the algorithm of limiter's AdaptiveLimiter (the
// gradient rule of Netflix's concurrency-limits and Envoy's adaptive
// concurrency filter, or AIMD with [AdaptiveAIMD]), timing one task in 32
// from its start to its return (every task during slow start and baseline
// probes); time spent queued does not count. A task
// whose error matches context.DeadlineExceeded or [ErrTaskTimeout] counts
// as dropped and backs the limit off by a tenth at once; a canceled or
// panicking task says nothing of capacity and is not sampled.
//
// The limit replaces MaxConcurrent everywhere the spawner uses it: at most
// limit tasks run (a worker above the limit retires after its task), and at
// most limit+Queue are admitted. MaxConcurrent stays the hard cap: the
// number of workers never exceeds it, and the queue is allocated for it up
// front. So max may not exceed MaxConcurrent (New returns an error); when
// WithMaxConcurrent is not given, MaxConcurrent is max. A hard cap that is
// not the adaptive max would either be dead (above it) or make the top of
// the range unreachable while the estimator believes it is there (below).
//
// 1 <= min <= max <= 1<<20. The limit, its baseline and latency estimates
// are in [Stats].Adaptive.
func WithAdaptiveLimit(min, max int, opts ...AdaptiveOption) Option {
	return func(c *config) error {
		// One task in 32 is timed, where limiter times one request in 8:
		// tasks are cheaper and more numerous than requests, and a clock
		// read costs 90-150 ns on a virtual machine's kvm-clock.
		cfg := adaptive.Config{Min: min, Max: max, SampleEvery: 32}
		for i, opt := range opts {
			if opt == nil {
				return fmt.Errorf("spawn: WithAdaptiveLimit: option %d is nil", i)
			}
			opt(&cfg)
		}
		c.adaptive = &cfg
		return nil
	}
}

// newAdaptive checks the adaptive limit against MaxConcurrent and builds it.
func newAdaptive(cfg *config) (*adaptive.Limit, error) {
	if cfg.adaptive == nil {
		return nil, nil
	}
	if !cfg.maxSet {
		cfg.maxConcurrent = max(cfg.adaptive.Max, 1)
	} else if cfg.adaptive.Max > cfg.maxConcurrent {
		return nil, fmt.Errorf("spawn: WithAdaptiveLimit max %d exceeds WithMaxConcurrent(%d), the hard cap",
			cfg.adaptive.Max, cfg.maxConcurrent)
	}
	lim, err := adaptive.New(*cfg.adaptive)
	if err != nil {
		return nil, fmt.Errorf("spawn: WithAdaptiveLimit: %w", err)
	}
	return lim, nil
}

// AdaptiveStats is the state of a [WithAdaptiveLimit] limit; all zero
// without one.
type AdaptiveStats struct {
	Algorithm string // "gradient2" or "aimd"
	Limit     int    // the current cap on running tasks
	Min, Max  int
	// Baseline is the learned run time of a task on an unloaded
	// dependency; Latency the latest window's average run time.
	Baseline, Latency time.Duration
	// Probing: the limit is pinned to Min to measure Baseline again.
	Probing bool
	Probes  uint64
	// Increases and Decreases count the windows that moved the limit.
	Increases, Decreases uint64
	// Dropped counts tasks that ended with a deadline error, each of which
	// backed the limit off.
	Dropped uint64
}

func (s *Spawner) adaptiveStats() AdaptiveStats {
	if s.lim == nil {
		return AdaptiveStats{}
	}
	st := s.lim.Stats()
	return AdaptiveStats{
		Algorithm: st.Algorithm.String(),
		Limit:     st.Limit,
		Min:       st.Min,
		Max:       st.Max,
		Baseline:  st.Baseline,
		Latency:   st.ShortRTT,
		Probing:   st.Probing,
		Probes:    st.Probes,
		Increases: st.Increases,
		Decreases: st.Decreases,
		Dropped:   st.Dropped,
	}
}

// runCap is the cap on running tasks (and workers): the adaptive limit, or
// MaxConcurrent.
func (s *Spawner) runCap() int64 {
	if s.lim == nil {
		return s.maxRunning
	}
	return int64(s.lim.Current())
}

// capacity is the most tasks admitted at once: runCap plus Queue.
func (s *Spawner) capacity() int64 {
	if s.lim == nil {
		return s.limit
	}
	return int64(s.lim.Current()) + s.queueCap
}

// lowMark is the admitted count at or below which waiting callers are woken.
func (s *Spawner) lowMark() int64 {
	if s.lim == nil {
		return s.lowWater
	}
	return int64(s.lim.Current()) + s.queueCap/2
}

// shrink retires the calling worker, which has just finished a task, if
// more workers exist than the adaptive limit allows. It never takes the
// count below the limit (at least 1), so the workers left take every
// queued task: the argument of retire holds with the cap lowered.
func (s *Spawner) shrink() bool {
	c := s.runCap()
	for w := s.workers.Load(); w > c; w = s.workers.Load() {
		if s.workers.CompareAndSwap(w, w-1) {
			return true
		}
	}
	return false
}

// observe tells the adaptive limit how a task started at start (zero if
// untimed) ended. The workers alive stand for the tasks in flight beside
// it: each runs one task or is about to.
func (s *Spawner) observe(start int64, oc outcome, err error) {
	if start == 0 && err == nil && oc != timedOut {
		// The common case, an untimed task that ended well: nothing to
		// tell the limit, and no error to classify.
		return
	}
	if o := adaptiveOutcome(oc, err); o == adaptive.Dropped || (start != 0 && o == adaptive.Success) {
		s.lim.Observe(start, o, int(s.workers.Load()))
	}
}

// adaptiveOutcome says what a task's end tells the adaptive limit.
func adaptiveOutcome(oc outcome, err error) adaptive.Outcome {
	switch {
	case oc == timedOut || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTaskTimeout):
		return adaptive.Dropped
	case oc == canceledRunning || oc == panicked || errors.Is(err, context.Canceled):
		return adaptive.Ignore
	default:
		return adaptive.Success
	}
}
