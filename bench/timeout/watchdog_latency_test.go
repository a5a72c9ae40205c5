package timeoutbench

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/garrison-go/garrison/timeout"
)

// BenchmarkTrackDoneLatency measures the latency of one Track+Done while
// the watchdog holds many other Tokens and checks them every millisecond
// (stallAfter 8ms), and reports its p50, p99, p99.9 and max over every
// call of 32 goroutines (16 per P) doing Track+Done in a loop. The check
// of a million Tokens takes milliseconds; Track and Done must not wait
// for it. A closed loop like this one records one slow call per goroutine
// per check that holds them up, so a lock held by the check shows at
// p99.9 and max rather than p99; on a loaded machine, so does the
// scheduler.
//
//	go test -run '^$' -bench TrackDoneLatency -benchtime 400000x ./timeout
func BenchmarkTrackDoneLatency(b *testing.B) {
	for _, held := range []int{0, 1 << 20} {
		b.Run(map[int]string{0: "tokens=0", 1 << 20: "tokens=1M"}[held], func(b *testing.B) {
			w := newWatchdog(b, timeout.WithStallAfter(8*time.Millisecond))
			ctx := context.Background()
			toks := make([]*timeout.Token, held)
			for i := range toks {
				_, toks[i] = w.Track(ctx, "held")
			}
			b.Cleanup(func() {
				for _, t := range toks {
					t.Done()
				}
			})
			// Wait for the first check over the held Tokens (it reports them
			// all as stuck), then collect its garbage, so that what is
			// measured is the steady state: checks running every tick.
			for w.Stats().Stalls < uint64(held) {
				runtime.Gosched()
			}
			runtime.GC()
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				mine := make([]time.Duration, 0, 1024)
				for pb.Next() {
					t0 := time.Now()
					_, tok := w.Track(ctx, "job")
					tok.Done()
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			slices.Sort(lat)
			q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Nanoseconds()) }
			b.ReportMetric(q(0.5), "p50-ns")
			b.ReportMetric(q(0.99), "p99-ns")
			b.ReportMetric(q(0.999), "p99.9-ns")
			b.ReportMetric(q(1), "max-ns")
			if st := w.Stats(); st.Tracking != held {
				b.Fatalf("tracking %d, want %d", st.Tracking, held)
			}
		})
	}
}
