// Package statsbench measures Stats() on every primitive: exporters
// (contrib/prometheus, contrib/otel) call it once per scrape, so it must
// stay cheap (the target is at most 1 µs) and never touch a hot path.
package statsbench

import (
	"context"
	"net"
	"testing"

	"github.com/garrison-go/garrison/changuard"
	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/lockorder"
	"github.com/garrison-go/garrison/spawn"
	"github.com/garrison-go/garrison/timeout"
)

// sink keeps the last snapshot alive after the loop (b.Loop already
// keeps the calls in it from being optimised away).
var sink any

func bench[S any](b *testing.B, stats func() S) {
	b.ReportAllocs()
	var last S
	for b.Loop() {
		last = stats()
	}
	sink = last
}

func BenchmarkStats(b *testing.B) {
	ctx := context.Background()
	s, err := spawn.New(spawn.WithPerKey(4, 1024))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Shutdown(ctx) }()
	b.Run("spawn.Spawner", func(b *testing.B) { bench(b, s.Stats) })

	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ln, err := limiter.NewListener(inner, limiter.WithMaxConnsPerIP(8))
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	b.Run("limiter.Listener", func(b *testing.B) { bench(b, ln.Stats) })

	// The default table: 65536 keys in 64 shards, each locked in turn.
	k, err := limiter.NewKeyed(10, 10)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("limiter.Keyed", func(b *testing.B) { bench(b, k.Stats) })

	c, err := changuard.NewChan[int](64)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("changuard.Chan", func(b *testing.B) { bench(b, c.Stats) })
	o, err := changuard.NewOwner(0, 64)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = o.Shutdown(ctx) }()
	b.Run("changuard.Owner", func(b *testing.B) { bench(b, o.Stats) })
	g := changuard.NewGuarded(0)
	b.Run("changuard.Guarded", func(b *testing.B) { bench(b, g.Stats) })
	snap := changuard.NewSnapshot(0)
	b.Run("changuard.Snapshot", func(b *testing.B) { bench(b, snap.Stats) })

	d, err := timeout.NewDetacher(8)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("timeout.Detacher", func(b *testing.B) { bench(b, d.Stats) })
	wd, err := timeout.NewWatchdog()
	if err != nil {
		b.Fatal(err)
	}
	defer wd.Close()
	b.Run("timeout.Watchdog", func(b *testing.B) { bench(b, wd.Stats) })

	var mu lockorder.TimedMutex
	b.Run("lockorder.TimedMutex", func(b *testing.B) { bench(b, mu.Stats) })
	b.Run("lockorder.Stats", func(b *testing.B) { bench(b, lockorder.Stats) })
}
