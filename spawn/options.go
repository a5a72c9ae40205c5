package spawn

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/garrison-go/garrison/internal/adaptive"
	"golang.org/x/time/rate"
)

// Defaults used by New for the limits no option sets. All are finite: a
// spawner built with no options cannot be driven into unbounded growth.
const (
	// DefaultMaxConcurrent is the default cap on running tasks.
	DefaultMaxConcurrent = 1024
	// DefaultQueue is the default number of admitted tasks that may wait
	// for a worker beyond the running ones.
	DefaultQueue = 1024
	// DefaultMaxWaiters is the default cap on callers parked inside Go.
	DefaultMaxWaiters = 1024
	// DefaultIdleTimeout is how long an idle worker waits for the next task
	// before it exits (see WithIdleTimeout).
	DefaultIdleTimeout = 100 * time.Millisecond
	// DefaultSampleEvery is the overload guard's sampling period when
	// OverloadGuard.SampleEvery is zero.
	DefaultSampleEvery = 100 * time.Millisecond
)

// maxLimit bounds every size option, so that a typo such as 1e9 fails at
// construction. The queue, allocated up front, is bounded further by
// maxSlots (see WithQueue).
const maxLimit = 1 << 22

// Option configures a Spawner. Options are checked by New, which returns an
// error for an invalid value; when an option is given twice the last wins.
type Option func(*config) error

type config struct {
	maxConcurrent int
	queue         int
	maxWaiters    int
	idleTimeout   time.Duration
	rateLimit     rate.Limit
	rateBurst     int
	hasRate       bool
	taskTimeout   time.Duration
	maxPerKey     int
	maxKeys       int
	guard         *OverloadGuard
	hooks         Hooks
	logger        *slog.Logger // WithLogger; see log.go
	// maxSet: WithMaxConcurrent was given (else WithAdaptiveLimit's max
	// becomes the hard cap).
	maxSet      bool
	adaptive    *adaptive.Config
	queueTarget time.Duration
	queueWindow time.Duration
}

func defaultConfig() config {
	return config{
		maxConcurrent: DefaultMaxConcurrent,
		queue:         DefaultQueue,
		maxWaiters:    DefaultMaxWaiters,
		idleTimeout:   DefaultIdleTimeout,
	}
}

func checkSize(name string, n, lowest int) error {
	if n < lowest || n > maxLimit {
		return fmt.Errorf("spawn: %s(%d) out of range [%d, %d]", name, n, lowest, maxLimit)
	}
	return nil
}

// WithMaxConcurrent sets the hard cap on tasks running at once, 1 to 1<<22.
// No more than n tasks ever run concurrently, and no more than n worker
// goroutines exist. The default is DefaultMaxConcurrent. With
// WithAdaptiveLimit, n is the hard cap above the moving limit (and its max
// may not exceed n).
func WithMaxConcurrent(n int) Option {
	return func(c *config) error {
		if err := checkSize("WithMaxConcurrent", n, 1); err != nil {
			return err
		}
		c.maxConcurrent, c.maxSet = n, true
		return nil
	}
}

// WithQueue sets how many admitted tasks may wait for a worker beyond the
// running ones, 0 to 1<<22: at most MaxConcurrent+n tasks are admitted at
// any moment, and they start in FIFO order (newest first under a standing
// queue with WithQueueTarget). With 0 a task is admitted only
// if it can start at once (hand-off). The queue is allocated up front, 64
// bytes per slot for MaxConcurrent+n slots rounded up to a power of two, so
// New refuses a MaxConcurrent+n above 1<<20 (at most 64 MiB) with an error
// that says so. The default is DefaultQueue.
func WithQueue(n int) Option {
	return func(c *config) error {
		if err := checkSize("WithQueue", n, 0); err != nil {
			return err
		}
		c.queue = n
		return nil
	}
}

// WithMaxWaiters caps the callers parked inside Go, GoKey or Submit waiting
// for room or for a rate token, 0 to 1<<22. Once n callers wait, the next
// one gets ErrSaturated (or ErrRateLimited) at once; with 0 nothing ever
// waits. The default is DefaultMaxWaiters.
func WithMaxWaiters(n int) Option {
	return func(c *config) error {
		if err := checkSize("WithMaxWaiters", n, 0); err != nil {
			return err
		}
		c.maxWaiters = n
		return nil
	}
}

// WithIdleTimeout sets how long an idle worker goroutine lingers for
// another task before it exits: a worker exits once it has run no task for
// a whole period d of its idle ticker, so an idle spawner holds no goroutine
// after 2d at most. Shutdown ends idle workers at once. d must be positive;
// the default is DefaultIdleTimeout.
func WithIdleTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("spawn: WithIdleTimeout(%v) must be positive", d)
		}
		c.idleTimeout = d
		return nil
	}
}

