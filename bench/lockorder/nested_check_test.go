//go:build lockorder

package lockorderbench

import (
	"sync"
	"testing"

	"github.com/garrison-go/garrison/lockorder"
	"github.com/sasha-s/go-deadlock"
)

// BenchmarkNestedChecking takes A then B and releases both, with order
// checking on: lockorder's checking build against go-deadlock with its
// default options (both track held locks and the A->B order). sync is the
// unchecked floor. Only built with -tags lockorder.
func BenchmarkNestedChecking(b *testing.B) {
	if !lockorder.Enabled() {
		b.Skip("checking is not compiled in")
	}
	nested := func(b *testing.B, x, y locker) {
		for b.Loop() {
			x.Lock()
			y.Lock()
			counter++
			y.Unlock()
			x.Unlock()
		}
	}
	b.Run("sync", func(b *testing.B) { nested(b, new(sync.Mutex), new(sync.Mutex)) })
	b.Run("garrison", func(b *testing.B) {
		x, y := new(lockorder.Mutex), new(lockorder.Mutex)
		x.SetClass(lockorder.NewClass("bench.A", 0))
		y.SetClass(lockorder.NewClass("bench.B", 0))
		nested(b, x, y)
	})
	b.Run("deadlock", func(b *testing.B) { nested(b, new(deadlock.Mutex), new(deadlock.Mutex)) })
}

// BenchmarkNestedCheckingBusy is BenchmarkNestedChecking while another
// goroutine holds 1000 other locks: lockorder's cost depends only on what
// the acquiring goroutine holds.
func BenchmarkNestedCheckingBusy(b *testing.B) {
	if !lockorder.Enabled() {
		b.Skip("checking is not compiled in")
	}
	busy := func(b *testing.B, mk func() locker) {
		const held = 1000
		locked, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			ms := make([]locker, held)
			for i := range ms {
				ms[i] = mk()
				ms[i].Lock()
			}
			close(locked)
			<-release
			for i := len(ms) - 1; i >= 0; i-- {
				ms[i].Unlock()
			}
		}()
		<-locked
		x, y := mk(), mk()
		for b.Loop() {
			x.Lock()
			y.Lock()
			counter++
			y.Unlock()
			x.Unlock()
		}
		close(release)
		<-done
	}
	b.Run("held=1000/garrison", func(b *testing.B) { busy(b, func() locker { return new(lockorder.Mutex) }) })
	b.Run("held=1000/deadlock", func(b *testing.B) { busy(b, func() locker { return new(deadlock.Mutex) }) })
}
