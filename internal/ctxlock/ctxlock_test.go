package ctxlock

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDispatch checks each hand-off rule on a hand-built queue.
func TestDispatch(t *testing.T) {
	mk := func(write, handoff bool) *waiter {
		return &waiter{write: write, handoff: handoff, ready: make(chan struct{})}
	}
	closed := func(w *waiter) bool {
		select {
		case <-w.ready:
			return true
		default:
			return false
		}
	}

	t.Run("writer is woken to compete, lock freed", func(t *testing.T) {
		var l RW
		w := mk(true, false)
		l.pushBack(w)
		l.state.Store(wLocked | queued)
		l.dispatch(true)
		assert.True(t, closed(w) && w.woken && !w.granted)
		assert.Equal(t, uint64(0), l.state.Load(), "free, and queued cleared with the queue")
	})
	t.Run("a writer marked for hand-off gets the lock handed over", func(t *testing.T) {
		var l RW
		a, b := mk(true, true), mk(true, false)
		l.pushBack(a)
		l.pushBack(b)
		l.state.Store(wLocked | queued)
		l.dispatch(true)
		assert.True(t, closed(a) && a.granted)
		assert.False(t, closed(b))
		assert.Equal(t, uint64(wLocked|queued), l.state.Load(), "never free in between: no barging")
		assert.Equal(t, 1, l.waiting)
	})
	t.Run("readers at the head are granted together", func(t *testing.T) {
		var l RW
		r1, r2, w := mk(false, false), mk(false, false), mk(true, false)
		l.pushBack(r1)
		l.pushBack(r2)
		l.pushBack(w)
		l.state.Store(wLocked | queued)
		l.dispatch(true)
		assert.True(t, r1.granted && r2.granted && closed(r1) && closed(r2))
		assert.False(t, closed(w))
		assert.Equal(t, uint64(2*rOne|queued), l.state.Load())
		// The writer waits for both readers.
		l.RUnlock()
		assert.False(t, closed(w))
		l.RUnlock()
		assert.True(t, closed(w) && w.woken)
		assert.Equal(t, uint64(0), l.state.Load())
	})
	t.Run("busy lock: nothing happens without a release", func(t *testing.T) {
		var l RW
		w := mk(true, true)
		l.pushBack(w)
		l.state.Store(wLocked | queued)
		l.dispatch(false)
		assert.False(t, closed(w))
	})
}

// TestWokenWriterLosesOnce makes a woken writer lose the lock to a barger,
// then checks that it goes back to the front of the queue and is handed
// the lock directly at the next release.
func TestWokenWriterLosesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l RW
		var order []string
		l.Lock(false)
		var wg sync.WaitGroup
		wg.Go(func() { l.Lock(false); order = append(order, "A"); l.Unlock() })
		synctest.Wait()
		a := l.head
		require.NotNil(t, a)

		// Wake A as dispatch would, but take the lock back before A runs:
		// the barging a running writer can do.
		l.mu.Lock()
		l.remove(a)
		a.woken = true
		l.state.Store(wLocked)
		close(a.ready)
		l.mu.Unlock()
		synctest.Wait()
		a2 := l.head
		require.NotNil(t, a2)
		assert.True(t, a2.handoff, "A re-queued for hand-off")

		wg.Go(func() { l.Lock(false); order = append(order, "B"); l.Unlock() })
		synctest.Wait()
		assert.Equal(t, 2, l.Stats().Waiting)
		require.True(t, l.Unlock())
		synctest.Wait()
		l.mu.Lock()
		assert.True(t, a2.granted && !a2.woken, "the lock was handed to A, not left free")
		l.mu.Unlock()
		wg.Wait()
		assert.Equal(t, []string{"A", "B"}, order)
		assert.Equal(t, uint64(2), l.Stats().Contended, "a re-queue is not a new contention")
	})
}

// TestFIFOHandsOffInOrder queues writers one by one under FIFO and checks
// they get the lock in queue order, and that TryLock does not overtake them.
func TestFIFOHandsOffInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l RW
		l.Lock(true)
		var order []int
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				l.Lock(true)
				order = append(order, i)
				require.True(t, l.Unlock())
			})
			synctest.Wait()
		}
		assert.False(t, l.TryLock(), "TryLock must not pass queued waiters")
		require.True(t, l.Unlock())
		wg.Wait()
		assert.Equal(t, []int{0, 1, 2, 3, 4}, order)
		assert.False(t, l.Stats().Locked)
	})
}

func TestUnlockOfUnlockedReportsFalse(t *testing.T) {
	var l RW
	assert.False(t, l.Unlock())
	l.Lock(false)
	assert.True(t, l.Unlock())
	assert.False(t, l.Unlock())
}

// TestLockWaitGivesUp checks that done and expired both end a wait with the
// lock not held, and that the queue is left consistent.
func TestLockWaitGivesUp(t *testing.T) {
	for _, fifo := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			var l RW
			l.Lock(fifo)
			done := make(chan struct{})
			var got atomic.Int32
			var wg sync.WaitGroup
			wg.Go(func() {
				if l.LockWait(fifo, done, nil) {
					got.Store(1)
					l.Unlock()
				}
			})
			wg.Go(func() {
				timer := time.NewTimer(time.Second)
				defer timer.Stop()
				if l.LockWait(fifo, nil, timer.C) {
					got.Store(2)
					l.Unlock()
				}
			})
			synctest.Wait()
			assert.Equal(t, 2, l.Stats().Waiting)
			// wg.Wait blocks the bubble durably, so its clock jumps to the
			// timer once the first waiter has given up.
			close(done)
			wg.Wait()
			assert.Equal(t, int32(0), got.Load())
			s := l.Stats()
			assert.Equal(t, 0, s.Waiting)
			assert.Equal(t, uint64(2), s.Canceled)
			require.True(t, l.Unlock())
			assert.True(t, l.TryLock(), "lock left free")
		})
	}
}

// TestStressMixed runs readers, writers and giving-up writers under both
// policies and checks mutual exclusion and that nothing is left queued.
func TestStressMixed(t *testing.T) {
	for _, fifo := range []bool{false, true} {
		var l RW
		var writers, readers atomic.Int32
		var wg sync.WaitGroup
		var bad atomic.Bool
		for g := range 8 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 1))
				for range 300 {
					switch r.IntN(3) {
					case 0:
						l.RLock()
						if writers.Load() != 0 {
							bad.Store(true)
						}
						readers.Add(1)
						readers.Add(-1)
						l.RUnlock()
					case 1:
						l.Lock(fifo)
						if writers.Add(1) != 1 || readers.Load() != 0 {
							bad.Store(true)
						}
						writers.Add(-1)
						l.Unlock()
					default:
						ctx, cancel := context.WithCancel(context.Background())
						if r.IntN(2) == 0 {
							cancel()
						}
						if l.LockWait(fifo, ctx.Done(), nil) {
							if writers.Add(1) != 1 || readers.Load() != 0 {
								bad.Store(true)
							}
							writers.Add(-1)
							l.Unlock()
						}
						cancel()
					}
				}
			})
		}
		wg.Wait()
		assert.False(t, bad.Load(), "exclusion violated (fifo=%v)", fifo)
		s := l.Stats()
		assert.Equal(t, 0, s.Waiting)
		assert.True(t, l.TryLock(), "lock left free")
	}
}
