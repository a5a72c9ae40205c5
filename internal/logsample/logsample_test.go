package logsample

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestBurstThenOnePerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(time.Second, 3)
		lines, held := 0, uint64(0)
		for range 100 {
			if ok, n := s.Allow(); ok {
				lines++
				held += n
			}
		}
		assert.Equal(t, 3, lines)
		time.Sleep(time.Second) // fake time: one more line is due
		ok, n := s.Allow()
		assert.True(t, ok)
		assert.Equal(t, uint64(97), held+n, "every held-back event is reported once")
	})
}

// Under concurrent floods every event is either a line or counted in one
// later line's suppressed count.
func TestNoEventLost(t *testing.T) {
	s := New(time.Hour, 5)
	var mu sync.Mutex
	lines, reported := 0, uint64(0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if ok, n := s.Allow(); ok {
					mu.Lock()
					lines++
					reported += n
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	reported += s.held.Load()
	assert.Equal(t, 5, lines)
	assert.Equal(t, uint64(8000-5), reported)
}
