package limiter

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func TestKeyedEvictionPrefersFullBuckets(t *testing.T) {
	k, clk := newTestKeyed(t, 10, 2, WithCapacity(16), WithEviction(EvictLossy))
	require.Equal(t, 16, k.Stats().Capacity)
	// Every earlier key's bucket is full again when the next arrives, so
	// each eviction forgets nothing.
	for i := range 1000 {
		require.True(t, k.Allow(strconv.Itoa(i)).Allowed)
		clk.advance(200 * time.Millisecond)
	}
	st := k.Stats()
	require.Zero(t, st.LossyEvictions)
	require.Equal(t, uint64(1000-st.Tracked), st.Evictions)
	require.LessOrEqual(t, st.Tracked, 16)

	// Now nobody's bucket is full: evictions are lossy, counted, and every
	// newcomer is still served.
	for i := range 100 {
		require.True(t, k.Allow(fmt.Sprint("new", i)).Allowed)
	}
	after := k.Stats()
	require.Equal(t, 100, int(after.Evictions-st.Evictions)+after.Tracked-st.Tracked)
	// Only the 16 full buckets left from before could be taken for free.
	require.GreaterOrEqual(t, after.LossyEvictions, uint64(100-16))
}

func TestKeyedFloodCannotResetHotKey(t *testing.T) {
	k, _ := newTestKeyed(t, 1, 1000, WithCapacity(16))
	for range 990 {
		require.True(t, k.Allow("hot").Allowed)
	}
	// A flood of fresh keys evicts the oldest state, never the key that
	// owes the most: its TAT is the newest in every window.
	for i := range 10000 {
		k.Allow(strconv.Itoa(i))
	}
	require.Equal(t, 9, k.Allow("hot").Remaining)
}

func TestKeyedAddrPrefixes(t *testing.T) {
	k, _ := newTestKeyed(t, 1, 1)
	mustAllow := func(s string, want bool) {
		t.Helper()
		require.Equal(t, want, k.AllowAddr(netip.MustParseAddr(s)).Allowed, s)
	}
	mustAllow("2001:db8:1:2::1", true)
	mustAllow("2001:db8:1:2:ffff::9", false) // same /64
	mustAllow("2001:db8:1:3::1", true)       // next /64
	mustAllow("192.0.2.1", true)
	mustAllow("::ffff:192.0.2.1", false) // mapped form is the same client
	mustAllow("192.0.2.2", true)
	mustAllow("fe80::1%eth0", true)
	mustAllow("fe80::2%eth1", false) // zones ignored, same /64
	mustAllow("::c000:201", true)    // IPv4-compatible is IPv6, not 192.0.2.1

	k48, _ := newTestKeyed(t, 1, 1, WithIPv6Prefix(48))
	require.True(t, k48.AllowAddr(netip.MustParseAddr("2001:db8:1:2::1")).Allowed)
	require.False(t, k48.AllowAddr(netip.MustParseAddr("2001:db8:1:ffff::1")).Allowed)
}

func TestKeyedNoAllocs(t *testing.T) {
	k, _ := newTestKeyed(t, 1000, 10)
	keys := []string{"alpha", "beta", "gamma"}
	a := netip.MustParseAddr("2001:db8::1")
	i := 0
	require.Zero(t, testing.AllocsPerRun(1000, func() {
		k.Allow(keys[i%3])
		i++
	}))
	require.Zero(t, testing.AllocsPerRun(1000, func() { k.AllowAddr(a) }))
}

// TestKeyedMemoryFlat shows the table is allocated once: a million distinct
// clients cost no more memory than capacity of them.
func TestKeyedMemoryFlat(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 200_000
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	// A small table keeps the race detector's per-address state small; the
	// property is the same at any capacity (the benchmark uses the default).
	const capacity = 4096
	for _, policy := range []EvictionPolicy{EvictStrict, EvictLossy} {
		t.Run(policy.String(), func(t *testing.T) { testMemoryFlat(t, policy, capacity, n, heap) })
	}
}

