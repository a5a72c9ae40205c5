package lockorder_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/garrison-go/garrison/lockorder"
)

var accountClass = lockorder.NewClass("account", 2)

type Account struct {
	mu      lockorder.Mutex // was: sync.Mutex
	balance int
}

func NewAccount(balance int) *Account {
	a := &Account{balance: balance}
	a.mu.SetClass(accountClass)
	return a
}

// Transfer locks both accounts in LockAll's global order, so two opposite
// transfers running at once cannot deadlock each other.
func Transfer(from, to *Account, amount int) {
	lockorder.LockAll(&from.mu, &to.mu)
	defer lockorder.UnlockAll(&from.mu, &to.mu)
	from.balance -= amount
	to.balance += amount
}

func ExampleLockAll() {
	a, b := NewAccount(100), NewAccount(100)
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() { Transfer(a, b, 1) })
		wg.Go(func() { Transfer(b, a, 2) })
	}
	wg.Wait()
	fmt.Println(a.balance, b.balance)
	// Output: 200 0
}

func ExampleTimedMutex_LockContext() {
	var mu lockorder.TimedMutex
	mu.Lock() // held elsewhere for too long

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	done := make(chan error)
	go func() { done <- mu.LockContext(ctx) }()
	err := <-done
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	mu.Unlock()
	// Output: true
}

func ExampleTimedMutex_LockTimeout() {
	var mu lockorder.TimedMutex
	if err := mu.LockTimeout(time.Second); err != nil {
		fmt.Println("busy:", err)
		return
	}
	defer mu.Unlock()
	fmt.Println("locked")
	// Output: locked
}

// A handler that logs instead of panicking, e.g. in a staging build with
// -tags lockorder. In production builds it is never called.
func ExampleSetHandler() {
	restore := lockorder.SetHandler(func(err *lockorder.OrderError) {
		fmt.Println(err) // the headline, then each edge with its stack
	})
	defer restore()

	a, b := lockorder.NewClass("cache", 0), lockorder.NewClass("store", 0)
	var cache, store lockorder.Mutex
	cache.SetClass(a)
	store.SetClass(b)
	var hits, writes int

	cache.Lock()
	store.Lock() // learns cache -> store
	writes++
	store.Unlock()
	cache.Unlock()

	store.Lock()
	cache.Lock() // store -> cache closes the cycle: reported before locking
	hits++
	cache.Unlock()
	store.Unlock()
}

func ExampleEnabled() {
	if lockorder.Enabled() {
		// A checking build (-race or -tags lockorder): e.g. start the
		// watchdog in tests.
		stop, err := lockorder.SetWatchdog(time.Second, func(r lockorder.Report) { fmt.Println(r) })
		if err == nil {
			defer stop()
		}
	}
	fmt.Println("ok")
	// Output: ok
}
