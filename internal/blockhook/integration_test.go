//go:build lockorder || race

package blockhook_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/garrison-go/garrison/changuard"
	"github.com/garrison-go/garrison/lockorder"
	"github.com/garrison-go/garrison/spawn"
)

// reports collects lockorder's reports for one test.
func reports(t *testing.T) func() []*lockorder.OrderError {
	var mu sync.Mutex
	var got []*lockorder.OrderError
	t.Cleanup(lockorder.SetHandler(func(e *lockorder.OrderError) {
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
	}))
	return func() []*lockorder.OrderError {
		mu.Lock()
		defer mu.Unlock()
		return append([]*lockorder.OrderError(nil), got...)
	}
}

// TestChanSendUnderLockTheReceiverNeeds: the receiver locks mu before it
// receives; a sender holding mu waits for room. Reported at the Send that
// would block, before it blocks (its ctx then ends the wait).
func TestChanSendUnderLockTheReceiverNeeds(t *testing.T) {
	got := reports(t)
	var mu lockorder.Mutex
	n := 0
	ch, err := changuard.NewChan[int](1)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Send(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		mu.Lock()
		n++
		mu.Unlock()
		if _, err := ch.Recv(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	<-done
	if err := ch.Send(t.Context(), 2); err != nil { // refill: no lock held
		t.Fatal(err)
	}
	mu.Lock()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	err = ch.Send(ctx, 3) // full: would block holding mu
	cancel()
	mu.Unlock()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want the ctx error", err)
	}
	if r := got(); len(r) != 1 || !errors.Is(r[0], lockorder.ErrBlocking) {
		t.Fatalf("reports = %v, want one ErrBlocking", r)
	}
}

// TestSpawnerWaitUnderLockATaskNeeds: a task locks mu; Wait holding mu
// would wait for it.
func TestSpawnerWaitUnderLockATaskNeeds(t *testing.T) {
	got := reports(t)
	var mu lockorder.Mutex
	n := 0
	s, err := spawn.New()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	if err := s.Go(t.Context(), func(context.Context) error {
		mu.Lock()
		n++
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	err = s.Wait(t.Context()) // nothing pending: returns, but reported
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if r := got(); len(r) != 1 || !errors.Is(r[0], lockorder.ErrBlocking) {
		t.Fatalf("reports = %v, want one ErrBlocking", r)
	}
}

// TestOwnerCallUnderLockTheFunctionNeeds: f locks mu on the owner
// goroutine; a Call holding mu waits for f.
func TestOwnerCallUnderLockTheFunctionNeeds(t *testing.T) {
	got := reports(t)
	var mu lockorder.Mutex
	o, err := changuard.NewOwner(0, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := o.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	incr := func(v *int) (int, error) {
		mu.Lock()
		*v++
		mu.Unlock()
		return *v, nil
	}
	if _, err := changuard.Call(t.Context(), o, incr); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	_, err = changuard.Call(t.Context(), o, func(v *int) (int, error) { return *v, nil })
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if r := got(); len(r) != 1 || !errors.Is(r[0], lockorder.ErrBlocking) {
		t.Fatalf("reports = %v, want one ErrBlocking", r)
	}
}
