// Package timeoutbench compares timeout's primitives with what a Go
// service would write by hand: context.WithTimeout inline, and the
// goroutine-and-select wrapper that abandons work at the deadline.
//
//	bench/compare -count 6 -vs inline,naive timeout
package timeoutbench

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/garrison-go/garrison/timeout"
)

var errSink error

func work(context.Context) error { return nil }

func workInt(context.Context) (int, error) { return 1, nil }

// BenchmarkRun measures the whole overhead of bounding a call that
// finishes in time: deriving the context, calling fn, releasing it.
func BenchmarkRun(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts []timeout.Option
	}{
		{"unnamed", nil},
		{"named", []timeout.Option{timeout.Named("db.query")}},
	} {
		b.Run(tc.name+"/inline", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				errSink = work(cctx)
				cancel()
			}
		})
		b.Run(tc.name+"/garrison", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				errSink = timeout.Run(ctx, time.Second, work, tc.opts...)
			}
		})
	}
	b.Run("do/inline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			_, errSink = workInt(cctx)
			cancel()
		}
	})
	b.Run("do/garrison", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, errSink = timeout.Do(ctx, time.Second, workInt)
		}
	})
}

// naive is the wrapper the Detacher replaces: it returns at the deadline
// and forgets fn, which may run forever.
func naive(ctx context.Context, d time.Duration, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// BenchmarkDetacher measures a call that finishes in time, which is the
// cost every call pays; abandonment is the rare path.
func BenchmarkDetacher(b *testing.B) {
	ctx := context.Background()
	b.Run("serial/naive", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			errSink = naive(ctx, time.Second, work)
		}
	})
	b.Run("serial/garrison", func(b *testing.B) {
		d, err := timeout.NewDetacher(1 << 20)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			errSink = d.Run(ctx, time.Second, work)
		}
	})
	b.Run("parallel/naive", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := naive(ctx, time.Second, work); err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("parallel/garrison", func(b *testing.B) {
		d, err := timeout.NewDetacher(1 << 20)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := d.Run(ctx, time.Second, work); err != nil {
					b.Error(err)
				}
			}
		})
	})
}

func newWatchdog(b *testing.B, opts ...timeout.WatchdogOption) *timeout.Watchdog {
	w, err := timeout.NewWatchdog(opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Close() })
	return w
}

// BenchmarkTrackDone measures registering and unregistering one piece of
// work. With cancellation on, inline is the floor any implementation
// pays: context.WithCancelCause and its cancel.
func BenchmarkTrackDone(b *testing.B) {
	ctx := context.Background()
	b.Run("cancel=off/garrison", func(b *testing.B) {
		w := newWatchdog(b)
		b.ReportAllocs()
		for b.Loop() {
			_, tok := w.Track(ctx, "job")
			tok.Done()
		}
	})
	b.Run("cancel=off/parallel/garrison", func(b *testing.B) {
		w := newWatchdog(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, tok := w.Track(ctx, "job")
				tok.Done()
			}
		})
	})
	b.Run("cancel=on/inline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, cancel := context.WithCancelCause(ctx)
			cancel(nil)
		}
	})
	b.Run("cancel=on/garrison", func(b *testing.B) {
		w := newWatchdog(b, timeout.WithCancelStalled(true))
		b.ReportAllocs()
		for b.Loop() {
			_, tok := w.Track(ctx, "job")
			tok.Done()
		}
	})
	b.Run("stacks=on/garrison", func(b *testing.B) {
		w := newWatchdog(b, timeout.WithStacks(true))
		b.ReportAllocs()
		for b.Loop() {
			_, tok := w.Track(ctx, "job")
			tok.Done()
		}
	})
}

// BenchmarkBeat measures recording progress; inline is a bare atomic
// store, the least a Beat can cost.
func BenchmarkBeat(b *testing.B) {
	b.Run("serial/inline", func(b *testing.B) {
		var v atomic.Int64
		for i := 0; b.Loop(); i++ {
			v.Store(int64(i))
		}
	})
	b.Run("serial/garrison", func(b *testing.B) {
		w := newWatchdog(b)
		_, tok := w.Track(context.Background(), "job")
		defer tok.Done()
		for b.Loop() {
			tok.Beat()
		}
	})
	b.Run("parallel/garrison", func(b *testing.B) {
		w := newWatchdog(b)
		b.RunParallel(func(pb *testing.PB) {
			_, tok := w.Track(context.Background(), "job")
			defer tok.Done()
			for pb.Next() {
				tok.Beat()
			}
		})
	})
}
