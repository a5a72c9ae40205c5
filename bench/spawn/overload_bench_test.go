package spawnbench

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/garrison-go/garrison/spawn"
)

// BenchmarkAdmissionPaired measures what the overload controls add to a
// task's admission and run: it interleaves, in blocks of 4096 tiny tasks
// submitted with Go and awaited with Wait, a static spawner, one with
// WithAdaptiveLimit and one with WithAdaptiveLimit plus WithQueueTarget,
// timing each block, so that all three see the same machine load (the
// ratio of two separate benchmarks drifts with a shared machine's speed),
// in alternating order.
//
// The adaptive limit is pinned (min = max = the static cap) so that the
// three run the same concurrency and the difference is the cost of the
// path alone: the limit's loads at admission, one task in 32 timed, the
// worker cap check, and with a queue target two clock reads per queued
// task. With
// cap=GOMAXPROCS most tasks go through the queue; with cap=1000 most are
// handed to a worker. It reports ns per task of each and the extra ns per
// task of each control over the static path.
func BenchmarkAdmissionPaired(b *testing.B) {
	for _, limit := range []int{runtime.GOMAXPROCS(0), 1000} {
		name := "cap=1000"
		if limit != 1000 {
			name = "cap=GOMAXPROCS"
		}
		b.Run(name, func(b *testing.B) {
			mk := func(opts ...spawn.Option) *spawn.Spawner {
				s, err := spawn.New(append([]spawn.Option{spawn.WithMaxConcurrent(limit)}, opts...)...)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() {
					if err := s.Shutdown(context.Background()); err != nil {
						b.Error(err)
					}
				})
				return s
			}
			spawners := []*spawn.Spawner{
				mk(),
				mk(spawn.WithAdaptiveLimit(limit, limit)),
				mk(spawn.WithAdaptiveLimit(limit, limit), spawn.WithQueueTarget(5*time.Millisecond, 100*time.Millisecond)),
			}
			ctx := context.Background()
			f := func(context.Context) error { tiny(); return nil }
			const block = 4096
			var total [3]time.Duration
			b.ResetTimer()
			for n := 0; n < b.N; n += block {
				// The blocks run in the order 0 0 1 1 2 2 0 2 1, again
				// and again: each spawner follows each spawner, itself
				// included, once per nine blocks. What a block costs
				// depends on what ran before it (another spawner's
				// workers going idle, or this one's still warm), and
				// each spawner must meet each predecessor as often.
				// (Reversing every other round, 0 1 2 2 1 0, let the two
				// ends follow themselves half the time and the middle
				// one never, which charged the middle one 20-60 ns per
				// task at cap 1000.)
				seq := [9]int{0, 0, 1, 1, 2, 2, 0, 2, 1}
				at := n / block * 3 % 9
				for _, i := range seq[at : at+3] {
					s := spawners[i]
					start := time.Now()
					for range block {
						if err := s.Go(ctx, f); err != nil {
							b.Fatal(err)
						}
					}
					if err := s.Wait(ctx); err != nil {
						b.Fatal(err)
					}
					total[i] += time.Since(start)
				}
			}
			b.StopTimer()
			tasks := float64((b.N + block - 1) / block * block)
			per := func(i int) float64 { return float64(total[i].Nanoseconds()) / tasks }
			b.ReportMetric(per(0), "static-ns/task")
			b.ReportMetric(per(1), "adaptive-ns/task")
			b.ReportMetric(per(2), "adaptive+codel-ns/task")
			b.ReportMetric(per(1)-per(0), "adaptive-extra-ns/task")
			b.ReportMetric(per(2)-per(0), "adaptive+codel-extra-ns/task")
			for _, s := range spawners {
				if st := s.Stats(); st.Shed != 0 || st.Rejected != 0 {
					b.Fatalf("a benchmark spawner shed or rejected work: %+v", st)
				}
			}
		})
	}
}

// overloadControls are the spawner configurations BenchmarkAdmission
// compares: the static cap, the adaptive limit pinned to it (same
// concurrency, so the difference is the path's cost), and the adaptive
// limit with queue-time shedding.
var overloadControls = []struct {
	name string
	opts func(limit int) []spawn.Option
}{
	{"static", func(limit int) []spawn.Option { return []spawn.Option{spawn.WithMaxConcurrent(limit)} }},
	{"adaptive", func(limit int) []spawn.Option {
		return []spawn.Option{spawn.WithMaxConcurrent(limit), spawn.WithAdaptiveLimit(limit, limit)}
	}},
	{"adaptive+codel", func(limit int) []spawn.Option {
		return []spawn.Option{spawn.WithMaxConcurrent(limit), spawn.WithAdaptiveLimit(limit, limit),
			spawn.WithQueueTarget(5*time.Millisecond, 100*time.Millisecond)}
	}},
}

// BenchmarkAdmission is BenchmarkAdmissionPaired as one benchmark per
// configuration, for bench/compare, which interleaves them over rounds and
// reports each ratio to static with its spread: ns/op is per task (a
// tiny task submitted with Go; the spawner is drained every 4096 tasks).
func BenchmarkAdmission(b *testing.B) {
	limit := runtime.GOMAXPROCS(0)
	for _, oc := range overloadControls {
		b.Run("cap=GOMAXPROCS/"+oc.name, func(b *testing.B) {
			s, err := spawn.New(oc.opts(limit)...)
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := s.Shutdown(context.Background()); err != nil {
					b.Error(err)
				}
			}()
			ctx := context.Background()
			f := func(context.Context) error { tiny(); return nil }
			b.ResetTimer()
			for i := range b.N {
				if err := s.Go(ctx, f); err != nil {
					b.Fatal(err)
				}
				if i%4096 == 4095 {
					if err := s.Wait(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := s.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
