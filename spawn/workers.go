package spawn

import (
	"runtime"
	"time"
)

// spinRounds is how many times a worker that ran out of tasks yields and
// polls the queue before it parks: a few microseconds, about the time a
// busy submitter takes to produce the next few tasks.
const spinRounds = 16

// idleTicker returns a ticker of period d for a worker that first runs
// dry. A ticker costs three allocations (the Ticker, its timer and its
// channel), which a spawner whose workers come and go with the load would
// otherwise pay for every worker it starts: retired workers' tickers are
// kept stopped in the spawner's pool and reset for the next one. Since Go
// 1.23 a stopped or reset ticker delivers no stale tick. The pool is the
// spawner's, not the package's, because a timer belongs to the
// testing/synctest bubble it was made in.
func (s *Spawner) idleTicker(d time.Duration) *time.Ticker {
	if t, ok := s.tickers.Get().(*time.Ticker); ok {
		t.Reset(d)
		return t
	}
	return time.NewTicker(d)
}

func (s *Spawner) putIdleTicker(t *time.Ticker) {
	t.Stop()
	s.tickers.Put(t)
}

// dispatch hands an admitted job to a worker. admitted is at least the
// number of tasks in the spawner, j included, right after admitting it
// (tryAdmit's bound, which may count ended tasks until it is refreshed).
func (s *Spawner) dispatch(j job, admitted int64) {
	fresh := false
	for {
		w := s.workers.Load()
		if w < s.runCap() && w < admitted && !fresh {
			// The bound says a worker is missing: look at the real
			// count before starting one for tasks that have ended.
			admitted, fresh = s.seeReleased(), true
			continue
		}
		if w >= s.runCap() || w >= admitted {
			// Enough workers exist for every admitted task (or the cap is
			// reached); each either takes j from the queue or, if it is
			// retiring, re-checks in retire and stays. The queue never
			// overflows: it holds at most the admitted tasks.
			s.enqueue(j)
			s.pushed()
			return
		}
		if s.workers.CompareAndSwap(w, w+1) {
			go s.worker(j)
			return
		}
	}
}

// pushed wakes a parked worker for a job just pushed, unless a worker is
// spinning on the queue. See next and passWake for why the job never waits
// beside sleeping workers.
func (s *Spawner) pushed() {
	if s.spinning.Load() == 0 && s.idle.Load() > 0 {
		select {
		case s.wake <- struct{}{}:
		default: // enough tokens are pending to wake every worker
		}
	}
}

// needWorker reports whether, with w workers counted, some admitted task may
// be left without a worker to run it.
func (s *Spawner) needWorker(w int64) bool {
	return w < s.runCap() && w < s.pending()
}

// pending returns the admitted tasks not yet ended (queued plus running).
// It loads released before state: every release counted was of a task
// admitted by then, so the difference is never below the tasks in the
// spawner at the moment state was loaded (tasks admitted and ended between
// the loads make it larger, never smaller), and zero means that at that
// moment every admitted task had ended.
func (s *Spawner) pending() int64 {
	r := s.released.Load()
	return s.state.Load()&^closedBit - r
}

// seeReleased returns pending and makes relSeen current, for the
// admissions that follow.
func (s *Spawner) seeReleased() int64 {
	r := s.released.Load()
	s.relSeen.Store(r)
	return s.state.Load()&^closedBit - r
}

// worker runs j, then whatever the queue holds, until it has been idle for
// a whole tick of its idle ticker (or the spawner is closed) and no admitted
// task needs it.
func (s *Spawner) worker(j job) {
	w := workerState{busy: true, st: &s.stripes[s.nextStripe.Add(1)%numStripes]}
	retired := false
	defer func() {
		if w.tick != nil {
			s.putIdleTicker(w.tick)
		}
		if !retired {
			// A task called runtime.Goexit: execute has accounted the
			// task, and this goroutine is unwinding. Give back its worker
			// slot and start a replacement if tasks still need one.
			if s.retire() {
				go s.worker(job{})
			}
		}
	}()
	for {
		if j.fn != nil || j.h != nil {
			s.execute(&j, &w)
			w.busy = true
			if s.lim != nil && s.shrink() {
				retired = true
				return
			}
		}
		if !s.next(&w, &j) {
			retired = true
			return
		}
	}
}

