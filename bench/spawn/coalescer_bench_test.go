package spawnbench

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

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
