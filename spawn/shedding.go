package spawn

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// WithQueueTarget sheds queued work that waits too long, the way CoDel
// manages a router's queue and Facebook's servers manage theirs ("Fail at
// Scale"): a queue that drains within target is a good queue, absorbing a
// burst; one whose oldest task has waited longer than target for a whole
// interval is a standing queue, which only adds delay: the callers of the
// oldest tasks have likely given up.
//
// Under a standing queue the spawner is overloaded, and until the queue
// empties (or its oldest task has waited less than target/2):
//
//   - a queued task that has waited longer than target is dropped when a
//     worker reaches it, without running: it is counted in [Stats].Shed and
//     resolved with [ErrQueueTimeout] (Handle.Wait, Group.Wait and
//     Hooks.OnDone see it);
//   - the queue serves the newest task first (adaptive LIFO), so that the
//     work that runs is the work whose caller still waits, and the oldest
//     ages out instead of delaying everything behind it.
//
// A burst that drains within interval drops nothing, whatever its size.
// Only tasks that wait in the queue are timestamped; a task handed to an
// idle worker costs nothing more. 0 < target <= interval; CoDel's
// defaults for a network queue are 5ms and 100ms, a service's target is
// a fraction of its callers' deadline.
func WithQueueTarget(target, interval time.Duration) Option {
	return func(c *config) error {
		if target <= 0 || interval < target {
			return fmt.Errorf("spawn: WithQueueTarget(%v, %v): need 0 < target <= interval", target, interval)
		}
		c.queueTarget, c.queueWindow = target, interval
		return nil
	}
}

// shedMark in job.enq marks a job that take decided to shed.
const shedMark = -1

// codel is the queue-time shedding state of a spawner, and the LIFO part of
// its queue. Jobs pushed while overloaded go to the stack, the others to
// the ring; workers take from the ring first (its jobs are older: the ring
// gets no new job while the stack is in use), then the stack's top.
type codel struct {
	target, interval int64 // ns
	epoch            time.Time
	// firstAbove is when the oldest queued task will have stayed above
	// target for interval (0: it is not above target). Written by workers
	// without a lock: two workers racing write values one take apart.
	firstAbove atomic.Int64
	overloaded atomic.Bool
	switches   atomic.Int64 // times overload (LIFO) began
	delay      atomic.Int64 // the oldest queued job's age at the last take, ns

	n     atomic.Int64 // jobs in stack[lo:]
	mu    sync.Mutex   // guards stack and lo
	stack []job
	lo    int // stack[lo] is the oldest stacked job
}

func newCodel(target, interval time.Duration) *codel {
	return &codel{target: int64(target), interval: int64(interval), epoch: time.Now()}
}

// now returns the time since epoch, at least 1, so that 0 means "not
// timestamped".
func (c *codel) now() int64 { return int64(time.Since(c.epoch)) + 1 }

// enqueue timestamps j and queues it: on the stack while overloaded, else
// in the ring.
func (s *Spawner) enqueue(j job) {
	c := s.cd
	if c == nil {
		s.q.push(j)
		return
	}
	j.enq = c.now()
	if !c.overloaded.Load() {
		s.q.push(j)
		return
	}
	c.mu.Lock()
	c.stack = append(c.stack, j)
	// Published under the lock, read without it: the count is stored
	// after the job, so a worker that sees it finds the job under mu.
	c.n.Add(1)
	c.mu.Unlock()
}

// take moves the next queued job into *j, or reports false if there is
// none ready (see queue.pop for why through a pointer). A job take decided
// to shed has enq == shedMark.
func (s *Spawner) take(j *job) bool {
	c := s.cd
	if c == nil {
		return s.q.pop(j)
	}
	if s.q.pop(j) {
		// The ring's head is its oldest job: its age is the queue's
		// delay (a stacked job may be older only just after overload
		// ended; it is then taken soon).
		c.judge(j, c.now())
		return true
	}
	if c.n.Load() == 0 {
		c.idle()
		return false
	}
	c.mu.Lock()
	if c.lo == len(c.stack) {
		c.mu.Unlock()
		c.idle()
		return false
	}
	now := c.now()
	oldest := &c.stack[c.lo]
	oldestAge := now - oldest.enq
	if c.overloaded.Load() && now-oldest.enq > c.target {
		// The oldest has waited past target: shed it rather than let it
		// hold a place until its turn, which under LIFO never comes.
		*j = *oldest
		*oldest = job{}
		c.lo++
	} else {
		top := len(c.stack) - 1
		*j = c.stack[top]
		c.stack[top] = job{}
		c.stack = c.stack[:top]
	}
	c.n.Add(-1)
	if c.lo == len(c.stack) {
		c.stack, c.lo = c.stack[:0], 0
	} else if c.lo > len(c.stack)/2 {
		// Keep the stack's memory bounded by the jobs it holds.
		n := copy(c.stack, c.stack[c.lo:])
		clear(c.stack[n:])
		c.stack, c.lo = c.stack[:n], 0
	}
	c.mu.Unlock()
	c.observe(now, oldestAge)
	c.mark(j, now)
	return true
}

// judge updates the state with the age of j, the oldest queued job, and
// marks j to be shed if it is stale.
func (c *codel) judge(j *job, now int64) {
	c.observe(now, now-j.enq)
	c.mark(j, now)
}

// mark marks j to be shed if the queue is overloaded and j waited past
// target.
func (c *codel) mark(j *job, now int64) {
	if c.overloaded.Load() && now-j.enq > c.target {
		j.enq = shedMark
	}
}

// observe moves the state by the age of the oldest queued job: above
// target for a whole interval starts overload; below target/2 ends it
// (the half keeps overload on while shedding holds the oldest just under
// target); below target alone resets the interval.
func (c *codel) observe(now, oldest int64) {
	if c.delay.Load() != oldest {
		c.delay.Store(oldest)
	}
	switch {
	case oldest <= c.target:
		if c.firstAbove.Load() != 0 {
			c.firstAbove.Store(0)
		}
		if oldest <= c.target/2 && c.overloaded.Load() {
			c.overloaded.Store(false)
		}
	case c.overloaded.Load():
	default:
		fa := c.firstAbove.Load()
		if fa == 0 {
			c.firstAbove.CompareAndSwap(0, now+c.interval)
		} else if now >= fa && c.overloaded.CompareAndSwap(false, true) {
			c.switches.Add(1)
		}
	}
}

// idle is called when a worker found the queue empty: a queue that
// empties is not standing.
func (c *codel) idle() {
	if c.delay.Load() != 0 {
		c.delay.Store(0)
	}
	if c.firstAbove.Load() != 0 {
		c.firstAbove.Store(0)
	}
	if c.overloaded.Load() {
		c.overloaded.Store(false)
	}
}

// queueEmpty reports whether no job is queued (see queue.empty).
func (s *Spawner) queueEmpty() bool {
	return s.q.empty() && (s.cd == nil || s.cd.n.Load() == 0)
}
