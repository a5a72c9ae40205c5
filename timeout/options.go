package timeout

import (
	"fmt"
	"time"
)

// Option configures one call of Run, Do, Detacher.Run or Sub. The zero
// Option changes nothing.
//
// Option is a small struct rather than a function so that Run can read it
// without an indirect call: an indirect call would make the per-call
// settings escape to the heap and cost an allocation on every Run, even
// one without options.
type Option struct {
	op string
}

// Named names the operation. The name appears in the *Error returned when
// the call runs out of time and in the context cause seen by fn, so a log
// line says which operation was slow instead of a bare "context deadline
// exceeded". An empty name leaves the operation unnamed.
func Named(op string) Option { return Option{op: op} }

func opName(opts []Option) string {
	var op string
	for _, o := range opts {
		if o.op != "" {
			op = o.op
		}
	}
	return op
}

// WatchdogOption configures a Watchdog; NewWatchdog validates it and
// returns an error for a bad value.
type WatchdogOption func(*watchdogConfig) error

type watchdogConfig struct {
	stallAfter time.Duration
	cancel     bool
	onStuck    func(Stuck)
	stacks     bool
}

const (
	defaultStallAfter = 10 * time.Second
	minStallAfter     = time.Millisecond
)

// WithStallAfter sets how long a tracked Token may go without a Beat
// before it is reported as stuck (default 10s). It must be at least 1ms.
// The watchdog checks every stallAfter/8 (between 1ms and 1s), so a stall
// is reported no earlier than stallAfter after the last Beat and, when the
// checks run on time, within stallAfter plus two checks.
func WithStallAfter(d time.Duration) WatchdogOption {
	return func(c *watchdogConfig) error {
		if d < minStallAfter {
			return fmt.Errorf("%w: WithStallAfter(%v): must be at least %v", ErrInvalid, d, minStallAfter)
		}
		c.stallAfter = d
		return nil
	}
}

// WithCancelStalled makes the watchdog cancel the context returned by
// Track once its Token is stuck, with a cause that wraps ErrStalled and
// names the operation (default false: stalls are only reported).
func WithCancelStalled(on bool) WatchdogOption {
	return func(c *watchdogConfig) error {
		c.cancel = on
		return nil
	}
}

// WithOnStuck sets a function called once per stall, from the watchdog's
// goroutine, when a Token is found stuck. It must not block, nor call the
// Watchdog's Close: the watchdog checks nothing else while it runs. A
// panic in f is not recovered. A nil f removes the callback.
func WithOnStuck(f func(Stuck)) WatchdogOption {
	return func(c *watchdogConfig) error {
		c.onStuck = f
		return nil
	}
}

// WithStacks makes Track record the caller's stack so that Stuck reports
// where stuck work was started (default false). Recording costs about
// 150ns per Track on a small VM, as much as the rest of Track and Done
// together, so it is off unless asked for.
func WithStacks(on bool) WatchdogOption {
	return func(c *watchdogConfig) error {
		c.stacks = on
		return nil
	}
}
