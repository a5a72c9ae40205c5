package timeout_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/garrison-go/garrison/timeout"
)

func ExampleRun() {
	err := timeout.Run(context.Background(), 10*time.Millisecond, func(ctx context.Context) error {
		<-ctx.Done() // a slow query that honours its context
		return ctx.Err()
	}, timeout.Named("users.get"))

	var te *timeout.Error
	if errors.As(err, &te) {
		fmt.Println(te.Op, te.Budget, errors.Is(err, context.DeadlineExceeded))
	}
	// Output: users.get 10ms true
}

func ExampleDo() {
	name, err := timeout.Do(context.Background(), time.Second, func(ctx context.Context) (string, error) {
		return "gopher", nil
	}, timeout.Named("users.name"))
	fmt.Println(name, err)
	// Output: gopher <nil>
}

func ExampleDetacher() {
	d, err := timeout.NewDetacher(100)
	if err != nil {
		panic(err)
	}
	release := make(chan struct{})
	legacy := func(context.Context) error {
		<-release // ignores its context
		return nil
	}

	err = d.Run(context.Background(), 10*time.Millisecond, legacy, timeout.Named("legacy.call"))
	var te *timeout.Error
	fmt.Println(errors.As(err, &te), te.Op)
	fmt.Println("abandoned:", d.Abandoned())

	close(release) // the abandoned call returns and frees its slot
	// Shutdown refuses new calls and waits for every fn, abandoned or not.
	if err := d.Shutdown(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println("abandoned:", d.Abandoned())
	fmt.Println(errors.Is(d.Run(context.Background(), time.Second, legacy), timeout.ErrClosed))
	// Output:
	// true legacy.call
	// abandoned: 1
	// abandoned: 0
	// true
}

func ExampleSub() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()

	calls := 0
	flaky := func(ctx context.Context) error {
		if calls++; calls < 3 {
			return errors.New("503 service unavailable")
		}
		return nil
	}
	for {
		// Each attempt gets half of what is left, and at least 50ms.
		actx, acancel, err := timeout.Sub(ctx, 0.5, 50*time.Millisecond, timeout.Named("fetch"))
		if err != nil {
			fmt.Println("giving up:", err)
			return
		}
		err = flaky(actx)
		acancel()
		if err == nil {
			break
		}
	}
	fmt.Println("succeeded after", calls, "attempts")
	// Output: succeeded after 3 attempts
}

func ExampleWatchdog() {
	reported := make(chan timeout.Stuck, 1)
	w, err := timeout.NewWatchdog(
		timeout.WithStallAfter(5*time.Millisecond),
		timeout.WithCancelStalled(true),
		timeout.WithOnStuck(func(s timeout.Stuck) { reported <- s }),
	)
	if err != nil {
		panic(err)
	}
	defer w.Close()

	ctx, tok := w.Track(context.Background(), "thumbnail.resize")
	defer tok.Done()
	<-ctx.Done() // the work never calls tok.Beat

	s := <-reported
	fmt.Println(s.Name, s.SinceBeat >= 5*time.Millisecond)
	fmt.Println(errors.Is(context.Cause(ctx), timeout.ErrStalled))
	// Output:
	// thumbnail.resize true
	// true
}
