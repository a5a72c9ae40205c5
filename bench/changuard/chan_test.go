package changuardbench

import (
	"context"
	"runtime"
	"testing"

	"github.com/garrison-go/garrison/changuard"
	"github.com/puzpuzpuz/xsync/v4"
)

const chanCap = 128

// The naive ctx-aware channel: every send and receive is a two-way select.
func selectSend(ctx context.Context, ch chan int, v int) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func selectRecv(ctx context.Context, ch chan int) (int, error) {
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func newChan(b *testing.B) *changuard.Chan[int] {
	c, err := changuard.NewChan[int](chanCap)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// cancelCtx is a context with a Done channel, as a request context has:
// context.Background() would let select skip the ctx case for free.
func cancelCtx(b *testing.B) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return ctx
}

// BenchmarkChanSendRecv sends and receives one value on one goroutine.
func BenchmarkChanSendRecv(b *testing.B) {
	b.Run("raw", func(b *testing.B) {
		ch := make(chan int, chanCap)
		for i := 0; b.Loop(); i++ {
			ch <- i
			<-ch
		}
	})
	b.Run("select", func(b *testing.B) {
		ctx := cancelCtx(b)
		ch := make(chan int, chanCap)
		for i := 0; b.Loop(); i++ {
			if err := selectSend(ctx, ch, i); err != nil {
				b.Fatal(err)
			}
			if _, err := selectRecv(ctx, ch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("xsync", func(b *testing.B) {
		q := xsync.NewMPMCQueue[int](chanCap)
		for i := 0; b.Loop(); i++ {
			q.TryEnqueue(i)
			q.TryDequeue()
		}
	})
	b.Run("garrison", func(b *testing.B) {
		ctx := cancelCtx(b)
		c := newChan(b)
		for i := 0; b.Loop(); i++ {
			if err := c.Send(ctx, i); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Recv(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkChanSPSC streams b.N values from one producer goroutine to one
// consumer goroutine (the benchmark's own).
func BenchmarkChanSPSC(b *testing.B) {
	b.Run("raw", func(b *testing.B) {
		ch := make(chan int, chanCap)
		go func() {
			for i := 0; i < b.N; i++ {
				ch <- i
			}
		}()
		for i := 0; i < b.N; i++ {
			<-ch
		}
	})
	b.Run("select", func(b *testing.B) {
		ctx := cancelCtx(b)
		ch := make(chan int, chanCap)
		go func() {
			for i := 0; i < b.N; i++ {
				_ = selectSend(ctx, ch, i)
			}
		}()
		for i := 0; i < b.N; i++ {
			if _, err := selectRecv(ctx, ch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("xsync", func(b *testing.B) {
		// xsync has no blocking operations (its blocking ones spun and were
		// removed): both sides yield while the queue is full or empty.
		q := xsync.NewMPMCQueue[int](chanCap)
		go func() {
			for i := 0; i < b.N; i++ {
				for !q.TryEnqueue(i) {
					runtime.Gosched()
				}
			}
		}()
		for i := 0; i < b.N; i++ {
			for {
				if _, ok := q.TryDequeue(); ok {
					break
				}
				runtime.Gosched()
			}
		}
	})
	b.Run("garrison", func(b *testing.B) {
		ctx := cancelCtx(b)
		c := newChan(b)
		go func() {
			for i := 0; i < b.N; i++ {
				_ = c.Send(ctx, i)
			}
		}()
		for i := 0; i < b.N; i++ {
			if _, err := c.Recv(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkChanParallel has every goroutine of RunParallel send one value
// and receive one on a shared channel: the contended case. Capacity exceeds
// the number of goroutines, so nobody blocks for long.
func BenchmarkChanParallel(b *testing.B) {
	const parCap = 1024
	b.Run("raw", func(b *testing.B) {
		ch := make(chan int, parCap)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ch <- 1
				<-ch
			}
		})
	})
	b.Run("select", func(b *testing.B) {
		ctx := cancelCtx(b)
		ch := make(chan int, parCap)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = selectSend(ctx, ch, 1)
				_, _ = selectRecv(ctx, ch)
			}
		})
	})
	b.Run("xsync", func(b *testing.B) {
		q := xsync.NewMPMCQueue[int](parCap)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				q.TryEnqueue(1)
				q.TryDequeue()
			}
		})
	})
	b.Run("garrison", func(b *testing.B) {
		ctx := cancelCtx(b)
		c, err := changuard.NewChan[int](parCap)
		if err != nil {
			b.Fatal(err)
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = c.Send(ctx, 1)
				_, _ = c.Recv(ctx)
			}
		})
	})
}

// BenchmarkChanMPSC is the common service shape: every goroutine of
// RunParallel sends, one consumer goroutine receives everything.
func BenchmarkChanMPSC(b *testing.B) {
	consume := func(b *testing.B, recv func()) (wait func()) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range b.N {
				recv()
			}
		}()
		return func() { <-done }
	}
	b.Run("raw", func(b *testing.B) {
		ch := make(chan int, chanCap)
		wait := consume(b, func() { <-ch })
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ch <- 1
			}
		})
		wait()
	})
	b.Run("select", func(b *testing.B) {
		ctx := cancelCtx(b)
		ch := make(chan int, chanCap)
		wait := consume(b, func() { _, _ = selectRecv(ctx, ch) })
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = selectSend(ctx, ch, 1)
			}
		})
		wait()
	})
	b.Run("garrison", func(b *testing.B) {
		ctx := cancelCtx(b)
		c := newChan(b)
		wait := consume(b, func() { _, _ = c.Recv(ctx) })
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = c.Send(ctx, 1)
			}
		})
		wait()
	})
}
