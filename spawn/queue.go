package spawn

import (
	"runtime"
	"sync/atomic"
	"unsafe"
)

// queue is a bounded multi-producer multi-consumer FIFO of jobs: an array of
// slots, each with a sequence number that says whose turn it is (the design
// of Dmitry Vyukov's bounded MPMC queue). Submitters and workers each pay
// one CAS and no lock, so they do not serialize on a channel's mutex.
//
// The slot's sequence is published with an atomic store after the job is
// written (and read with an atomic load before the job is read), which
// orders the plain job accesses for the race detector too.
type queue struct {
	slots []slot
	mask  uint64
	_     cacheLine
	head  atomic.Uint64 // next position to dequeue
	_     cacheLine
	tail  atomic.Uint64 // next position to enqueue
	_     cacheLine
}

type slot struct {
	// seq == pos: free for the enqueuer at pos; seq == pos+1: holds the
	// job for the dequeuer at pos.
	seq atomic.Uint64
	j   job
}

// maxSlots bounds MaxConcurrent+Queue, the queue's size before rounding up
// to a power of two: at slotBytes per slot the queue is at most 64 MiB.
const maxSlots = 1 << 20

// slotBytes is the memory of one queue slot.
const slotBytes = uint64(unsafe.Sizeof(slot{}))

// queueSize returns the slots newQueue(n) allocates: n rounded up to a
// power of two.
func queueSize(n int) int {
	size := 1
	for size < n {
		size <<= 1
	}
	return size
}

// newQueue returns a queue of at least n slots.
func newQueue(n int) *queue {
	size := queueSize(n)
	q := &queue{slots: make([]slot, size), mask: uint64(size - 1)}
	for i := range q.slots {
		q.slots[i].seq.Store(uint64(i))
	}
	return q
}

// push adds j. The caller guarantees the queue holds fewer jobs than its
// size (admission bounds them), so push never fails; it may only have to
// wait for a dequeuer that claimed the slot's previous job to finish
// reading it.
func (q *queue) push(j job) {
	pos := q.tail.Load()
	for {
		sl := &q.slots[pos&q.mask]
		seq := sl.seq.Load()
		switch d := int64(seq - pos); {
		case d == 0:
			if q.tail.CompareAndSwap(pos, pos+1) {
				sl.j = j
				sl.seq.Store(pos + 1)
				return
			}
			pos = q.tail.Load()
		case d < 0:
			// The previous lap's dequeuer is between its CAS and its
			// release of the slot.
			runtime.Gosched()
			pos = q.tail.Load()
		default:
			pos = q.tail.Load()
		}
	}
}

// pop moves the oldest job into *j, or reports false (leaving *j alone) if
// there is none ready. A job whose push is still in progress is not ready;
// its pusher wakes a worker after publishing it (see Spawner.dispatch).
//
// The job goes out through a pointer, here and in take and next, because a
// job has more words than the compiler keeps in registers: returned by
// value, each caller on the way to the worker stored it word by word and
// copied it with 16-byte loads that the processor cannot forward from those
// stores, a stall at every level of the worker's hot loop.
func (q *queue) pop(j *job) bool {
	pos := q.head.Load()
	for {
		sl := &q.slots[pos&q.mask]
		seq := sl.seq.Load()
		switch d := int64(seq - (pos + 1)); {
		case d == 0:
			if q.head.CompareAndSwap(pos, pos+1) {
				*j = sl.j
				sl.j = job{} // drop references for the GC
				sl.seq.Store(pos + q.mask + 1)
				return true
			}
			pos = q.head.Load()
		case d < 0:
			return false
		default:
			pos = q.head.Load()
		}
	}
}

// empty reports whether the queue holds no job, counting a job whose push is
// in progress as held. head is loaded before tail, so equal values mean the
// queue was empty at some instant between the two loads.
func (q *queue) empty() bool {
	head := q.head.Load()
	return q.tail.Load() == head
}
