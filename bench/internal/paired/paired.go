// Package paired takes a ratio between garrison and a peer inside one
// benchmark. On a shared, noisy machine the load drifts between two
// separate benchmarks by as much as the margins measured, and a preempted
// stretch inflates a sum; so the peer and garrison run in alternating
// chunks (which one goes first alternating too), and the medians over
// chunk pairs of each one's time per call and of their ratio are
// reported. Adjacent chunks see the same load, and the median ignores the
// chunks that were preempted.
package paired

import (
	"slices"
	"testing"
)

// Chunks runs chunk for the peer (impl false) and for garrison (impl
// true) in alternation, b.N times each; chunk returns its time per call in
// nanoseconds. It reports peer-ns/unit, garrison-ns/unit and ×peer, the
// median ratio.
func Chunks(b *testing.B, peer, unit string, chunk func(impl bool) float64) {
	var tPeer, tImpl, ratios []float64
	for i := 0; b.Loop(); i++ {
		implFirst := i%2 == 1
		d1 := chunk(implFirst)
		d2 := chunk(!implFirst)
		if implFirst {
			d1, d2 = d2, d1
		}
		tPeer = append(tPeer, d1)
		tImpl = append(tImpl, d2)
		ratios = append(ratios, d2/d1)
	}
	b.ReportMetric(Median(tPeer), peer+"-ns/"+unit)
	b.ReportMetric(Median(tImpl), "garrison-ns/"+unit)
	b.ReportMetric(Median(ratios), "×"+peer)
}

// Median returns the median of x, sorting it.
func Median(x []float64) float64 {
	slices.Sort(x)
	return x[len(x)/2]
}
