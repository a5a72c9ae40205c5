package lockorder

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/garrison-go/garrison/internal/logsample"
)

// SlogHandler returns a handler for SetHandler that logs each order
// violation to logger at Error and returns, so the acquisition proceeds:
// the choice for production and staging, where a panic would turn a
// potential deadlock into a certain outage. The attributes are "kind"
// (the violation, such as "lock order inversion"), "cycle" (the classes
// in order, "A -> B -> A"), "goroutine" and "stack" (of the acquisition
// being checked). Each violation is reported once per process, so no
// sampling is needed. A nil logger means slog.Default().
//
//	restore := lockorder.SetHandler(lockorder.SlogHandler(logger))
//	defer restore()
func SlogHandler(logger *slog.Logger) func(*OrderError) {
	if logger == nil {
		logger = slog.Default()
	}
	return func(e *OrderError) {
		var cycle strings.Builder
		var cur Edge
		for i, edge := range e.Edges {
			if i == 0 {
				cycle.WriteString(edge.From)
			}
			cycle.WriteString(" -> " + edge.To)
			if edge.Current {
				cur = edge
			}
		}
		kind := "unknown"
		if e.Kind != nil {
			kind = e.Kind.Error()
		}
		logger.LogAttrs(context.Background(), slog.LevelError, "lockorder: order violation",
			slog.String("kind", kind), slog.String("cycle", cycle.String()),
			slog.Int64("goroutine", cur.Goroutine), slog.String("stack", cur.Stack()))
	}
}

// SlogReporter returns a function for SetWatchdog that logs each Report
// to logger at Warn with the attributes "class", "goroutine", "waiting",
// "for", "stack" and, for a wait, "holder_goroutine" and "holder_stack".
// Lines are sampled (a burst of 10, then about one per second, each
// counting in "suppressed" the reports it stands for): one stuck lock
// can make every request wait on it. A nil logger means slog.Default().
//
//	stop, err := lockorder.SetWatchdog(time.Second, lockorder.SlogReporter(logger))
func SlogReporter(logger *slog.Logger) func(Report) {
	if logger == nil {
		logger = slog.Default()
	}
	sample := logsample.New(time.Second, 10)
	return func(r Report) {
		ok, n := sample.Allow()
		if !ok {
			return
		}
		attrs := []slog.Attr{
			slog.String("class", r.Class), slog.Int64("goroutine", r.Goroutine),
			slog.Bool("waiting", r.Waiting), slog.Duration("for", r.For),
			slog.String("stack", r.Stack), slog.Uint64("suppressed", n),
		}
		if r.Waiting && r.HolderGoroutine != 0 {
			attrs = append(attrs, slog.Int64("holder_goroutine", r.HolderGoroutine),
				slog.String("holder_stack", r.HolderStack))
		}
		logger.LogAttrs(context.Background(), slog.LevelWarn, "lockorder: lock held or awaited too long", attrs...)
	}
}
