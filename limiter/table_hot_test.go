package limiter

import (
	"hash/maphash"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestShardLearnsHotKey checks learn's rules on one shard, with clocks
// chosen on either side of its one-in-256 draw.
func TestShardLearnsHotKey(t *testing.T) {
	const a, b = 0xa, 0xb
	const steal, keep = 0, 1 // 0×φ>>56 == 0; 1×φ>>56 == 0x9e
	var s shard
	s.learn(a, true, false, keep)
	require.Zero(t, s.hot.Load(), "an admission no other write raced does not make a key hot")
	s.learn(a, false, true, keep)
	require.Zero(t, s.hot.Load(), "nor does a raced denial")
	s.learn(a, true, true, keep)
	require.EqualValues(t, a, s.hot.Load())
	s.learn(b, true, true, keep)
	require.EqualValues(t, a, s.hot.Load(), "another key does not take the place")
	s.learn(b, false, false, keep)
	require.EqualValues(t, a, s.hot.Load(), "nor does its denial clear it")
	s.learn(b, true, true, steal)
	require.EqualValues(t, b, s.hot.Load(), "except on the draw")
	s.learn(b, false, false, keep)
	require.Zero(t, s.hot.Load(), "a denied hot key turns cold")
}

// TestShardHotDrawRate: the draw that lets a new key take the place of a
// hot one passes about one time in 256, whether the clock ticks in
// nanoseconds or in microseconds.
func TestShardHotDrawRate(t *testing.T) {
	const n = 1 << 16
	for _, step := range []int64{1, 1000, 1 << 10} {
		var s shard
		steals := 0
		for i := range int64(n) {
			s.hot.Store(0xa)
			s.learn(0xb, true, true, 1_700_000_000_000_000_000+i*step)
			if s.hot.Load() == 0xb {
				steals++
			}
		}
		require.InDelta(t, n/256, steals, n/256/2, "clock step %d", step)
	}
}

// TestHotKeyFoundUnderContention: two cores admitting one key make it its
// shard's hot key, which only a step that raced another core's write on
// the key's TAT can do.
func TestHotKeyFoundUnderContention(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs two goroutines running at once")
	}
	k, err := NewKeyed(MaxRate, MaxBurst)
	require.NoError(t, err)
	const key = "tenant"
	h := maphash.String(k.seed, key)
	s := &k.table.shards[h>>k.table.shift]
	k.Allow(key)
	require.Zero(t, s.hot.Load())
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
}
