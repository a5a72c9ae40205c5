package limiter

import (
	"hash/maphash"
	"sync/atomic"
	"testing"

	"golang.org/x/time/rate"

	"github.com/garrison-go/garrison/internal/costbench"
)

// BenchmarkSingleKeyCost takes Keyed.Allow apart on the parallel
// single-key benchmark of bench/limiter (one hot key at MaxRate with a
// burst no run exhausts, so every call admits and writes its TAT), as
// ratios to x/time/rate's Allow taken in alternating chunks of one
// benchmark:
//
//   - Keyed: Allow as it is;
//   - Step: the table's step (lookup and GCRA update) without building
//     the Decision;
//   - OneAdd: the table's lookup and a single atomic add on the key's TAT,
//     without the load before it, the re-checks of the tag or the
//     Decision (wrong for a full bucket or a denial: it only measures);
//   - Floor: the least any exact limiter with one shared state per key
//     does per call: one read of the monotonic clock and one atomic add on
//     a word both cores write;
//   - NoClock: the atomic add alone.
//
// Step, OneAdd, Floor and NoClock are not limiters; they exist to show what the
// clock and the one contended write cost on the machine at hand.
//
//	go test -run '^$' -bench SingleKeyCost -benchtime 400x -count 3 ./limiter
func BenchmarkSingleKeyCost(b *testing.B) {
	x := rate.NewLimiter(MaxRate, MaxBurst)
	peer := func() uint64 {
		if x.Allow() {
			return 1
		}
		return 0
	}
	k, err := NewKeyed(MaxRate, MaxBurst)
	if err != nil {
		b.Fatal(err)
	}
	const key = "client"
	k.Allow(key)
	var shared struct {
		_ [64]byte
		w atomic.Int64
		_ [64]byte
	}
	for _, v := range []struct {
		name string
		op   func() uint64
	}{
		{"Keyed", func() uint64 { return uint64(k.Allow(key).Remaining) }},
		{"Step", func() uint64 {
			tat, _ := k.table.step(maphash.String(k.seed, key), k.now(), k.g.interval, &k.g)
			return uint64(tat)
		}},
		{"OneAdd", func() uint64 {
			now := k.now()
			h := maphash.String(k.seed, key)
			if sl := k.table.shards[h>>k.table.shift].find(h); sl != nil {
				return uint64(sl.tat.Add(k.g.interval) - now)
			}
			return 0
		}},
		{"Floor", func() uint64 { return uint64(monotonicNow() + shared.w.Add(1)) }},
		{"NoClock", func() uint64 { return uint64(shared.w.Add(1)) }},
	} {
		b.Run(v.name, func(b *testing.B) {
			costbench.Ratio(b, 1024, peer, v.op, "×xtime")
		})
	}
}
