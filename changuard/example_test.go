package changuard_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/garrison-go/garrison/changuard"
)

func ExampleChan() {
	ctx := context.Background()
	jobs, err := changuard.NewChan[string](2)
	if err != nil {
		panic(err)
	}
	_ = jobs.Send(ctx, "a")
	_ = jobs.Send(ctx, "b")

	// A full Chan makes Send wait; here the ctx gives up after 10ms.
	tctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	fmt.Println("full:", errors.Is(jobs.Send(tctx, "c"), context.DeadlineExceeded))

	if err := jobs.Close(); err != nil {
		panic(err)
	}
	fmt.Println("second Close:", jobs.Close())

	// Sending on a closed Chan does not panic: the value comes back.
	var closed *changuard.ClosedError[string]
	if errors.As(jobs.Send(ctx, "d"), &closed) {
		fmt.Println("handed back:", closed.Value)
	}

	// Receivers get what was buffered, then ErrClosed.
	for v := range jobs.All(ctx) {
		fmt.Println("got", v)
	}
	_, err = jobs.Recv(ctx)
	fmt.Println(err)
	s := jobs.Stats()
	fmt.Println("sent", s.Sent, "received", s.Received, "returned", s.Returned, "canceled", s.Canceled)
	// Output:
	// full: true
	// second Close: changuard: chan closed
	// handed back: d
	// got a
	// got b
	// changuard: chan closed
	// sent 2 received 2 returned 1 canceled 1
}

func ExampleWithOverflow() {
	var dropped []int
	latest, err := changuard.NewChan(2, changuard.WithOverflow(changuard.DropOldest, func(v int) {
		dropped = append(dropped, v)
	}))
	if err != nil {
		panic(err)
	}
	for i := 1; i <= 5; i++ {
		_ = latest.Send(context.Background(), i) // never waits under DropOldest
	}
	fmt.Println("TrySend:", latest.TrySend(6)) // TrySend never applies the policy
	latest.Close()
	fmt.Println("kept:", latest.Drain())
	fmt.Println("dropped:", dropped)
	// Output:
	// TrySend: changuard: buffer full
	// kept: [4 5]
	// dropped: [1 2 3]
}

type account struct{ balance int }

// Two requests each add to a balance with read-modify-write. With a plain
// struct, an unlucky interleaving (shown here step by step, as the
// scheduler can produce it) loses one of them; through a Guarded, each
// read-modify-write is one step, whatever the interleaving.
func ExampleGuarded_lostUpdate() {
	var plain account
	plain.balance = 100
	// Request A and request B both read the balance...
	readA := plain.balance
	readB := plain.balance
	// ...then both write back their own result.
	plain.balance = readA + 10
	plain.balance = readB + 20
	fmt.Println("plain struct:", plain.balance) // A's deposit is lost

	guarded := changuard.NewGuarded(account{balance: 100})
	var wg sync.WaitGroup
	for _, amount := range []int{10, 20} {
		wg.Go(func() {
			guarded.With(func(a *account) { a.balance += amount })
		})
	}
	wg.Wait()
	guarded.Read(func(a account) { fmt.Println("guarded:", a.balance) })
	// Output:
	// plain struct: 120
	// guarded: 130
}

func ExampleGuarded_WithContext() {
	g := changuard.NewGuarded(map[string]int{})
	held := make(chan struct{})
	release := make(chan struct{})
	go g.With(func(*map[string]int) {
		close(held)
		<-release // a slow holder
	})
	<-held

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := g.WithContext(ctx, func(m *map[string]int) { (*m)["x"]++ })
	fmt.Println("gave up:", errors.Is(err, context.DeadlineExceeded))
	close(release)

	hits := changuard.WithResult(g, func(m *map[string]int) int {
		(*m)["x"]++
		return (*m)["x"]
	})
	fmt.Println("hits:", hits)
	// Output:
	// gave up: true
	// hits: 1
}

func ExampleSnapshot() {
	type config struct{ limit int }
	cfg := changuard.NewSnapshot(config{limit: 10})

	c, ver := cfg.Load()
	changed := cfg.Changed(ver)
	fmt.Println("version", ver, "limit", c.limit)

	done := make(chan struct{})
	go func() {
		defer close(done)
		<-changed // closed by the writer of the next version
		c, ver := cfg.Load()
		fmt.Println("woken at version", ver, "limit", c.limit)
	}()
	_, _ = cfg.Update(func(old config) (config, error) {
		old.limit *= 2 // old is a copy: modify it and return it
		return old, nil
	})
	<-done

	_, ok := cfg.CompareAndSwap(ver, config{limit: 1})
	fmt.Println("stale CompareAndSwap:", ok)
	// Output:
	// version 0 limit 10
	// woken at version 1 limit 20
	// stale CompareAndSwap: false
}

func ExampleOwner() {
	ctx := context.Background()
	sessions, err := changuard.NewOwner(map[string]int{}, 64)
	if err != nil {
		panic(err)
	}
	// Post does not wait; the function runs later on the owner goroutine.
	_ = sessions.Post(func(m *map[string]int) { (*m)["alice"]++ })
	// Call waits for the result, bounded by ctx.
	n, err := changuard.Call(ctx, sessions, func(m *map[string]int) (int, error) {
		(*m)["alice"]++
		return len(*m), nil
	})
	fmt.Println(n, err)

	// A panic comes back as an error; the owner keeps running.
	_, err = changuard.Call(ctx, sessions, func(*map[string]int) (int, error) { panic("bug") })
	fmt.Println(errors.Is(err, changuard.ErrPanic))

	// Shutdown runs what is queued, then stops; Final is the value left.
	if err := sessions.Shutdown(ctx); err != nil {
		panic(err)
	}
	final, err := sessions.Final()
	fmt.Println(final["alice"], err)
	fmt.Println(sessions.Post(func(*map[string]int) {}))
	// Output:
	// 1 <nil>
	// true
	// 2 <nil>
	// changuard: owner stopped
}