func testMemoryFlat(t *testing.T, policy EvictionPolicy, capacity, n int, heap func() uint64) {
	k, err := NewKeyed(100, 10, WithCapacity(capacity), WithEviction(policy))
	require.NoError(t, err)
	addr := func(i int) netip.Addr {
		return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	for i := range capacity {
		k.AllowAddr(addr(i))
	}
	atCapacity := heap()
	for i := range n {
		k.AllowAddr(addr(i + capacity))
	}
	after := heap()
	runtime.KeepAlive(k)
	grew := int64(after) - int64(atCapacity)
	t.Logf("heap at capacity %d keys: %d B; after %d more keys: %+d B", capacity, atCapacity, n, grew)
	require.Less(t, grew, int64(64<<10), "memory grew past capacity")
	st := k.Stats()
	require.Equal(t, capacity, st.Capacity)
	require.LessOrEqual(t, st.Tracked, capacity)
	require.Positive(t, st.Evictions)
}

// TestKeyedStressExact: with time frozen, every key admits exactly burst
// requests however many goroutines race, through inserts and CAS updates.
func TestKeyedStressExact(t *testing.T) {
	const burst, keys, workers = 50, 64, 8
	k, _ := newTestKeyed(t, 1, burst, WithCapacity(1024))
	var admitted [keys]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys * burst {
				key := (i + w*7) % keys
				if k.Allow("key-" + strconv.Itoa(key)).Allowed {
					admitted[key].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	require.Zero(t, k.Stats().Evictions)
	for i := range admitted {
		require.Equal(t, int64(burst), admitted[i].Load(), "key %d", i)
	}
}

// TestKeyedStressEvicting races inserts and evictions on a tiny table. A key
// can only be admitted more than burst times by being forgotten, and every
// forgetting of a non-full bucket is counted.
func TestKeyedStressEvicting(t *testing.T) {
	const burst, keys, workers = 3, 200, 8
	k, _ := newTestKeyed(t, 1, burst, WithCapacity(16), WithEviction(EvictLossy))
	var total atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				if k.Allow(strconv.Itoa((i*13 + w) % keys)).Allowed {
					total.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	st := k.Stats()
	require.LessOrEqual(t, total.Load(), int64(burst)*int64(keys+int(st.LossyEvictions)))
	require.Positive(t, st.LossyEvictions)
}

// TestKeyedStressClock races Allow on one key while the clock advances:
// admissions never exceed burst plus what the elapsed time refilled.
func TestKeyedStressClock(t *testing.T) {
	const burst = 5
	k, err := NewKeyed(1000, burst) // 1 ms per token
	require.NoError(t, err)
	var now atomic.Int64
	k.clock = now.Load
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5000 {
				if k.Allow("one").Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 2000 {
			now.Add(int64(50 * time.Microsecond))
		}
	}()
	wg.Wait()
	elapsed := now.Load()
	require.LessOrEqual(t, admitted.Load(), int64(burst)+elapsed/int64(time.Millisecond))
	require.GreaterOrEqual(t, admitted.Load(), int64(burst))
}

func TestKeyedWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, err := NewKeyed(10, 1) // 100 ms per token
		require.NoError(t, err)
		start := time.Now()
		k.clock = func() int64 { return int64(time.Since(start)) }

		require.NoError(t, k.Wait(context.Background(), "a"))
		require.NoError(t, k.Wait(context.Background(), "a"))
		require.Equal(t, 100*time.Millisecond, time.Since(start))

		// A deadline shorter than the wait fails at once.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		before := time.Now()
		err = k.Wait(ctx, "a")
		require.ErrorIs(t, err, ErrRateLimited)
		require.Equal(t, before, time.Now())

		// Cancellation while waiting returns the cause.
		cause := errors.New("client went away")
		ctx2, cancel2 := context.WithCancelCause(context.Background())
		go func() {
			time.Sleep(30 * time.Millisecond)
			cancel2(cause)
		}()
		err = k.Wait(ctx2, "a")
		require.ErrorIs(t, err, cause)
		require.Equal(t, 30*time.Millisecond, time.Since(before))

		// Already cancelled: no decision is taken.
		require.ErrorIs(t, k.Wait(ctx2, "fresh"), cause)
		require.True(t, k.Allow("fresh").Allowed)
	})
}

func TestKeyedAllowContext(t *testing.T) {
	k, _ := newTestKeyed(t, 1, 1)
	var rl RateLimiter = k
	d, err := rl.AllowContext(context.Background(), "x")
	require.NoError(t, err)
	require.True(t, d.Allowed)
	d, err = rl.AllowContext(context.Background(), "x")
	require.NoError(t, err)
	require.False(t, d.Allowed)
	var rle *RateLimitError
	require.ErrorAs(t, d.Err(), &rle)
	require.Equal(t, RequestRate, rle.Reason)
	require.ErrorIs(t, d.Err(), ErrRateLimited)
	require.Equal(t, time.Second, rle.RetryAfter)
}

func TestReasonString(t *testing.T) {
	seen := map[string]bool{}
	for r := NoReason; r < numReasons; r++ {
		s := r.String()
		require.NotEmpty(t, s)
		require.False(t, seen[s], "duplicate name %q", s)
		seen[s] = true
	}
	require.Equal(t, "ip-conns", IPConns.String())
	require.Equal(t, "reason(200)", Reason(200).String())
}

// TestAddrHashMatchesPrefix checks the hand-written mask against
// netip.Prefix for every IPv6 prefix length.
func TestAddrHashMatchesPrefix(t *testing.T) {
	seed := maphash.MakeSeed()
	ref := func(a netip.Addr, bits int) uint64 {
		var b [17]byte
		a = a.Unmap()
		if a.Is4() {
			v4 := a.As4()
			copy(b[:], v4[:])
			b[16] = 4
		} else {
			p, err := a.WithZone("").Prefix(bits)
			require.NoError(t, err)
			v6 := p.Addr().As16()
			copy(b[:], v6[:])
			b[16] = 6
		}
		return maphash.Bytes(seed, b[:])
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for bits := 1; bits <= 128; bits++ {
		for range 20 {
			var b16 [16]byte
			for i := range b16 {
				b16[i] = byte(rng.Uint32())
			}
			a := netip.AddrFrom16(b16)
			require.Equal(t, ref(a, bits), addrHash(seed, a, bits), "%v/%d", a, bits)
			v4 := netip.AddrFrom4([4]byte(b16[:4]))
			require.Equal(t, ref(v4, bits), addrHash(seed, v4, bits))
			require.Equal(t, addrHash(seed, v4, bits), addrHash(seed, netip.AddrFrom16(v4.As16()), bits))
		}
	}
}

// TestKeyedAddrKeysSeparateFromStrings: a string key that spells out the
// bytes AllowAddr hashes must not reach the address's bucket, or a client
// choosing its WithKeyFunc key could drain another client's address quota.
func TestKeyedAddrKeysSeparateFromStrings(t *testing.T) {
	k, _ := newTestKeyed(t, 1, 1)
	a := netip.MustParseAddr("192.0.2.1")
	var b [17]byte
	copy(b[:4], []byte{192, 0, 2, 1})
	b[16] = 4
	require.True(t, k.Allow(string(b[:])).Allowed)
	require.False(t, k.Allow(string(b[:])).Allowed)
	require.True(t, k.AllowAddr(a).Allowed, "a string key shares the address's bucket")
}
