package goker

import "sync"

// A controller notifies through a helper while holding the lock; the
// listener needs the lock before it drains the notification channel.
type controller struct {
	mu      sync.Mutex
	pending int
	notify  chan struct{}
}

func (c *controller) signal() { c.notify <- struct{}{} }

func (c *controller) add() {
	c.mu.Lock()
	c.pending++
	c.signal() // want `call to controller.signal, which may block \(channel send at line 13\) while c.mu is held`
	c.mu.Unlock()
}

func (c *controller) listen() {
	for range c.notify {
		c.mu.Lock()
		c.pending--
		c.mu.Unlock()
	}
}
