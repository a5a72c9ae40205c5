package spawnbench

import (
	"context"
	"testing"

	"github.com/sourcegraph/conc/pool"

	"github.com/garrison-go/garrison/spawn"
)

// setupConcErrors is conc's error-returning pool, the peer of spawn.Group
// (and, like errgroup, of a batch whose errors come back).
func setupConcErrors(_ *testing.B, limit int, task func()) (func(int), func()) {
	f := func() error { task(); return nil }
	return func(n int) {
		p := pool.New().WithErrors().WithMaxGoroutines(limit)
		for range n {
			p.Go(f)
		}
		_ = p.Wait()
	}, func() {}
}

// setupGarrisonGroup runs each batch as one spawn.Group on a shared
// spawner: the errgroup-with-SetLimit replacement.
func setupGarrisonGroup(b *testing.B, limit int, task func()) (func(int), func()) {
	s := newSpawner(b, limit)
	ctx := context.Background()
	f := func(context.Context) error { task(); return nil }
	return func(n int) {
		g, _ := spawn.NewGroup(ctx, s)
		for range n {
			if err := g.Go(f); err != nil {
				b.Fatal(err)
			}
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
	}, shutdown(b, s)
}

type requestIDKey struct{}

// setupGarrisonGoValues is garrison-Go submitting with a request context
// that carries a value (and is cancelable), which every task's context
// must carry too.
func setupGarrisonGoValues(b *testing.B, limit int, task func()) (func(int), func()) {
	s := newSpawner(b, limit)
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), requestIDKey{}, "req-1"))
	f := func(ctx context.Context) error {
		if ctx.Value(requestIDKey{}) == nil {
			panic("request id lost")
		}
		task()
		return nil
	}
	return func(n int) {
			for range n {
				if err := s.Go(ctx, f); err != nil {
					b.Fatal(err)
				}
			}
			_ = s.Wait(context.Background())
		}, func() {
			cancel()
			shutdown(b, s)()
		}
}
