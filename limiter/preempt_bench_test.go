package limiter

import (
	"strconv"
	"testing"
)

// BenchmarkLedgerPreempt: one preemption decision and its bookkeeping
// (choose the victim, take it out, enter the newcomer) with held
// preemptable connections from 1,000 sources. O(1): the same ns/op at 100
// and at 10,000 held.
func BenchmarkLedgerPreempt(b *testing.B) {
	for _, held := range []int{100, 10_000} {
		b.Run("held="+strconv.Itoa(held), func(b *testing.B) {
			sources := held / 10
			lg := newLedger(sources, held)
			conns := make([]*conn, held)
			for i := range conns {
				conns[i] = &conn{slot: i % sources}
				lg.add(conns[i], 0)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				v := lg.victim(i%sources, preemptMinAge)
				lg.remove(v)
				v.slot = i % sources
				lg.add(v, 0)
			}
		})
	}
}
