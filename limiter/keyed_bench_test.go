package limiter

import (
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func BenchmarkKeyedAllow(b *testing.B) {
	k, err := NewKeyed(1e9, 1000)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		k.Allow("client")
	}
}

func BenchmarkKeyedAllowDenied(b *testing.B) {
	k, err := NewKeyed(1e-3, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		k.Allow("client")
	}
}

func BenchmarkKeyedAllowAddr(b *testing.B) {
	k, err := NewKeyed(1e9, 1000)
	if err != nil {
		b.Fatal(err)
	}
	a := netip.MustParseAddr("2001:db8::1")
	b.ReportAllocs()
	for b.Loop() {
		k.AllowAddr(a)
	}
}

func BenchmarkKeyedAllowParallel(b *testing.B) {
	k, err := NewKeyed(1e9, 1000)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k.Allow("client")
		}
	})
}

func BenchmarkMonotonicNow(b *testing.B) {
	for b.Loop() {
		monotonicNow()
	}
}

// BenchmarkEvictionPrice measures what each EvictionPolicy costs under the
// flood it is designed for: an attacker exhausts floodKeys distinct keys
// (rate 1 per 12 s, burst 5, each used 5 times) within one refill window at
// the default capacity, then 10,000 fresh legitimate keys each make five
// requests at once (their whole burst). It reports the share of the first
// requests denied ("false-denial-%") and of the four after them
// ("burst-denial-%"). Run with -benchtime 1x; each iteration replays the
// whole flood.
func BenchmarkEvictionPrice(b *testing.B) {
	for _, floodKeys := range []int{10_000, 100_000, 1_000_000} {
		for _, policy := range []EvictionPolicy{EvictStrict, EvictLossy} {
			b.Run(fmt.Sprintf("flood=%d/%s", floodKeys, policy), func(b *testing.B) {
				var denied, asked, burstDenied, burstAsked int
				for range b.N {
					k, err := NewKeyed(rate.Every(12*time.Second), 5, WithEviction(policy))
					if err != nil {
						b.Fatal(err)
					}
					now := int64(time.Hour)
					k.clock = func() int64 { return now }
					// The flood spreads evenly over 50 s of the 60 s window.
					step := int64(50*time.Second) / int64(floodKeys)
					for i := range floodKeys {
						key := "attacker-" + strconv.Itoa(i)
						for range 5 {
							k.Allow(key)
						}
						now += step
					}
					for i := range 10_000 {
						key := "legit-" + strconv.Itoa(i)
						asked++
						if !k.Allow(key).Allowed {
							denied++
						}
						for range 4 {
							burstAsked++
							if !k.Allow(key).Allowed {
								burstDenied++
							}
						}
					}
				}
				b.ReportMetric(100*float64(denied)/float64(asked), "false-denial-%")
				b.ReportMetric(100*float64(burstDenied)/float64(burstAsked), "burst-denial-%")
			})
		}
	}
}
