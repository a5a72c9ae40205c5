package spawn

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/garrison-go/garrison/internal/logsample"
)

// WithLogger sends the spawner's reports to logger with structured
// attributes: every task panic (at Error, with "panic" and "stack"),
// unless Hooks.OnPanic is set, and rejections (at Warn, with "reason"),
// unless Hooks.OnReject is set. Both are sampled: a burst of 10 lines, then
// about one per second, each saying in "suppressed" how many reports it
// stands for, so a flood of panicking or rejected tasks cannot flood the
// log. It returns an error for a nil logger.
func WithLogger(logger *slog.Logger) Option {
	return func(c *config) error {
		if logger == nil {
			return errors.New("spawn: WithLogger: nil logger")
		}
		c.logger = logger
		return nil
	}
}

// logHooks returns c.hooks with the logger's reports filling the hooks the
// caller left unset.
func (c *config) logHooks() Hooks {
	h := c.hooks
	if c.logger == nil {
		return h
	}
	logger := c.logger
	if h.OnPanic == nil {
		sample := logsample.New(time.Second, 10)
		h.OnPanic = func(pe *PanicError) {
			if ok, n := sample.Allow(); ok {
				logger.LogAttrs(context.Background(), slog.LevelError, "spawn: task panicked",
					slog.Any("panic", pe.Value), slog.String("stack", string(pe.Stack)),
					slog.Uint64("suppressed", n))
			}
		}
	}
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
