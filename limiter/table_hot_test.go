package limiter

import (
	"hash/maphash"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// TestShardLearnsHotKey checks learn's rules on one shard, with clocks
// chosen on either side of its one-in-256 draw (learn is called after a
// raced admission or a denial).
func TestShardLearnsHotKey(t *testing.T) {
	const a, b = 0xa, 0xb
	const steal, keep = 0, 1 // 0×φ>>56 == 0; 1×φ>>56 == 0x9e
	var s shard
	s.slots = make([]slot, 4)
	sa, sb, sa2 := &s.slots[0], &s.slots[1], &s.slots[2]
	s.learn(a, sa, false, keep)
	require.Zero(t, s.hot.Load(), "a denial does not make a key hot")
	s.learn(a, sa, true, keep)
	require.EqualValues(t, a, s.hot.Load())
	require.Same(t, sa, s.hotSlot.Load())
	s.learn(a, sa2, true, keep)
	require.Same(t, sa2, s.hotSlot.Load(), "a hot key found in another slot moves the hint")
	s.learn(b, sb, true, keep)
	require.EqualValues(t, a, s.hot.Load(), "another key does not take the place")
	require.Same(t, sa2, s.hotSlot.Load())
	s.learn(b, sb, false, keep)
	require.EqualValues(t, a, s.hot.Load(), "nor does its denial clear it")
	s.learn(b, sb, true, steal)
	require.EqualValues(t, b, s.hot.Load(), "except on the draw")
	require.Same(t, sb, s.hotSlot.Load())
	s.learn(b, nil, false, keep)
	require.Zero(t, s.hot.Load(), "a denied hot key turns cold")
}

// TestShardHotDrawRate: the draw that lets a new key take the place of a
// hot one passes about one time in 256, whether the clock ticks in
// nanoseconds or in microseconds.
func TestShardHotDrawRate(t *testing.T) {
	const n = 1 << 16
	for _, step := range []int64{1, 1000, 1 << 10} {
		var s shard
		var sl slot
		steals := 0
		for i := range int64(n) {
			s.hot.Store(0xa)
			s.learn(0xb, &sl, true, 1_700_000_000_000_000_000+i*step)
			if s.hot.Load() == 0xb {
				steals++
			}
		}
		require.InDelta(t, n/256, steals, n/256/2, "clock step %d", step)
	}
}

// TestHotKeyFoundUnderContention: two cores admitting one key make it its
// shard's hot key, with its own slot as the hint, which only a step that
// raced another core's write on the key's TAT can do.
func TestHotKeyFoundUnderContention(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs two goroutines running at once")
	}
	k, err := NewKeyed(MaxRate, MaxBurst)
	require.NoError(t, err)
	const key = "tenant"
	h := maphash.String(k.seed, key)
	s := &k.table.shards[h>>k.table.shift]
	for range 1000 {
		k.Allow(key)
	}
	require.Zero(t, s.hot.Load(), "admissions no other write raced leave the key cold")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for range 1000 {
					if !k.Allow(key).Allowed {
						t.Error("denied below the burst")
						return
					}
				}
			}
		}()
	}
	require.Eventually(t, func() bool { return s.hot.Load() == h }, 10*time.Second, time.Millisecond)
	close(stop)
	wg.Wait()
	require.Same(t, s.find(h), s.hotSlot.Load())
}

// TestHotKeyDeniedOnTheLockedPathTurnsCold: a hot key that was evicted
// and is denied on the sketch's estimate (the locked path, not the
// lock-free one) stops being prefetched too.
func TestHotKeyDeniedOnTheLockedPathTurnsCold(t *testing.T) {
	k, err := NewKeyed(1, 1, WithCapacity(16))
	require.NoError(t, err)
	var now int64 = 1e12
	k.clock = func() int64 { return now }
	const key = "victim"
	h := maphash.String(k.seed, key)
	s := &k.table.shards[h>>k.table.shift]
	require.True(t, k.Allow(key).Allowed)
	s.hot.Store(h) // as if its admissions had raced
	// Evict it, owing quota, with keys that each spend their one request.
	for i := 0; s.find(h) != nil; i++ {
		require.Less(t, i, 1<<16, "never evicted")
		k.Allow("junk-" + strconv.Itoa(i))
	}
	d := k.Allow(key)
	require.False(t, d.Allowed, "the sketch holds the victim to its debt")
	require.Zero(t, s.hot.Load())
}

// TestShardLayout: the fields every step reads fit in 48 bytes at the
// start of a 128-byte shard, and the ones inserts write start 64 bytes in.
func TestShardLayout(t *testing.T) {
	var s shard
	require.EqualValues(t, 128, unsafe.Sizeof(s))
	require.LessOrEqual(t, unsafe.Offsetof(s.hotSlot)+unsafe.Sizeof(s.hotSlot), uintptr(48))
	require.EqualValues(t, 64, unsafe.Offsetof(s.mu))
}
