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

// A WaitGroup whose Wait is checked: holding mu across Wait while a worker
// needs mu is reported (in checking builds) before Wait blocks.
func ExampleWaitGroup() {
	var mu lockorder.Mutex
	var wg lockorder.WaitGroup
	total := 0
	for i := range 3 {
		wg.Go(func() {
			mu.Lock()
			total += i
			mu.Unlock()
		})
	}
	wg.Wait() // not under mu: the workers need it
	mu.Lock()
	fmt.Println(total)
	mu.Unlock()
	// Output: 3
}

func ExampleNewCond() {
	var mu lockorder.Mutex
	cond := lockorder.NewCond(&mu)
	ready := false
	go func() {
		mu.Lock()
		ready = true
		cond.Signal()
		mu.Unlock()
	}()
	mu.Lock()
	for !ready {
		cond.Wait()
	}
	mu.Unlock()
	fmt.Println("ready")
	// Output: ready
}

func ExampleOnce() {
	var once lockorder.Once
	for range 3 {
		once.Do(func() { fmt.Println("init") })
	}
	// Output: init
}

// Blocking and Unblocking annotate a raw channel, so that the checker sees
// the wait and the goroutine that ends it.
func ExampleBlocking() {
	results := make(chan int)
	go func() {
		lockorder.Unblocking(results)
		results <- 42
	}()
	lockorder.Blocking(results)
	fmt.Println(<-results)
	// Output: 42
}

func ExampleLockAllContext() {
	var a, b lockorder.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := lockorder.LockAllContext(ctx, &a, &b); err != nil {
		fmt.Println("gave up:", err)
		return
	}
	defer lockorder.UnlockAll(&a, &b)
	fmt.Println("both held")
	// Output: both held
}

// printT stands in for a *testing.T in this example.
type printT struct{}

func (printT) Helper()           {}
func (printT) Error(args ...any) { fmt.Println(args...) }

func ExampleVerifyNone() {
	var mu lockorder.Mutex
	hits := 0
	mu.Lock()
	hits++
	mu.Unlock()
	lockorder.VerifyNone(printT{}) // in a test: defer lockorder.VerifyNone(t)
	fmt.Println("no lock left held after", hits, "hit")
	// Output: no lock left held after 1 hit
}
