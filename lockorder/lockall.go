package lockorder

import (
	"cmp"
	"reflect"
	"slices"
	"sync"
)

// orderedLocker is implemented by this package's mutexes (and RLocker).
type orderedLocker interface {
	sync.Locker
	orderKey() (rank int, class uint64, addr uintptr)
	lockInGroup(group uint64)
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
	type item struct {
		l     sync.Locker
		o     orderedLocker
		rank  int
		class uint64
		addr  uintptr
	}
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
			panic("lockorder: LockAll: the same lock appears twice")
		}
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

// UnlockAll unlocks every lock in ms, in reverse order.
func UnlockAll(ms ...sync.Locker) {
	for i := len(ms) - 1; i >= 0; i-- {
		ms[i].Unlock()
	}
}
