package limiter

import (
	"net/netip"
	"testing"
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
