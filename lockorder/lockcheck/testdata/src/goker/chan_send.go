package goker

import "sync"

// A watcher publishes under its lock; the consumer takes the lock to read
// the state before it receives the next event (lock held across a channel
// send the peer needs).
type watcher struct {
	mu     sync.Mutex
	state  int
	events chan int
}

func (w *watcher) publish(v int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.state = v
	w.events <- v // want `channel send while w.mu is held.*; the receive at line 22 \(in watcher.consume\) takes watcher.mu`
}

func (w *watcher) consume() {
	for range w.events {
		w.mu.Lock()
		_ = w.state
		w.mu.Unlock()
	}
}

func chanSend() {
	w := &watcher{events: make(chan int)}
	go w.consume()
	w.publish(1)
	w.publish(2)
}
