package goker

import "sync"

// A pool stops its workers while holding the lock each worker takes to
// record its last result before wg.Done.
type pool struct {
	mu      sync.Mutex
	wg      sync.WaitGroup
	results []int
}

func (p *pool) worker(v int) {
	defer p.wg.Done()
	p.mu.Lock()
	p.results = append(p.results, v)
	p.mu.Unlock()
}

func (p *pool) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wg.Wait() // want `sync.WaitGroup.Wait while p.mu is held.*; the Done at line 14 \(in pool.worker\) takes pool.mu`
}
