package changuard

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSnapshotZeroValue(t *testing.T) {
	var s Snapshot[string]
	v, ver := s.Load()
	assert.Equal(t, "", v)
	assert.Equal(t, uint64(0), ver)
	ch := s.Changed(0)
	select {
	case <-ch:
		t.Fatal("Changed(0) closed before any update")
	default:
	}
	assert.Equal(t, uint64(1), s.Store("a"))
	<-ch
	v, ver = s.Load()
	assert.Equal(t, "a", v)
	assert.Equal(t, uint64(1), ver)
}

func TestSnapshotUpdateAndCAS(t *testing.T) {
	s := NewSnapshot(10)
	v, ver := s.Load()
	require.Equal(t, 10, v)
	require.Equal(t, uint64(0), ver)

	ver, err := s.Update(func(old int) (int, error) { return old + 1, nil })
	require.NoError(t, err)
	assert.Equal(t, uint64(1), ver)

	errNo := errors.New("no")
	ver, err = s.Update(func(int) (int, error) { return 99, errNo })
	assert.ErrorIs(t, err, errNo)
	assert.Equal(t, uint64(1), ver)
	v, _ = s.Load()
	assert.Equal(t, 11, v, "an error from f leaves the value alone")

	cur, ok := s.CompareAndSwap(0, 50)
	assert.False(t, ok, "stale version")
	assert.Equal(t, uint64(1), cur)
	cur, ok = s.CompareAndSwap(1, 50)
	assert.True(t, ok)
	assert.Equal(t, uint64(2), cur)
	v, ver = s.Load()
	assert.Equal(t, 50, v)
	assert.Equal(t, uint64(2), ver)
	assert.Equal(t, SnapshotStats{Version: 2}, s.Stats())
}

func TestSnapshotChanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSnapshot("v0")
		_, ver := s.Load()
		woken := make(chan string, 3)
		for range 3 {
			go func() {
				<-s.Changed(ver)
				v, _ := s.Load()
				woken <- v
			}()
		}
		synctest.Wait()
		assert.Empty(t, woken, "nobody wakes before an update")
		assert.Equal(t, s.Changed(ver), s.Changed(ver), "waiters on one version share one channel")
		s.Store("v1")
		for range 3 {
			assert.Equal(t, "v1", <-woken)
		}
		// An old version is already changed; a bogus one too.
		<-s.Changed(ver)
		<-s.Changed(12345)
		// A failed Update does not signal.
		ch := s.Changed(ver + 1)
		_, _ = s.Update(func(string) (string, error) { return "", errors.New("abort") })
		select {
		case <-ch:
			t.Fatal("signalled without a new version")
		default:
		}
	})
}

// TestSnapshotChangedRace checks that a waiter attaching while writers
// publish never misses the version after the one it saw.
func TestSnapshotChangedRace(t *testing.T) {
	s := NewSnapshot(0)
	const writes = 2000
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				v, ver := s.Load()
				if v == writes {
					return
				}
				<-s.Changed(ver)
				if _, nver := s.Load(); nver <= ver {
					t.Errorf("woken at version %d, still %d", ver, nver)
					return
				}
			}
		})
	}
	for range writes {
		_, _ = s.Update(func(v int) (int, error) { return v + 1, nil })
	}
	wg.Wait()
}

func TestSnapshotUpdateRetries(t *testing.T) {
	s := NewSnapshot(0)
	var wg sync.WaitGroup
	calls := 0
	inside := make(chan struct{})
	proceed := make(chan struct{})
	wg.Go(func() {
		_, _ = s.Update(func(v int) (int, error) {
			calls++
			if calls == 1 {
				close(inside)
				<-proceed
			}
			return v + 1, nil
		})
	})
	<-inside
	s.Store(100) // wins the race: the first round of f must be retried
	close(proceed)
	wg.Wait()
	v, ver := s.Load()
	assert.Equal(t, 101, v)
	assert.Equal(t, uint64(2), ver)
	assert.Equal(t, 2, calls)
	assert.Equal(t, uint64(1), s.Stats().Retries)
}
