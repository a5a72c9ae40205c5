package spawn_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/garrison-go/garrison/spawn"
)

func ExampleWithAdaptiveLimit() {
	// Between 4 and 256 tasks run at once, as many as the dependency
	// serves without slowing down; 256 is also the hard cap on workers.
	s, err := spawn.New(spawn.WithAdaptiveLimit(4, 256), spawn.WithQueue(512),
		spawn.WithTaskTimeout(time.Second)) // a timed-out task backs the limit off
	if err != nil {
		panic(err)
	}
	defer s.Shutdown(context.Background())

	ctx := context.Background()
	for range 100 {
		if err := s.Go(ctx, func(ctx context.Context) error {
			return nil // call the dependency with ctx
		}); err != nil {
			fmt.Println("rejected:", err)
		}
	}
	if err := s.Wait(ctx); err != nil {
		panic(err)
	}
	st := s.Stats()
	fmt.Println(st.Succeeded, st.Adaptive.Algorithm, st.Adaptive.Limit >= 4)
	// Output: 100 gradient2 true
}

func ExampleWithQueueTarget() {
	// A task queued more than 5ms while the queue has stood above 5ms for
	// 100ms is dropped with ErrQueueTimeout, and the queue serves the
	// newest first until it drains.
	s, err := spawn.New(spawn.WithMaxConcurrent(8), spawn.WithQueue(1024),
		spawn.WithQueueTarget(5*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		panic(err)
	}
	defer s.Shutdown(context.Background())

	// Critical work keeps a reserved share of the capacity; sheddable
	// work is refused first.
	ctx := spawn.WithCriticality(context.Background(), spawn.Critical)
	h, err := spawn.Submit(ctx, s, func(context.Context) (string, error) {
		return "served", nil
	})
	if err != nil {
		panic(err) // spawn.ErrSaturated, spawn.ErrClosed...
	}
	v, err := h.Wait(ctx)
	switch {
	case errors.Is(err, spawn.ErrQueueTimeout):
		fmt.Println("shed: the caller would have given up")
	case err != nil:
		fmt.Println("failed:", err)
	default:
		fmt.Println(v, s.Stats().Shed)
	}
	// Output: served 0
}
