package limiter

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/garrison-go/garrison/internal/logsample"
)

// WithLogger sends the Listener's rejections to logger, at Warn, with the
// attributes "reason" (a Reason string such as "ip-conns"), "remote" (the
// source address) and "suppressed". Lines are sampled: a burst of 10, then
// about one per second, each saying in "suppressed" how many rejections
// since the previous line it did not log, so a flood of millions of
// connections costs a line a second, never one per connection; the counts
// by reason are in Stats. A WithOnRejectConn function is still called for
// every rejection. It returns an error for a nil logger.
func WithLogger(logger *slog.Logger) ListenerOption {
	return func(c *listenerConfig) error {
		if logger == nil {
			return invalidf("WithLogger(nil)")
		}
		c.logger = logger
		return nil
	}
}

// logRejects returns the rejection callback: c.onReject, preceded by the
// sampled log line when WithLogger was given.
func (c *listenerConfig) logRejects() func(netip.Addr, Reason) {
	if c.logger == nil {
		return c.onReject
	}
	logger, next := c.logger, c.onReject
	sample := logsample.New(time.Second, 10)
	return func(remote netip.Addr, why Reason) {
		if ok, n := sample.Allow(); ok {
			logger.LogAttrs(context.Background(), slog.LevelWarn, "limiter: connection rejected",
				slog.String("reason", why.String()), slog.String("remote", remote.String()),
				slog.Uint64("suppressed", n))
		}
		if next != nil {
			next(remote, why)
		}
	}
}