// WithRate limits admissions to r per second with bursts of burst, in
// golang.org/x/time/rate units (r may be rate.Inf, which disables the
// limit). TryGo rejects with ErrRateLimited when no token is available; Go,
// GoKey and Submit wait for the token as one of the MaxWaiters waiters,
// unless the token is due after the ctx deadline (ErrRateLimited at once).
// The token is taken before the capacity check, so an attempt rejected for
// capacity still spends it: the limit is on admission attempts.
func WithRate(r rate.Limit, burst int) Option {
	return func(c *config) error {
		if math.IsNaN(float64(r)) || r <= 0 {
			return fmt.Errorf("spawn: WithRate limit %v must be positive", r)
		}
		if r != rate.Inf && burst < 1 {
			return fmt.Errorf("spawn: WithRate burst %d must be at least 1", burst)
		}
		c.rateLimit, c.rateBurst, c.hasRate = r, burst, r != rate.Inf
		return nil
	}
}

// WithTaskTimeout gives every task's context a deadline d after the task
// starts (time spent queued does not count). A task still running when the
// deadline passes is counted as TimedOut whatever it returns, and keeps its
// slot until it really returns: the cap is never exceeded. d must be
// positive; by default tasks have no deadline and no timer is created.
func WithTaskTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("spawn: WithTaskTimeout(%v) must be positive", d)
		}
		c.taskTimeout = d
		return nil
	}
}

// WithPerKey makes GoKey cap each key (tenant) at maxPerKey tasks running,
// queued or waiting for room, and bound the key table to maxKeys distinct
// keys; a key leaves the table when its last task ends. Both must be 1 to
// 1<<22. Without this option GoKey ignores its key and behaves like Go.
func WithPerKey(maxPerKey, maxKeys int) Option {
	return func(c *config) error {
		if err := checkSize("WithPerKey maxPerKey", maxPerKey, 1); err != nil {
			return err
		}
		if err := checkSize("WithPerKey maxKeys", maxKeys, 1); err != nil {
			return err
		}
		c.maxPerKey, c.maxKeys = maxPerKey, maxKeys
		return nil
	}
}

// WithOverloadGuard sheds new tasks with ErrOverloaded while the process is
// above g's thresholds. See OverloadGuard for how and how often it samples.
func WithOverloadGuard(g OverloadGuard) Option {
	return func(c *config) error {
		if g.MaxHeapBytes == 0 && g.MaxGoroutines == 0 {
			return errors.New("spawn: WithOverloadGuard needs MaxHeapBytes or MaxGoroutines")
		}
		if g.MaxGoroutines < 0 {
			return fmt.Errorf("spawn: WithOverloadGuard MaxGoroutines %d is negative", g.MaxGoroutines)
		}
		if g.SampleEvery < 0 {
			return fmt.Errorf("spawn: WithOverloadGuard SampleEvery %v is negative", g.SampleEvery)
		}
		if g.SampleEvery == 0 {
			g.SampleEvery = DefaultSampleEvery
		}
		c.guard = &g
		return nil
	}
}

// Hooks are callbacks a service can use for logging and metrics. Each is
// optional, is called synchronously on the goroutine that observed the
// event, and is never called while the spawner holds an internal lock, so a
// hook may call the spawner (Stats, TryGo, ...). Hooks must not panic, and
// should return quickly: OnPanic and OnDone run on the worker before the
// task's slot is released: Wait or Shutdown called from them waits until
// its ctx ends, and Go may wait for the very slot the hook holds.
type Hooks struct {
	// OnReject is called with the error of every rejected submission.
	OnReject func(err error)
	// OnPanic is called, on the worker, for every task that panicked or
	// called runtime.Goexit, before OnDone. Without it, the panic of a Go,
	// TryGo, GoKey or TryGoKey task, which nobody waits for, is logged
	// through slog.Default() (rate limited); Submit and Group tasks'
	// panics are returned by Handle.Wait and Group.Wait either way.
	OnPanic func(*PanicError)
	// OnDone is called once for every admitted task when it ends, with nil
	// if it succeeded and otherwise the error that Stats classified
	// (a *PanicError, a timeout, a cancellation, ErrQueueTimeout for a
	// task shed from the queue, or the task's own error).
	OnDone func(err error)
}

// WithHooks installs h.
func WithHooks(h Hooks) Option {
	return func(c *config) error {
		c.hooks = h
		return nil
	}
}
