package goker

import "sync"

// A reader holds the read lock across a wait on a Cond made with another
// mutex; the writer that would signal needs the write lock first.
type queue struct {
	rw    sync.RWMutex
	cmu   sync.Mutex
	cond  *sync.Cond
	items []int
}

func newQueue() *queue {
	q := &queue{}
	q.cond = sync.NewCond(&q.cmu)
	return q
}

func (q *queue) pop() int {
	q.rw.RLock()
	defer q.rw.RUnlock()
	q.cmu.Lock()
	for len(q.items) == 0 {
		q.cond.Wait() // want `sync.Cond.Wait \(which releases only the Cond's own lock\) while q.rw is read-locked \(locked at line 21\); a goroutine that needs it to unblock this one deadlocks with it; the Signal at line 38 \(in queue.push\) takes queue.rw`
	}
	v := q.items[0]
	q.cmu.Unlock()
	return v
}

func (q *queue) push(v int) {
	q.rw.Lock()
	defer q.rw.Unlock()
	q.cmu.Lock()
	q.items = append(q.items, v)
	q.cmu.Unlock()
	q.cond.Signal()
}
