package spawn_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/garrison-go/garrison/spawn"
)

func ExampleSpawner_Go() {
	s, err := spawn.New(spawn.WithMaxConcurrent(8), spawn.WithQueue(64))
	if err != nil {
		panic(err)
	}
	defer s.Shutdown(context.Background())

	ctx := context.Background()
	var total atomic.Int64
	for i := 1; i <= 100; i++ {
		// Go waits for room (at most until ctx is done) instead of
		// starting a goroutine per item.
		if err := s.Go(ctx, func(context.Context) error {
			total.Add(int64(i))
			return nil
		}); err != nil {
			fmt.Println("rejected:", err)
		}
	}
	if err := s.Wait(ctx); err != nil {
		panic(err)
	}
	fmt.Println(total.Load(), s.Stats().Succeeded)
	// Output: 5050 100
}

func ExampleSpawner_TryGo() {
	s, err := spawn.New(spawn.WithMaxConcurrent(1), spawn.WithQueue(0))
	if err != nil {
		panic(err)
	}
	defer s.Shutdown(context.Background())

	release := make(chan struct{})
	_ = s.TryGo(func(context.Context) error { <-release; return nil })

	// The spawner is full: shed the work instead of piling it up.
	err = s.TryGo(func(context.Context) error { return nil })
	fmt.Println(errors.Is(err, spawn.ErrSaturated))
	close(release)
	// Output: true
}

func ExampleSubmit() {
	s, err := spawn.New()
	if err != nil {
		panic(err)
	}
	defer s.Shutdown(context.Background())

	ctx := context.Background()
	h, err := spawn.Submit(ctx, s, func(context.Context) (string, error) {
		return "hello", nil
	})
	if err != nil {
		panic(err)
	}
	v, err := h.Wait(ctx)
	fmt.Println(v, err)

	// A panic comes back as an error carrying the value and the stack.
	h2, err := spawn.Submit(ctx, s, func(context.Context) (int, error) { panic("boom") })
	if err != nil {
		panic(err)
	}
	_, err = h2.Wait(ctx)
	var pe *spawn.PanicError
	fmt.Println(errors.Is(err, spawn.ErrPanic), errors.As(err, &pe) && pe.Value == "boom")
	// Output:
	// hello <nil>
	// true true
}

func ExampleSpawner_GoKey() {
	// Each tenant may have 2 tasks in the spawner; at most 1000 tenants
	// are tracked at once.
	s, err := spawn.New(spawn.WithPerKey(2, 1000))
	if err != nil {
		panic(err)
	}
	defer s.Shutdown(context.Background())

	ctx := context.Background()
	release := make(chan struct{})
	block := func(context.Context) error { <-release; return nil }
	fmt.Println(s.GoKey(ctx, "tenant-a", block))
	fmt.Println(s.GoKey(ctx, "tenant-a", block))
	fmt.Println(s.GoKey(ctx, "tenant-a", block))
	fmt.Println(s.GoKey(ctx, "tenant-b", block))
	close(release)
	// Output:
	// <nil>
	// <nil>
	// spawn: per-key limit reached: key has maxPerKey tasks admitted
	// <nil>
}

func ExampleSpawner_Shutdown() {
	s, err := spawn.New(spawn.WithMaxConcurrent(2))
	if err != nil {
		panic(err)
	}
	var done atomic.Int64
	for range 10 {
		_ = s.TryGo(func(context.Context) error { done.Add(1); return nil })
	}
	// Shutdown refuses new work, lets admitted work finish and returns
	// once no goroutine of the spawner is left.
	if err := s.Shutdown(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println(done.Load(), s.TryGo(func(context.Context) error { return nil }))
	// Output: 10 spawn: spawner is shut down
}

func ExampleNewGroup() {
	s, err := spawn.New(spawn.WithMaxConcurrent(4))
	if err != nil {
		panic(err)
	}
	defer func() {
		if err := s.Shutdown(context.Background()); err != nil {
			panic(err)
		}
	}()

	// One request's batch on the shared spawner: Wait waits for this
	// batch only and returns its first error (spawn.WithCancelOnError
	// would also cancel ctx at that error; spawn.WithAllErrors would
	// return every error).
	g, ctx := spawn.NewGroup(context.Background(), s)
	for _, id := range []int{1, 2, 3} {
		if err := g.Go(func(context.Context) error {
			if id == 2 {
				return fmt.Errorf("item %d: invalid", id)
			}
			return nil
		}); err != nil {
			fmt.Println("not admitted:", err)
			break
		}
	}
	fmt.Println(g.Wait())
	fmt.Println(ctx.Err())
	// Output:
	// item 2: invalid
	// context canceled
}

func ExampleNewCoalescer() {
	// At most 1024 distinct keys are being computed at once.
	c, err := spawn.NewCoalescer[string](1024)
	if err != nil {
		panic(err)
	}
	var loads atomic.Int64
	load := func(context.Context) (string, error) {
		loads.Add(1)
		return "profile of user 7", nil
	}
	// Concurrent identical requests share one execution of load; here
	// the calls are sequential, so each runs it.
	for range 2 {
		v, shared, err := c.Do(context.Background(), "user:7", load)
		if err != nil {
			panic(err)
		}
		fmt.Println(v, shared)
	}
	fmt.Println(loads.Load(), "loads")
	// Output:
	// profile of user 7 false
	// profile of user 7 false
	// 2 loads
}
