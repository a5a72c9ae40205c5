package adaptive

import (
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAdmission compares the adaptive admission path (Acquire and a
// Success Release, one operation in four timed) with the static one it
// replaces: an atomic in-flight counter against a constant cap.
func BenchmarkAdmission(b *testing.B) {
	b.Run("static", func(b *testing.B) {
		var inflight atomic.Int64
		const limit = 1 << 20
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if inflight.Add(1) > limit {
					inflight.Add(-1)
					continue
				}
				inflight.Add(-1)
			}
		})
	})
	b.Run("adaptive", func(b *testing.B) {
		l, err := New(Config{Min: 1 << 20, Max: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				t, ok := l.Acquire()
				if ok {
					l.Release(t, Success)
				}
			}
		})
	})
	// Observe is spawn's path: the worker cap bounds concurrency, the
	// limit only measures one operation in 32, as spawn does.
	b.Run("observe", func(b *testing.B) {
		l, err := New(Config{Min: 1 << 20, Max: 1 << 20, SampleEvery: 32})
		if err != nil {
			b.Fatal(err)
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				var start time.Time
				if l.Timed() {
					start = time.Now()
				}
				l.Observe(start, Success, 1)
			}
		})
	})
}
