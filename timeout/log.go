package timeout

import (
	"context"
	"log/slog"
	"time"

	"github.com/garrison-go/garrison/internal/logsample"
)

// SlogOnStuck returns a function for WithOnStuck that logs each stall to
// logger at Warn with the attributes "name", "age", "since_beat",
// "suppressed" and, if the Watchdog records stacks, "stack". Lines are
// sampled (a burst of 10, then about one per second, each counting in
// "suppressed" the stalls it stands for), so that an upstream hanging
// every request makes a line a second, not one per request; Stats counts
// them all. A nil logger means slog.Default().
//
//	wd, err := timeout.NewWatchdog(timeout.WithOnStuck(timeout.SlogOnStuck(logger)))
func SlogOnStuck(logger *slog.Logger) func(Stuck) {
	if logger == nil {
		logger = slog.Default()
	}
	sample := logsample.New(time.Second, 10)
	return func(s Stuck) {
		ok, n := sample.Allow()
		if !ok {
			return
		}
		attrs := []slog.Attr{
			slog.String("name", s.Name), slog.Duration("age", s.Age),
			slog.Duration("since_beat", s.SinceBeat), slog.Uint64("suppressed", n),
		}
		if s.Stack != "" {
			attrs = append(attrs, slog.String("stack", s.Stack))
		}
		logger.LogAttrs(context.Background(), slog.LevelWarn, "timeout: work stalled", attrs...)
	}
}
