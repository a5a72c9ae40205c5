package spawnbench

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/garrison-go/garrison/spawn"
)

// coalescer is one implementation of "run fn once per key in flight".
type coalescer struct {
	name string
	make func(b *testing.B) func(ctx context.Context, key string, fn func() (int, error)) (int, error)
}

var coalescers = []coalescer{
	{"singleflight", func(*testing.B) func(context.Context, string, func() (int, error)) (int, error) {
		var g singleflight.Group
		return func(_ context.Context, key string, fn func() (int, error)) (int, error) {
			v, err, _ := g.Do(key, func() (any, error) { return fn() })
			n, _ := v.(int)
			return n, err
		}
	}},
	// singleflight-ctx is what a caller who must leave on its ctx writes
	// with singleflight: DoChan (fn on a goroutine of its own) and a
	// select on the ctx. It does not cancel the work when every caller
	// has left, and fn gets no ctx: it is the floor of the Coalescer's
	// cancelable path, not its equal.
	{"singleflight-ctx", func(*testing.B) func(context.Context, string, func() (int, error)) (int, error) {
		var g singleflight.Group
		return func(ctx context.Context, key string, fn func() (int, error)) (int, error) {
			ch := g.DoChan(key, func() (any, error) { return fn() })
			select {
			case r := <-ch:
				n, _ := r.Val.(int)
				return n, r.Err
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}},
	{"garrison-Coalescer", func(b *testing.B) func(context.Context, string, func() (int, error)) (int, error) {
		c, err := spawn.NewCoalescer[int](1 << 16)
		if err != nil {
			b.Fatal(err)
		}
		return func(ctx context.Context, key string, fn func() (int, error)) (int, error) {
			v, _, err := c.Do(ctx, key, func(context.Context) (int, error) { return fn() })
			return v, err
		}
	}},
}

// BenchmarkCoalesce measures the cost of the coalescing itself around a
// tiny fn. Contexts: "background" can never end (the Coalescer then runs fn
// on the caller, like singleflight); "cancelable" is a request context,
// for which the Coalescer runs fn on a goroutine of its own so that any
// caller may leave. singleflight ignores the context.
func BenchmarkCoalesce(b *testing.B) {
	cancelable, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctxs := []struct {
		name string
		ctx  context.Context
	}{{"background", context.Background()}, {"cancelable", cancelable}}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	fn := func() (int, error) { tiny(); return 1, nil }
	for _, cx := range ctxs {
		for _, im := range coalescers {
			// Serial, distinct keys: every call runs fn (no sharing);
			// the bookkeeping per call dominates.
			b.Run("serial-distinct/"+cx.name+"/"+im.name, func(b *testing.B) {
				do := im.make(b)
				b.ReportAllocs()
				for i := range b.N {
					if _, err := do(cx.ctx, keys[i&1023], fn); err != nil {
						b.Fatal(err)
					}
				}
			})
			// Parallel callers on 8 hot keys: calls overlap and share.
			b.Run("parallel-hot/"+cx.name+"/"+im.name, func(b *testing.B) {
				do := im.make(b)
				var next atomic.Uint64
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := do(cx.ctx, keys[next.Add(1)&7], fn); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkCoalescePaired interleaves singleflight and the Coalescer (and,
// with a cancelable ctx, singleflight-ctx) in
// blocks of 256 calls within one benchmark, timing each block, so that
// both see the same machine load: on a shared machine whose speed drifts
// between runs this ratio is steadier than one taken across two
// benchmarks. It reports ns per call of each and their ratio.
func BenchmarkCoalescePaired(b *testing.B) {
	cancelable, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	fn := func() (int, error) { tiny(); return 1, nil }
	for _, cx := range []struct {
		name string
		ctx  context.Context
	}{{"background", context.Background()}, {"cancelable", cancelable}} {
		for _, mode := range []string{"serial-distinct", "parallel-hot"} {
			b.Run(mode+"/"+cx.name, func(b *testing.B) {
				// The Coalescer against singleflight.Do, and with a
				// cancelable ctx also against singleflight-ctx, its
				// ctx-aware form.
				impls := []func(context.Context, string, func() (int, error)) (int, error){
					coalescers[0].make(b), coalescers[2].make(b),
				}
				if cx.name == "cancelable" {
					impls = append(impls, coalescers[1].make(b))
				}
				var total [3]atomic.Int64
				var calls atomic.Int64
				const block = 256
				body := func(worker uint64, next func() uint64, more func() bool) {
					for more() {
						for i, do := range impls {
							start := time.Now()
							for range block {
								k := next()
								if mode == "parallel-hot" {
									k &= 7
								} else {
									k = (k + worker*block) & 1023
								}
								if _, err := do(cx.ctx, keys[k], fn); err != nil {
									b.Error(err)
									return
								}
							}
							total[i].Add(int64(time.Since(start)))
						}
						calls.Add(block)
					}
				}
				var seq atomic.Uint64
				if mode == "serial-distinct" {
					n := 0
					body(0, func() uint64 { return seq.Add(1) }, func() bool { n += block; return n-block < b.N })
				} else {
					var w atomic.Uint64
					b.RunParallel(func(pb *testing.PB) {
						id := w.Add(1)
						body(id, func() uint64 { return seq.Add(1) }, pb.Next)
					})
				}
				c := float64(calls.Load())
				b.ReportMetric(float64(total[0].Load())/c, "singleflight-ns/call")
				b.ReportMetric(float64(total[1].Load())/c, "coalescer-ns/call")
				b.ReportMetric(float64(total[1].Load())/float64(total[0].Load()), "x-singleflight")
				if len(impls) == 3 {
					b.ReportMetric(float64(total[2].Load())/c, "singleflight-ctx-ns/call")
					b.ReportMetric(float64(total[1].Load())/float64(total[2].Load()), "x-singleflight-ctx")
				}
			})
		}
	}
}