// workerState is what a worker keeps between tasks to decide when to exit.
type workerState struct {
	// tick fires every idle timeout once the worker first runs dry. It is
	// never reset or stopped while the worker lives, so parking costs no
	// timer operation; a worker exits when a whole tick passes without a
	// task, that is after being idle between one and two idle timeouts.
	tick *time.Ticker
	busy bool // ran a task since the last tick
	st   *stripe
}

// next moves the next job into *j, or reports false once the worker has
// retired. *j holds the job the worker ran last; next clears it before
// parking, so that an idle worker keeps nothing of it alive.
func (s *Spawner) next(w *workerState, j *job) bool {
	woken := false
	for {
		if s.take(j) {
			if woken {
				// The wake token may have been sent for a job behind
				// this one: a job whose pusher had claimed its slot
				// but not yet published it kept an earlier woken
				// worker from reaching the later job.
				s.passWake()
			}
			return true
		}
		if s.state.Load()&closedBit != 0 {
			// Closed: no lingering. If retire keeps us, a job is being
			// pushed; let its pusher run.
			if !s.retire() {
				return false
			}
			runtime.Gosched()
			continue
		}
		// Spin before parking: while a worker spins, dispatch wakes no
		// one, so a steady stream of tasks flows from submitters to
		// spinning workers without a single park or wake-up. Spinning is
		// bounded in time and in spinners, and yields the processor, so
		// an idle spawner burns at most a few microseconds.
		if s.spinning.Add(1) <= s.maxSpinning {
			for range spinRounds {
				runtime.Gosched()
				if s.take(j) {
					s.spinning.Add(-1)
					s.passWake()
					return true
				}
			}
		}
		// Count ourselves idle, stop counting as spinning, then look
		// again. dispatch publishes its job, then loads spinning and, if
		// zero, idle. If it saw us (or another worker) spinning, that
		// worker's pop after this decrement finds the job, or passWake
		// after it does; if not, it saw us idle and sends a wake token.
		s.idle.Add(1)
		s.spinning.Add(-1)
		if s.take(j) {
			s.idle.Add(-1)
			s.passWake()
			return true
		}
		if w.tick == nil {
			w.tick = s.idleTicker(s.cfg.idleTimeout)
		}
		*j = job{}
		select {
		case <-s.wake:
			// A job was pushed (or Shutdown woke us): look again. The
			// token may be stale; then we park again.
			s.idle.Add(-1)
			woken = true
			continue
		case <-w.tick.C:
			s.idle.Add(-1)
			if w.busy {
				w.busy = false
				continue
			}
		}
		if !s.retire() {
			return false
		}
		w.busy = true // kept on: linger another full tick
	}
}

// passWake is called by a worker that took a job after it stopped counting
// as spinning, or after it was woken. Every dispatch that saw it spinning
// skipped the wake-up, and may have pushed a job other than the one it
// took (likewise, the token that woke it may have been sent for a job
// behind the one it took): if a job is left, wake a parked worker for it,
// as dispatch would have. The queue is checked after the spinning count was
// decremented, so it sees every such job.
func (s *Spawner) passWake() {
	if s.idle.Load() > 0 && !s.queueEmpty() {
		select {
		case s.wake <- struct{}{}:
		default: // enough tokens are pending to wake every worker
		}
	}
}

// retire uncounts the calling worker unless an admitted task still needs
// it. It reports whether the worker must stay (and is counted again).
//
// Why no task is stranded: dispatch increments state, then loads workers
// and sends to the channel only if it saw enough workers; retire decrements
// workers, then loads state (in pending). Go's atomics are sequentially consistent, so
// for a dispatch and a retire racing, either dispatch sees the decremented
// count (and starts a worker itself), or retire sees the task in state and
// the worker stays. Of several workers retiring at once, the last to
// decrement sees the final count. A worker that stays loops back to the
// channel, where the task arrives at the latest when dispatch's send
// completes.
func (s *Spawner) retire() (stay bool) {
	n := s.workers.Add(-1)
	for w := n; s.needWorker(w); w = s.workers.Load() {
		if s.workers.CompareAndSwap(w, w+1) {
			return true
		}
	}
	if n == 0 {
		s.quiet.broadcast()
	}
	return false
}
