package changuard

import (
	"sync/atomic"
)

// Snapshot publishes immutable versions of a value of type T: Load is a
// single atomic load and never waits, writers replace the whole value with
// a compare-and-swap, and Changed lets a goroutine wait for the next
// version, like tokio's watch channel.
//
// Values must be treated as immutable once stored: a T that holds maps,
// slices or pointers must be copied by the writer, never modified in place,
// because readers may still be using the old version.
//
// The zero Snapshot is usable: it holds the zero T at version 0.
// NewSnapshot also starts at version 0, and every successful update adds
// one. A Snapshot must not be copied after first use.
type Snapshot[T any] struct {
	cur atomic.Pointer[snapshotVersion[T]]
	// retries counts Update rounds lost to a concurrent writer.
	retries atomic.Uint64
}

type snapshotVersion[T any] struct {
	v   T
	ver uint64
	// next is closed by the writer that supersedes this version. It is
	// created by the first Changed call for this version, so writers pay
	// for it only when someone waits.
	next atomic.Pointer[chan struct{}]
}

// SnapshotStats is a snapshot of a Snapshot's counters.
type SnapshotStats struct {
	Version uint64 // current version
	Retries uint64 // Update rounds that lost a race and ran f again
}

// closedSignal is what every superseded version's next points to, and what
// Changed returns for a version that is already old.
var closedSignal = func() *chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return &ch
}()

// NewSnapshot returns a Snapshot holding v at version 0.
func NewSnapshot[T any](v T) *Snapshot[T] {
	s := &Snapshot[T]{}
	s.cur.Store(&snapshotVersion[T]{v: v})
	return s
}

// Load returns the current value and its version without waiting.
func (s *Snapshot[T]) Load() (T, uint64) {
	if p := s.cur.Load(); p != nil {
		return p.v, p.ver
	}
	var zero T
	return zero, 0
}

// current returns the current version, installing version 0 in a zero
// Snapshot so that Changed has a version to attach a signal to.
func (s *Snapshot[T]) current() *snapshotVersion[T] {
	if p := s.cur.Load(); p != nil {
		return p
	}
	s.cur.CompareAndSwap(nil, &snapshotVersion[T]{})
	return s.cur.Load()
}

// publish replaces old with a version holding v, and on success wakes the
// goroutines waiting in Changed(old.ver). The swap of next to closedSignal
// happens after the new version is visible, so a Changed that attaches a
// channel to old either sees closedSignal, or attaches before the swap and
// has its channel closed here.
func (s *Snapshot[T]) publish(old *snapshotVersion[T], v T) (*snapshotVersion[T], bool) {
	n := &snapshotVersion[T]{v: v, ver: old.ver + 1}
	if !s.cur.CompareAndSwap(old, n) {
		return nil, false
	}
	if ch := old.next.Swap(closedSignal); ch != nil && ch != closedSignal {
		close(*ch)
	}
	return n, true
}

// Update replaces the value with f(old) and returns the new version. If
// another writer gets in between, f runs again with the newer value, so f
// must have no side effects. If f returns an error, the value is left as
// it is and Update returns the current version and that error.
func (s *Snapshot[T]) Update(f func(old T) (T, error)) (uint64, error) {
	for {
		old := s.current()
		v, err := f(old.v)
		if err != nil {
			return old.ver, err
		}
		if n, ok := s.publish(old, v); ok {
			return n.ver, nil
		}
		s.retries.Add(1)
	}
}

// CompareAndSwap stores v if version is still the current version. It
// returns the new version and true, or the current version and false.
func (s *Snapshot[T]) CompareAndSwap(version uint64, v T) (uint64, bool) {
	old := s.current()
	if old.ver != version {
		return old.ver, false
	}
	if n, ok := s.publish(old, v); ok {
		return n.ver, true
	}
	return s.current().ver, false
}

// Store replaces the value unconditionally and returns the new version.
func (s *Snapshot[T]) Store(v T) uint64 {
	ver, _ := s.Update(func(T) (T, error) { return v, nil })
	return ver
}

// Changed returns a channel that is closed once a version newer than
// version has been published. If version is not the current version (it is
// older, or was never returned by this Snapshot) the channel is already
// closed: load again and wait on the version Load returns. Changed never
// starts a goroutine; the writer that publishes the next version closes
// the channel, and all callers waiting on one version share one channel.
func (s *Snapshot[T]) Changed(version uint64) <-chan struct{} {
	cur := s.current()
	if cur.ver != version {
		return *closedSignal
	}
	if ch := cur.next.Load(); ch != nil {
		return *ch
	}
	ch := make(chan struct{})
	if cur.next.CompareAndSwap(nil, &ch) {
		return ch
	}
	// Another caller attached a channel first, or a writer already
	// superseded cur.
	return *cur.next.Load()
}

// Stats returns the current version and the number of Update retries.
func (s *Snapshot[T]) Stats() SnapshotStats {
	_, ver := s.Load()
	return SnapshotStats{Version: ver, Retries: s.retries.Load()}
}
