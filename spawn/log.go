package spawn

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/garrison-go/garrison/internal/logsample"
)

// WithLogger sends the spawner's reports to logger instead of
// slog.Default(), with structured attributes: the panics of Go, TryGo, GoKey
// and TryGoKey tasks when Hooks.OnPanic is unset (at Error, with "op",
// "panic", "stack", under the package's shared limit of a burst of 10
// records, then one per second, counting the suppressed ones; a Submit or
// Group task's panic goes to whoever waits for it), and rejections, unless
// Hooks.OnReject is set (at Warn, with "reason" and "suppressed", sampled
// the same way), so that a flood of rejected tasks cannot flood the log.
// It returns an error for a nil logger.
func WithLogger(logger *slog.Logger) Option {
	return func(c *config) error {
		if logger == nil {
			return errors.New("spawn: WithLogger: nil logger")
		}
		c.logger = logger
		return nil
	}
}

// logHooks returns c.hooks with the logger's rejection report filling
// OnReject if the caller left it unset. (Panics go to the logger through
// internal/panics, which knows which of them have an owner.)
func (c *config) logHooks() Hooks {
	h := c.hooks
	if c.logger == nil {
		return h
	}
	logger := c.logger
	if h.OnReject == nil {
		sample := logsample.New(time.Second, 10)
		h.OnReject = func(err error) {
			if ok, n := sample.Allow(); ok {
				logger.LogAttrs(context.Background(), slog.LevelWarn, "spawn: task rejected",
					slog.String("reason", err.Error()), slog.Uint64("suppressed", n))
			}
		}
	}
	return h
}
