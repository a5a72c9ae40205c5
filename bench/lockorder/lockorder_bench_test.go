// Package lockorderbench compares lockorder's mutexes with the standard
// library and with github.com/sasha-s/go-deadlock.
//
// A plain `go test -bench` here measures the production build of lockorder
// (checking compiled out). With -tags lockorder the same benchmarks measure
// the checking build, and BenchmarkNestedChecking (nested_check_test.go)
// compares checked nested locking against go-deadlock.
package lockorderbench

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/garrison-go/garrison/lockorder"
)

// counter is the work done inside every critical section (guarded by the
// benchmarked mutex); sink keeps the readers' loads alive.
var (
	counter int
	sink    atomic.Int64
)

// locker is what every compared mutex offers.
type locker interface {
	Lock()
	Unlock()
}

type rlocker interface {
	RLock()
	RUnlock()
}

func impls() []struct {
	name string
	new  func() locker
} {
	return []struct {
		name string
		new  func() locker
	}{
		{"sync", func() locker { return new(sync.Mutex) }},
		{"garrison", func() locker { return new(lockorder.Mutex) }},
	}
}

// BenchmarkLock is an uncontended Lock/Unlock pair on one goroutine and the
// same under RunParallel (all goroutines on one mutex).
func BenchmarkLock(b *testing.B) {
	for _, im := range impls() {
		b.Run("uncontended/"+im.name, func(b *testing.B) {
			m := im.new()
			for b.Loop() {
				m.Lock()
				counter++
				m.Unlock()
			}
		})
	}
	for _, im := range impls() {
		b.Run("parallel/"+im.name, func(b *testing.B) {
			m := im.new()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m.Lock()
					counter++
					m.Unlock()
				}
			})
		})
	}
}

// BenchmarkLockDirect calls the concrete types, without the interface, so
// the production wrapper's methods can inline into the loop.
func BenchmarkLockDirect(b *testing.B) {
	b.Run("uncontended/sync", func(b *testing.B) {
		var m sync.Mutex
		for b.Loop() {
			m.Lock()
			counter++
			m.Unlock()
		}
	})
	b.Run("uncontended/garrison", func(b *testing.B) {
		var m lockorder.Mutex
		for b.Loop() {
			m.Lock()
			counter++
			m.Unlock()
		}
	})
}

// BenchmarkRLock is an uncontended RLock/RUnlock pair, and readers only
// under RunParallel.
func BenchmarkRLock(b *testing.B) {
	rws := []struct {
		name string
		new  func() rlocker
	}{
		{"sync", func() rlocker { return new(sync.RWMutex) }},
		{"garrison", func() rlocker { return new(lockorder.RWMutex) }},
	}
	for _, im := range rws {
		b.Run("uncontended/"+im.name, func(b *testing.B) {
			m := im.new()
			s := 0
			for b.Loop() {
				m.RLock()
				s += counter
				m.RUnlock()
			}
			sink.Add(int64(s))
		})
	}
	for _, im := range rws {
		b.Run("parallel/"+im.name, func(b *testing.B) {
			m := im.new()
			b.RunParallel(func(pb *testing.PB) {
				s := 0
				for pb.Next() {
					m.RLock()
					s += counter
					m.RUnlock()
				}
				sink.Add(int64(s))
			})
		})
	}
}

// BenchmarkTimed compares TimedMutex's Lock/Unlock with sync.Mutex,
// uncontended and under RunParallel.
func BenchmarkTimed(b *testing.B) {
	ms := []struct {
		name string
		new  func() locker
	}{
		{"sync", func() locker { return new(sync.Mutex) }},
		{"garrison", func() locker { return new(lockorder.TimedMutex) }},
	}
	for _, im := range ms {
		b.Run("uncontended/"+im.name, func(b *testing.B) {
			m := im.new()
			for b.Loop() {
				m.Lock()
				counter++
				m.Unlock()
			}
		})
	}
	for _, im := range ms {
		b.Run("parallel/"+im.name, func(b *testing.B) {
			m := im.new()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m.Lock()
					counter++
					m.Unlock()
				}
			})
		})
	}
}
