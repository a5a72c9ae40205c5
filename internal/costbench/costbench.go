// Package costbench times a hot path, or a variant of it with a part taken
// out, against a peer inside one benchmark, for the cost benchmarks that sit
// beside the code they take apart: they need its unexported internals, which
// the bench module cannot reach.
//
// On a shared machine the load drifts between two benchmarks by as much as
// the differences being measured, so [Pairs] alternates the two sides in
// short chunks, and [Ratio] reports the median of the per-pair ratios.
//
// An op returns a value, which is summed and kept, so that the compiler
// cannot drop work whose result nothing reads.
package costbench

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var sink atomic.Uint64

// Parallel runs op n times on each of GOMAXPROCS goroutines at once and
// returns the wall time per call in nanoseconds, as RunParallel's ns/op is.
func Parallel(n int, op func() uint64) float64 {
	p := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range p {
		wg.Go(func() {
			<-start
			var s uint64
			for range n {
				s += op()
			}
			sink.Add(s)
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	return float64(time.Since(t0)) / float64(n*p)
}

// Pairs times op against peer in parallel chunks of n calls per goroutine,
// one pair per iteration of b.Loop with the order swapped every other
// pair, and returns the time per call of each chunk, pair by pair.
func Pairs(b *testing.B, n int, peer, op func() uint64) (tPeer, tOp []float64) {
	b.Helper()
	for i := 0; b.Loop(); i++ {
		first, second := peer, op
		if i%2 == 1 {
			first, second = second, first
		}
		d1, d2 := Parallel(n, first), Parallel(n, second)
		if i%2 == 1 {
			d1, d2 = d2, d1
		}
		tPeer = append(tPeer, d1)
		tOp = append(tOp, d2)
	}
	return tPeer, tOp
}

// Ratio runs [Pairs] and reports the median of op's time over peer's as
// the metric unit ("×raw", say).
func Ratio(b *testing.B, n int, peer, op func() uint64, unit string) {
	b.Helper()
	tPeer, tOp := Pairs(b, n, peer, op)
	ratios := make([]float64, len(tPeer))
	for i := range tPeer {
		ratios[i] = tOp[i] / tPeer[i]
	}
	b.ReportMetric(Median(ratios), unit)
}

// Median returns the median of x, sorting it.
func Median(x []float64) float64 {
	slices.Sort(x)
	return x[len(x)/2]
}
