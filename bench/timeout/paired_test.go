package timeoutbench

import (
	"context"
	"testing"
	"time"

	"github.com/garrison-go/garrison/bench/internal/paired"
	"github.com/garrison-go/garrison/timeout"
)

// pairedCalls runs base and impl in alternating chunks of 128 calls (see
// package paired).
func pairedCalls(b *testing.B, baseName string, base, impl func()) {
	const chunk = 128
	paired.Chunks(b, baseName, "call", func(isImpl bool) float64 {
		f := base
		if isImpl {
			f = impl
		}
		t0 := time.Now()
		for range chunk {
			f()
		}
		return float64(time.Since(t0)) / chunk
	})
}

// BenchmarkPaired measures the targets' ratios with paired: Run against
// context.WithTimeout inline, Detacher.Run against the naive wrapper, and
// Track+Done with cancellation against the context.WithCancelCause it
// cannot avoid.
func BenchmarkPaired(b *testing.B) {
	ctx := context.Background()
	b.Run("Run/garrison", func(b *testing.B) {
		pairedCalls(b, "inline", func() {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			errSink = work(cctx)
			cancel()
		}, func() {
			errSink = timeout.Run(ctx, time.Second, work, timeout.Named("db.query"))
		})
	})
	b.Run("TrackDone/cancel=on/garrison", func(b *testing.B) {
		w := newWatchdog(b, timeout.WithCancelStalled(true))
		pairedCalls(b, "inline", func() {
			_, cancel := context.WithCancelCause(ctx)
			cancel(nil)
		}, func() {
			_, tok := w.Track(ctx, "job")
			tok.Done()
		})
	})
	b.Run("Detacher/garrison", func(b *testing.B) {
		d, err := timeout.NewDetacher(1 << 20)
		if err != nil {
			b.Fatal(err)
		}
		pairedCalls(b, "naive", func() {
			errSink = naive(ctx, time.Second, work)
		}, func() {
			errSink = d.Run(ctx, time.Second, work)
		})
	})
}
