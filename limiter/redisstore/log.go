package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/garrison-go/garrison/internal/logsample"
	"github.com/garrison-go/garrison/limiter"
)

// WithLogger sends the fail policy's decisions to logger: each decision
// made without Redis is logged at Warn with the attributes "policy" (such
// as "FailLocal"), "allowed", "error" (why Redis was not asked or did not
// answer) and "suppressed". Lines are sampled (a burst of 10, then about
// one per second, each counting in "suppressed" the decisions it stands
// for): when Redis goes down every request falls back, and the log must
// say so without a line per request; Stats counts them all. It returns an
// error wrapping ErrInvalidOption for a nil logger.
func WithLogger(logger *slog.Logger) Option {
	return func(o *options) error {
		if logger == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		o.logger = logger
		o.logSample = logsample.New(time.Second, 10)
		return nil
	}
}

// logFallback logs a fail-policy decision d made because of err, sampled,
// and returns its arguments.
func (l *Limiter) logFallback(d limiter.Decision, err error) (limiter.Decision, error) {
	if l.opts.logger == nil {
		return d, err
	}
	if ok, n := l.opts.logSample.Allow(); ok {
		l.opts.logger.LogAttrs(context.Background(), slog.LevelWarn, "redisstore: fail policy decided",
			slog.String("policy", l.opts.policy.String()), slog.Bool("allowed", d.Allowed),
			slog.String("error", err.Error()), slog.Uint64("suppressed", n))
	}
	return d, err
}
