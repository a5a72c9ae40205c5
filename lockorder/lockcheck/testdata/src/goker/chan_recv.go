package goker

import "sync"

// A store waits for a flush result while holding its lock; the flusher
// must take the lock to read the batch before it replies.
type store struct {
	mu    sync.RWMutex
	batch []int
	done  chan error
}

func (s *store) commit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batch = append(s.batch, 1)
	return <-s.done // want `channel receive while s.mu is held`
}

func (s *store) flusher() {
	s.mu.RLock()
	n := len(s.batch)
	s.mu.RUnlock()
	_ = n
	s.done <- nil
}
