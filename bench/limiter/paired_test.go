package limiterbench

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/garrison-go/garrison/bench/internal/paired"
	"github.com/garrison-go/garrison/limiter"
)

// The limiter targets are ratios against a peer, and on this shared 2-core
// machine the load drifts between two separate benchmarks by as much as
// the margins measured: in one compare run a round of the keyed serial
// benchmark moved from 0.61x to 0.77x while its neighbours did not. So
// BenchmarkPaired takes each ratio inside one benchmark (package paired).

// serialChunk calls op n times from the calling goroutine and returns the
// time per call in nanoseconds.
func serialChunk(n int, op func()) float64 {
	t0 := time.Now()
	for range n {
		op()
	}
	return float64(time.Since(t0)) / float64(n)
}

// parallelChunk calls op n times on each of GOMAXPROCS goroutines at once
// and returns the wall time divided by all the calls, as RunParallel's
// ns/op is, in nanoseconds. op gets the goroutine's index and its call's.
func parallelChunk(n int, op func(g, i int)) float64 {
	p := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range p {
		wg.Go(func() {
			<-start
			for i := range n {
				op(g, i)
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	return float64(time.Since(t0)) / float64(n*p)
}

// BenchmarkPaired measures the limiter targets as paired ratios: Keyed at
// 1e5 tracked keys against sethvargo's memorystore, serial and parallel
// (the keys taken round-robin as in BenchmarkKeyed), and one hot key in
// parallel against x/time/rate (as in BenchmarkAllowSingleKey/allow).
//
// The keyed pair measures something BenchmarkKeyed does not: the two
// limiters hold 1e5 keys each and alternate every 512 calls, so each
// evicts the other's state from the caches, and every call pays the
// misses a limiter pays in a service whose other work competes for the
// cache. BenchmarkKeyed runs one limiter at a time, whose table then stays
// in the last-level cache. Both are reported; they differ (0.71-0.72x here
// against 0.61x median there, in the same hour).
//
//	go test -run '^$' -bench Paired -benchtime 2000x -count 5 ./limiter
func BenchmarkPaired(b *testing.B) {
	const n = 100_000
	keys := makeKeys(n)
	keyed := func(b *testing.B, impl string) func(string) bool {
		allow, closeFn := keyedImpl(b, impl, 1<<17)
		b.Cleanup(closeFn)
		for _, k := range keys {
			allow(k)
		}
		return allow
	}
	b.Run("Keyed/keys=1e5/serial", func(b *testing.B) {
		const chunk = 512
		peer, impl := keyed(b, "sethvargo"), keyed(b, "garrison")
		var next [2]int // each side walks the keys on its own
		paired.Chunks(b, "sethvargo", "call", func(isImpl bool) float64 {
			allow, at := peer, &next[0]
			if isImpl {
				allow, at = impl, &next[1]
			}
			return serialChunk(chunk, func() {
				allow(keys[*at%n])
				*at++
			})
		})
	})
	b.Run("Keyed/keys=1e5/parallel", func(b *testing.B) {
		const chunk = 512
		peer, impl := keyed(b, "sethvargo"), keyed(b, "garrison")
		var round int
		paired.Chunks(b, "sethvargo", "call", func(isImpl bool) float64 {
			allow := peer
			if isImpl {
				allow = impl
			}
			base := round * chunk
			round++
			return parallelChunk(chunk, func(g, i int) {
				allow(keys[(base+g*7919+i)%n])
			})
		})
	})
	b.Run("SingleKey/allow/parallel", func(b *testing.B) {
		const chunk = 1024
		l := singleKey(b, float64(limiter.MaxRate), limiter.MaxBurst)
		peer, impl := l["xtime"], l["garrison"]
		paired.Chunks(b, "xtime", "call", func(isImpl bool) float64 {
			allow := peer
			if isImpl {
				allow = impl
			}
			return parallelChunk(chunk, func(int, int) { allow() })
		})
	})
}
