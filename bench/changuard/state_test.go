package changuardbench

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/garrison-go/garrison/changuard"
)

type account struct {
	balance int64
	ops     int64
}

// BenchmarkGuardedWith updates a two-field struct under a lock.
func BenchmarkGuardedWith(b *testing.B) {
	b.Run("serial/mutex", func(b *testing.B) {
		var mu sync.Mutex
		var a account
		for b.Loop() {
			mu.Lock()
			a.balance++
			a.ops++
			mu.Unlock()
		}
	})
	b.Run("serial/garrison", func(b *testing.B) {
		var g changuard.Guarded[account]
		for b.Loop() {
			g.With(func(a *account) {
				a.balance++
				a.ops++
			})
		}
	})
	b.Run("parallel/mutex", func(b *testing.B) {
		var mu sync.Mutex
		var a account
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				mu.Lock()
				a.balance++
				a.ops++
				mu.Unlock()
			}
		})
	})
	b.Run("parallel/garrison", func(b *testing.B) {
		var g changuard.Guarded[account]
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				g.With(func(a *account) {
					a.balance++
					a.ops++
				})
			}
		})
	})
}

type config struct {
	limit int
	burst int
}

var sink int

// BenchmarkSnapshotLoad reads a published struct.
func BenchmarkSnapshotLoad(b *testing.B) {
	b.Run("serial/atomic", func(b *testing.B) {
		var p atomic.Pointer[config]
		p.Store(&config{limit: 1, burst: 2})
		s := 0
		for b.Loop() {
			c := p.Load()
			s += c.limit + c.burst
		}
		sink = s
	})
	b.Run("serial/rwmutex", func(b *testing.B) {
		var mu sync.RWMutex
		c := config{limit: 1, burst: 2}
		s := 0
		for b.Loop() {
			mu.RLock()
			s += c.limit + c.burst
			mu.RUnlock()
		}
		sink = s
	})
	b.Run("serial/garrison", func(b *testing.B) {
		snap := changuard.NewSnapshot(config{limit: 1, burst: 2})
		s := 0
		for b.Loop() {
			c, _ := snap.Load()
			s += c.limit + c.burst
		}
		sink = s
	})
	b.Run("parallel/atomic", func(b *testing.B) {
		var p atomic.Pointer[config]
		p.Store(&config{limit: 1, burst: 2})
		b.RunParallel(func(pb *testing.PB) {
			s := 0
			for pb.Next() {
				c := p.Load()
				s += c.limit + c.burst
			}
			sinkAdd(s)
		})
	})
	b.Run("parallel/rwmutex", func(b *testing.B) {
		var mu sync.RWMutex
		c := config{limit: 1, burst: 2}
		b.RunParallel(func(pb *testing.PB) {
			s := 0
			for pb.Next() {
				mu.RLock()
				s += c.limit + c.burst
				mu.RUnlock()
			}
			sinkAdd(s)
		})
	})
	b.Run("parallel/garrison", func(b *testing.B) {
		snap := changuard.NewSnapshot(config{limit: 1, burst: 2})
		b.RunParallel(func(pb *testing.PB) {
			s := 0
			for pb.Next() {
				c, _ := snap.Load()
				s += c.limit + c.burst
			}
			sinkAdd(s)
		})
	})
}

var sinkMu sync.Mutex

func sinkAdd(s int) {
	sinkMu.Lock()
	sink += s
	sinkMu.Unlock()
}

// BenchmarkSnapshotUpdate replaces the published struct.
func BenchmarkSnapshotUpdate(b *testing.B) {
	b.Run("atomic", func(b *testing.B) {
		var p atomic.Pointer[config]
		p.Store(&config{})
		for b.Loop() {
			old := p.Load()
			p.Store(&config{limit: old.limit + 1})
		}
	})
	b.Run("garrison", func(b *testing.B) {
		snap := changuard.NewSnapshot(config{})
		for b.Loop() {
			_, _ = snap.Update(func(c config) (config, error) {
				c.limit++
				return c, nil
			})
		}
	})
}

// BenchmarkOwnerCall does one read-modify-write of a struct and returns a
// result: with a Mutex, or as a Call to the goroutine owning the struct.
func BenchmarkOwnerCall(b *testing.B) {
	b.Run("mutex", func(b *testing.B) {
		var mu sync.Mutex
		var a account
		s := int64(0)
		for b.Loop() {
			mu.Lock()
			a.balance++
			s += a.balance
			mu.Unlock()
		}
		sink = int(s)
	})
	b.Run("raw", func(b *testing.B) {
		// The floor for any actor: a goroutine fed by a channel of funcs,
		// answering on a reply channel, with no ctx, panic or stop handling.
		jobs := make(chan func(*account), 64)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var a account
			for f := range jobs {
				f(&a)
			}
		}()
		reply := make(chan int64, 1)
		s := int64(0)
		for b.Loop() {
			jobs <- func(a *account) {
				a.balance++
				reply <- a.balance
			}
			s += <-reply
		}
		close(jobs)
		wg.Wait()
		sink = int(s)
	})
	b.Run("garrison", func(b *testing.B) {
		ctx := cancelCtx(b)
		o, err := changuard.NewOwner(account{}, 64)
		if err != nil {
			b.Fatal(err)
		}
		defer func() {
			if err := o.Shutdown(context.Background()); err != nil {
				b.Fatal(err)
			}
		}()
		s := int64(0)
		for b.Loop() {
			v, err := changuard.Call(ctx, o, func(a *account) (int64, error) {
				a.balance++
				return a.balance, nil
			})
			if err != nil {
				b.Fatal(err)
			}
			s += v
		}
		sink = int(s)
	})
	b.Run("post/garrison", func(b *testing.B) {
		o, err := changuard.NewOwner(account{}, 1024)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			for o.Post(func(a *account) { a.balance++ }) != nil {
				// Full: let the owner catch up. Calls wait their turn.
				_, _ = changuard.Call(context.Background(), o, func(*account) (struct{}, error) { return struct{}{}, nil })
			}
		}
		if err := o.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
	})
}
