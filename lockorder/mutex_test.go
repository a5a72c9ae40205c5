package lockorder

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEnabledMatchesBuild(t *testing.T) {
	require.Equal(t, checkingBuild, Enabled())
	require.Equal(t, checkingBuild, Stats().Enabled)
}

func TestZeroValuesWork(t *testing.T) {
	var m Mutex
	m.Lock()
	require.False(t, m.TryLock())
	m.Unlock()
	require.True(t, m.TryLock())
	m.Unlock()

	var rw RWMutex
	rw.RLock()
	require.True(t, rw.TryRLock())
	require.False(t, rw.TryLock())
	rw.RUnlock()
	rw.RUnlock()
	rw.Lock()
	require.False(t, rw.TryRLock())
	rw.Unlock()

	var tm TimedMutex
	tm.Lock()
	require.False(t, tm.TryLock())
	tm.Unlock()
	require.True(t, tm.TryLock())
	tm.Unlock()
}

func TestClassAccessors(t *testing.T) {
	c := NewClass("ledger", 4)
	require.Equal(t, "ledger", c.Name())
	require.Equal(t, 4, c.Rank())
	require.Equal(t, "ledger (rank 4)", c.String())
	require.Equal(t, "plain", NewClass("plain", 0).String())
	require.NotEmpty(t, NewClass("", 0).Name())
}

// TestMutualExclusionStress checks every primitive under many goroutines:
// a plain counter guarded by the lock must end exact (and -race sees any
// overlap).
func TestMutualExclusionStress(t *testing.T) {
	const goroutines = 16
	iters := 500
	if testing.Short() {
		iters = 100
	}
	var m Mutex
	var rw RWMutex
	var tm TimedMutex
	var nm, nrw, ntm, reads int
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range iters {
				m.Lock()
				nm++
				m.Unlock()
				if (g+i)%4 == 0 {
					rw.Lock()
					nrw++
					rw.Unlock()
				} else {
					rw.RLock()
					_ = nrw
					rw.RUnlock()
					m.Lock()
					reads++
					m.Unlock()
				}
				tm.Lock()
				ntm++
				tm.Unlock()
			}
		})
	}
	wg.Wait()
	require.Equal(t, goroutines*iters, nm)
	require.Equal(t, goroutines*iters, nrw+reads)
	require.Equal(t, goroutines*iters, ntm)
	require.Equal(t, TimedStats{}, zeroCounters(tm.Stats()))
}

// zeroCounters keeps the gauges of a TimedStats: after a run they must be
// back at zero.
func zeroCounters(s TimedStats) TimedStats {
	s.Contended, s.Abandoned = 0, 0
	return s
}

// TestLockAllMutualExclusion: goroutines lock random overlapping sets in
// random order; LockAll's global order means none deadlocks, and every
// increment is done under all of its locks.
func TestLockAllMutualExclusion(t *testing.T) {
	const n, goroutines = 32, 8
	rounds := 200
	if testing.Short() {
		rounds = 50
	}
	acct := NewClass("stress.account", 1)
	ms := make([]Mutex, n)
	for i := range ms {
		ms[i].SetClass(acct)
	}
	counts := make([]int, n)
	var wg sync.WaitGroup
	var total [goroutines]int
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			for range rounds {
				idx := rng.Perm(n)[:1+rng.IntN(4)]
				lockers := make([]sync.Locker, len(idx))
				for i, k := range idx {
					lockers[i] = &ms[k]
				}
				LockAll(lockers...)
				for _, k := range idx {
					counts[k]++
				}
				total[g] += len(idx)
				UnlockAll(lockers...)
			}
		})
	}
	wg.Wait()
	want, got := 0, 0
	for _, v := range total {
		want += v
	}
	for _, v := range counts {
		got += v
	}
	require.Equal(t, want, got)
}

func TestLockAllOrderIsRankThenClassThenAddress(t *testing.T) {
	hi, lo := NewClass("order.hi", 9), NewClass("order.lo", 2)
	var a, b, c Mutex
	a.SetClass(hi)
	b.SetClass(lo)
	var plain sync.Mutex
	var rw RWMutex
	var tm TimedMutex
	tm.SetClass(lo)
	LockAll(&a, &plain, &b, rw.RLocker(), &tm, &c)
	// All held: none can be taken.
	require.False(t, a.TryLock())
	require.False(t, b.TryLock())
	require.False(t, c.TryLock())
	require.False(t, plain.TryLock())
	require.False(t, rw.TryLock())
	require.False(t, tm.TryLock())
	UnlockAll(&a, &plain, &b, rw.RLocker(), &tm, &c)
	require.True(t, plain.TryLock())
	plain.Unlock()

	keys := func(ls ...orderedLocker) [][3]uint64 {
		var out [][3]uint64
		for _, l := range ls {
			r, id, addr := l.orderKey()
			out = append(out, [3]uint64{uint64(r), id, uint64(addr)})
		}
		return out
	}
	k := keys(&a, &b, &tm, &c)
	require.Equal(t, uint64(9), k[0][0])
	require.Equal(t, uint64(2), k[1][0])
	require.Equal(t, k[1][1], k[2][1], "same class, ordered by address")
	require.Zero(t, k[3][0])
	require.Zero(t, k[3][1], "a mutex without a class sorts by address only")
}

// valueLocker is a foreign sync.Locker that is not a pointer; its Lock
// records whether probe was already held.
type valueLocker struct {
	probe      *Mutex
	heldBefore *bool
}

func (v valueLocker) Lock() {
	*v.heldBefore = !v.probe.TryLock()
	if !*v.heldBefore {
		v.probe.Unlock()
	}
}

func (v valueLocker) Unlock() {}

// TestLockAllTakesForeignValueLockersLast: as documented, locks from other
// packages come after this package's rank-0 locks even when they are not
// pointers.
func TestLockAllTakesForeignValueLockersLast(t *testing.T) {
	var m Mutex
	var heldBefore bool
	v := valueLocker{&m, &heldBefore}
	LockAll(v, &m)
	require.True(t, heldBefore, "the lockorder Mutex was taken first")
	UnlockAll(v, &m)
}

func TestLockAllRejectsDuplicates(t *testing.T) {
	var m Mutex
	require.PanicsWithValue(t, "lockorder: LockAll: the same lock appears twice", func() { LockAll(&m, &m) })
	require.True(t, m.TryLock(), "nothing was locked")
	m.Unlock()
}

func TestUnlockFromOtherGoroutineBothBuilds(t *testing.T) {
	var m Mutex
	var rw RWMutex
	var tm TimedMutex
	locked := make(chan struct{})
	go func() {
		m.Lock()
		rw.RLock()
		tm.Lock()
		close(locked)
	}()
	<-locked
	m.Unlock()
	rw.RUnlock()
	tm.Unlock()
	require.True(t, m.TryLock())
	require.True(t, rw.TryLock())
	require.True(t, tm.TryLock())
	m.Unlock()
	rw.Unlock()
	tm.Unlock()
}
