package timeoutbench

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/garrison-go/garrison/timeout"
)

// paired runs base and impl in alternating chunks inside one benchmark
// and reports the median, over chunk pairs, of each one's time per call
// and of their ratio. On a shared, noisy machine the load drifts between
// two separate benchmarks and a preempted chunk inflates a sum; adjacent
// chunks see the same load and the median ignores the preempted ones, so
// the ratio stays meaningful when absolute times do not.
func paired(b *testing.B, baseName string, base, impl func()) {
	const chunk = 128
	var tBase, tImpl, ratios []float64
	for i := 0; b.Loop(); i++ {
		first, second := base, impl
		if i%2 == 1 {
			first, second = impl, base
		}
		t0 := time.Now()
		for range chunk {
			first()
		}
		t1 := time.Now()
		for range chunk {
			second()
		}
		d1, d2 := float64(t1.Sub(t0)), float64(time.Since(t1))
		if i%2 == 1 {
			d1, d2 = d2, d1
		}
		tBase = append(tBase, d1/chunk)
		tImpl = append(tImpl, d2/chunk)
		ratios = append(ratios, d2/d1)
	}
	b.ReportMetric(median(tBase), baseName+"-ns/call")
	b.ReportMetric(median(tImpl), "garrison-ns/call")
	b.ReportMetric(median(ratios), "×"+baseName)
}

func median(x []float64) float64 {
	slices.Sort(x)
	return x[len(x)/2]
}

// BenchmarkPaired measures the targets' ratios with paired: Run against
// context.WithTimeout inline, Detacher.Run against the naive wrapper, and
// Track+Done with cancellation against the context.WithCancelCause it
// cannot avoid.
func BenchmarkPaired(b *testing.B) {
	ctx := context.Background()
	b.Run("Run/garrison", func(b *testing.B) {
		paired(b, "inline", func() {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			errSink = work(cctx)
			cancel()
		}, func() {
			errSink = timeout.Run(ctx, time.Second, work, timeout.Named("db.query"))
		})
	})
	b.Run("TrackDone/cancel=on/garrison", func(b *testing.B) {
		w := newWatchdog(b, timeout.WithCancelStalled(true))
		paired(b, "inline", func() {
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
		paired(b, "naive", func() {
			errSink = naive(ctx, time.Second, work)
		}, func() {
			errSink = d.Run(ctx, time.Second, work)
		})
	})
}
