package limiter

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// LogRejections returns a hook for WithOnRejectConn that logs to logger at
// most one line per Reason per interval, with the number of events since
// the last line and the last source seen: a flood calls the hook for every
// connection it costs, thousands of times a second, so a hook that logs
// each call would turn the flood into a logging flood. A nil logger uses
// slog.Default; an interval below one second is raised to one second. The
// returned hook takes a mutex and does no I/O unless a line is due.
func LogRejections(logger *slog.Logger, interval time.Duration) func(netip.Addr, Reason) {
	if logger == nil {
		logger = slog.Default()
	}
	interval = max(interval, time.Second)
	var mu sync.Mutex
	type tally struct {
		last  time.Time
		count int
	}
	var by [numReasons]tally
	return func(remote netip.Addr, why Reason) {
		if why >= numReasons {
			return
		}
		now := time.Now()
		mu.Lock()
		tl := &by[why]
		tl.count++
		if now.Sub(tl.last) < interval {
			mu.Unlock()
			return
		}
		n := tl.count
		tl.count, tl.last = 0, now
		mu.Unlock()
		logger.LogAttrs(context.Background(), slog.LevelWarn, "limiter: connections closed",
			slog.String("reason", why.String()), slog.Int("count", n), slog.String("last_source", remote.String()))
	}
}
