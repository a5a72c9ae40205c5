package lockorder

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/garrison-go/garrison/internal/ctxerr"
)

// orderedLocker is implemented by this package's mutexes (and RLocker).
type orderedLocker interface {
	sync.Locker
	orderKey() (rank int, class uint64, addr uintptr)
	lockInGroup(group uint64)
}

// ErrDuplicateLock is returned by LockAllContext when the same lock appears
// twice in its list (LockAll panics with the same message): taking it twice
// would deadlock.
var ErrDuplicateLock = errors.New("lockorder: LockAll: the same lock appears twice")

// ErrNotBounded is returned by LockAllContext for a lock whose wait cannot
// be bounded: it has neither a LockContext(ctx) error method nor a TryLock
// method. Nothing is locked.
var ErrNotBounded = errors.New("lockorder: LockAllContext: a lock has neither LockContext nor TryLock, so its wait cannot be bounded")

type item struct {
	l     sync.Locker
	o     orderedLocker
	rank  int
	class uint64
	addr  uintptr
}

// sortLockers returns ms in LockAll's global order, or ErrDuplicateLock.
func sortLockers(ms []sync.Locker) ([]item, error) {
	items := make([]item, len(ms))
	for i, l := range ms {
		it := item{l: l}
		if o, ok := l.(orderedLocker); ok {
			it.o = o
			it.rank, it.class, it.addr = o.orderKey()
		} else {
			it.class = ^uint64(0)
			if v := reflect.ValueOf(l); v.Kind() == reflect.Pointer {
				it.addr = v.Pointer()
			}
		}
		items[i] = it
	}
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.class, b.class), cmp.Compare(a.addr, b.addr))
	})
	for i := 1; i < len(items); i++ {
		if items[i].addr != 0 && items[i].addr == items[i-1].addr {
			return nil, ErrDuplicateLock
		}
	}
	return items, nil
}

// LockAll locks every lock in ms, in one global order: ascending class
// rank, then class, then address (a mutex's address never changes). Two
// goroutines calling LockAll on overlapping sets therefore cannot deadlock
// each other, whatever order they list the locks in: this is the fix for
// "lock every item of a map". It blocks until all are held; release them
// with UnlockAll or one by one.
//
// Locks of the same class may be nested only through LockAll. Locks from
// other packages are taken after this package's locks of rank 0 in address
// order (or the given order if they are not pointers). LockAll panics if
// the same lock appears twice, which would deadlock.
//
// The order is the same in production and checking builds (SetClass is
// recorded in both), so code that passes the checker keeps its order.
func LockAll(ms ...sync.Locker) {
	items, err := sortLockers(ms)
	if err != nil {
		panic(err.Error())
	}
	group := newGroup()
	for _, it := range items {
		if it.o != nil {
			it.o.lockInGroup(group)
		} else {
			it.l.Lock()
		}
	}
}

// contextLocker is a lock whose wait LockAllContext can bound directly
// (TimedMutex, or another package's lock with the same method).
type contextLocker interface {
	LockContext(ctx context.Context) error
}

// LockAllContext is LockAll with a bound: it locks every lock in ms in
// LockAll's global order, or, if ctx ends first, unlocks the ones it took
// and returns an error matching ctx.Err() and context.Cause(ctx). A nil
// ctx is an error matching ctxerr's ErrNilContext (the one every garrison
// package re-exports), an already-done ctx fails at once without locking
// anything, and so do ErrDuplicateLock and ErrNotBounded.
//
// A TimedMutex, or any lock with a LockContext(ctx) error method, waits in
// its own queue. Mutex and RWMutex (whose sync counterparts cannot be
// interrupted) and other locks with a TryLock method are polled: a few
// yields, then TryLock at growing intervals up to a millisecond, so a wait
// costs some latency and wake-ups but no goroutine. The checker treats
// the set like LockAll's: order violations against locks already held are
// reported before waiting, nesting within the set is not.
func LockAllContext(ctx context.Context, ms ...sync.Locker) error {
	if err := ctxerr.Check(ctx); err != nil {
		return fmt.Errorf("lockorder: LockAllContext: %w", err)
	}
	items, err := sortLockers(ms)
	if err != nil {
		return err
	}
	for _, it := range items {
		if _, ok := it.l.(contextLocker); ok || it.o != nil {
			continue
		}
		if _, ok := it.l.(interface{ TryLock() bool }); !ok {
			return fmt.Errorf("%w: %T", ErrNotBounded, it.l)
		}
	}
	group := newGroup()
	restore := joinGroup(group)
	defer restore()
	for i, it := range items {
		var err error
		switch l := it.l.(type) {
		case contextLocker:
			err = l.LockContext(ctx)
		case ctxOrderedLocker:
			err = l.lockContext(ctx, group)
		case interface{ TryLock() bool }:
			err = pollLock(ctx, l.TryLock)
		}
		if err != nil {
			for j := i - 1; j >= 0; j-- {
				items[j].l.Unlock()
			}
			return fmt.Errorf("lockorder: LockAllContext: %d of %d locks taken when the wait ended: %w", i, len(items), err)
		}
	}
	return nil
}

// ctxOrderedLocker is implemented by Mutex, RWMutex and RLocker: an
// order-checked acquisition bounded by ctx.
type ctxOrderedLocker interface {
	lockContext(ctx context.Context, group uint64) error
}

// pollLock calls try until it succeeds or ctx ends: a few yields first
// (critical sections are usually short), then sleeps that double from
// 10µs up to 1ms.
func pollLock(ctx context.Context, try func() bool) error {
	if try() {
		return nil
	}
	for range 4 {
		runtime.Gosched()
		if try() {
			return nil
		}
	}
	d := 10 * time.Microsecond
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctxerr.Err(ctx)
		case <-timer.C:
		}
		if try() {
			return nil
		}
		d = min(2*d, time.Millisecond)
		timer.Reset(d)
	}
}

// UnlockAll unlocks every lock in ms, in reverse order.
func UnlockAll(ms ...sync.Locker) {
	for i := len(ms) - 1; i >= 0; i-- {
		ms[i].Unlock()
	}
}
