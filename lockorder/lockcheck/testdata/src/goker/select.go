package goker

import (
	"context"
	"sync"
)

// A transport waits for a stream quota or cancellation under the lock the
// quota's releaser needs.
type transport struct {
	mu    sync.Mutex
	quota chan struct{}
	open  int
}

func (t *transport) newStream(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	select { // want `select without default while t.mu is held`
	case <-t.quota:
		t.open++
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *transport) closeStream() {
	t.mu.Lock()
	t.open--
	t.mu.Unlock()
	t.quota <- struct{}{}
}
