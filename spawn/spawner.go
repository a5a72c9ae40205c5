package spawn

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// closedBit is set in Spawner.state by Shutdown. Keeping it in the same word
// as the admitted count lets one CAS both check for shutdown and admit, and
// makes the two race-free against each other (see Shutdown).
const closedBit = 1 << 62

// job is one admitted task on its way to a worker. It travels by value
// through the queue, so admitting a Go task allocates nothing.
type job struct {
	fn  func(context.Context) error // the task of Go, TryGo and GoKey
	h   runner                      // the task of Submit; fn is nil then
	ctx context.Context             // the submit context; nil for TryGo
	key *keyEntry                   // the GoKey key, when keys are tracked
}

// runner is what a Submit handle does for the worker that runs it.
type runner interface {
	// begin moves the handle to running and returns the task's context:
	// derived from timeoutCtx if not nil, else provided by the handle.
	// false means the handle was resolved while queued.
	begin(s *Spawner, timeoutCtx context.Context) (context.Context, bool)
	// run calls the task and keeps its value.
	run(ctx context.Context) error
	// end resolves the handle with err unless it is already resolved.
	end(err error)
}

// outcome is the single accounted state a task ends in.
type outcome uint8

const (
	succeeded outcome = iota
	failed
	panicked
	timedOut
	canceledRunning // started, and its context ended before it returned
	canceledQueued  // resolved without ever running
)

// spinRounds is how many times a worker that ran out of tasks yields and
// polls the queue before it parks: a few microseconds, about the time a
// busy submitter takes to produce the next few tasks.
const spinRounds = 16

// ctxKey marks the contexts handed to tasks with the spawner running them,
// which is how Go recognizes a task submitting into its own spawner.
type ctxKey struct{}

// cacheLine separates counters written by submitters from those written by
// workers, so the two sides do not invalidate each other's cache lines.
type cacheLine [64]byte

// Spawner runs tasks on a bounded set of reused worker goroutines: it is
// what a service uses instead of a bare go statement. Tasks are admitted up
// to MaxConcurrent running plus Queue waiting; beyond that Go waits (bounded
// by its ctx and by MaxWaiters) and TryGo refuses. Workers exist only while
// there is work: an idle spawner holds no goroutine after twice its idle
// timeout (see WithIdleTimeout).
//
// A Spawner must be created with New. All methods are safe for concurrent
// use.
type Spawner struct {
	cfg         config
	maxRunning  int64
	limit       int64 // maxRunning + queue: most tasks admitted at once
	lowWater    int64 // admitted count at or below which waiters are woken
	maxSpinning int64 // most workers polling an empty queue at once
	q           *queue
	wake        chan struct{}   // wakes workers parked in next
	room        chan struct{}   // wakes one caller waiting in Go for room
	closed      chan struct{}   // closed by Shutdown
	taskCtx     context.Context // of Go tasks: valueCtx, canceled by Shutdown
	valueCtx    context.Context // the values of every task's context
	cancelTasks context.CancelCauseFunc
	watched     watchSet // Submit contexts that Shutdown must cancel
	limiter     *rate.Limiter
	guard       *guard
	keys        *keyTable
	quiet       notifier // broadcasts when pending or workers reach zero
	closeOnce   sync.Once
	forced      atomic.Bool // Shutdown's ctx ended: queued tasks are dropped

	// The counters are grouped by who writes them how often, each group
	// on its own cache line, so that a submitter's writes do not evict
	// what workers read per task, and the other way round.

	_ cacheLine
	// state is the number of admitted tasks not yet ended (queued plus
	// running), with closedBit set once Shutdown starts.
	state atomic.Int64

	_           cacheLine
	waiting     atomic.Int64 // callers parked for room or a rate token
	roomWaiting atomic.Int64 // those parked for room

	_         cacheLine
	submitted atomic.Int64
	rejected  atomic.Int64

	_        cacheLine
	workers  atomic.Int64
	idle     atomic.Int64 // workers parked (or parking) in next
	spinning atomic.Int64 // workers polling the queue before parking

	_              cacheLine
	started        atomic.Int64
	succeeded      atomic.Int64
	failed         atomic.Int64
	panicked       atomic.Int64
	timedOut       atomic.Int64
	canceledRun    atomic.Int64
	canceledQueued atomic.Int64
}

// New returns a Spawner configured by opts, or an error naming the first
// invalid option. With no options every limit has its finite default
// (DefaultMaxConcurrent, DefaultQueue, DefaultMaxWaiters), tasks have no
// timeout, admissions no rate limit, and no goroutine is started until the
// first task.
func New(opts ...Option) (*Spawner, error) {
	cfg := defaultConfig()
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("spawn: option %d is nil", i)
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	cfg.hooks = cfg.logHooks()
	s := &Spawner{
		cfg:         cfg,
		maxRunning:  int64(cfg.maxConcurrent),
		limit:       int64(cfg.maxConcurrent + cfg.queue),
		lowWater:    int64(cfg.maxConcurrent + cfg.queue/2),
		maxSpinning: int64(max(1, runtime.GOMAXPROCS(0)/2)),
		q:           newQueue(cfg.maxConcurrent + cfg.queue),
		wake:        make(chan struct{}, cfg.maxConcurrent),
		room:        make(chan struct{}, 1),
		closed:      make(chan struct{}),
	}
	s.valueCtx = context.WithValue(context.Background(), ctxKey{}, s)
	base, cancel := context.WithCancelCause(context.Background())
	s.taskCtx, s.cancelTasks = context.WithValue(base, ctxKey{}, s), cancel
	if cfg.hasRate {
		s.limiter = rate.NewLimiter(cfg.rateLimit, cfg.rateBurst)
	}
	if cfg.guard != nil {
		s.guard = newGuard(*cfg.guard)
	}
	if cfg.maxPerKey > 0 {
		s.keys = newKeyTable(cfg.maxPerKey, cfg.maxKeys)
	}
	return s, nil
}

// Go runs task on a worker. If the spawner is full it waits for room until
// ctx is done, as one of at most MaxWaiters waiting callers, in about FIFO
// order with other waiting callers. It returns nil once the task is
// admitted (the task may still be queued), or why it was rejected, in which
// case task never runs: ErrClosed, ErrOverloaded, ErrRateLimited,
// ErrSaturated when MaxWaiters callers already wait, ErrWouldDeadlock when
// the caller is a task of this spawner (see below), ctx's error wrapping
// context.Cause(ctx) when ctx is or becomes done first, or an error for a
// nil task.
//
// Once callers wait, room is handed to them when the admitted tasks drop to
// MaxConcurrent plus half the queue, not at every finished task: a waiting
// caller may stay parked, and its ctx may end, while the queue has a few
// free places (which TryGo may take).
//
// An admitted task ends in exactly one state of Stats: Panicked if it
// panicked or called runtime.Goexit; else, if its context ended before it
// returned, TimedOut (task timeout) or Canceled (Shutdown giving up, or
// Handle.Cancel), whatever it returned; else Failed or Succeeded by its
// error. Tasks dropped before running are Canceled.
//
// The task's context is not derived from ctx: ctx bounds only the wait to
// be admitted and the time spent queued (a task whose ctx is done when a
// worker picks it up is canceled without running). The task's context
// carries the task timeout, is canceled if Shutdown gives up waiting, and
// marks the task as belonging to this spawner: a task that calls Go with
// that context (or one derived from it) while the spawner is full gets
// ErrWouldDeadlock instead of waiting for a slot it may itself be holding.
// A task that calls Go with an unrelated context is not recognized.
func (s *Spawner) Go(ctx context.Context, task func(context.Context) error) error {
	return s.submit(ctx, job{fn: task, ctx: ctx}, "", false, true)
}

// TryGo runs task on a worker if the spawner can admit it right now. It
// never blocks: it returns nil once the task is admitted, or ErrSaturated,
// ErrRateLimited, ErrOverloaded or ErrClosed. Rejection costs a few atomic
// operations and no allocation.
func (s *Spawner) TryGo(task func(context.Context) error) error {
	return s.submit(context.Background(), job{fn: task}, "", false, false)
}

// GoKey is Go for a task that belongs to key (a tenant, a client address).
// With WithPerKey each key may have at most maxPerKey tasks running, queued
// or waiting for room, and a key over its share is rejected at once with
// ErrKeyLimit rather than waiting, as is a new key when the key table is
// full. Without WithPerKey the key is ignored.
func (s *Spawner) GoKey(ctx context.Context, key string, task func(context.Context) error) error {
	return s.submit(ctx, job{fn: task, ctx: ctx}, key, s.keys != nil, true)
}

// submit admits j or says why not, waiting for room or a rate token within
// ctx if wait is set. key counts against the per-key limits if keyed.
//
// The task is counted in Submitted only once it is admitted or rejected, so
// that a caller parked for room or a rate token, which is in none of the
// end states yet, does not break the accounting invariant of Stats.
func (s *Spawner) submit(ctx context.Context, j job, key string, keyed, wait bool) error {
	if j.fn == nil && j.h == nil {
		return s.reject(errNilTask)
	}
	if s.state.Load()&closedBit != 0 {
		return s.reject(ErrClosed)
	}
	if ctx.Err() != nil {
		return s.reject(ctxError(ctx))
	}
	if s.guard != nil && s.guard.overloaded() {
		return s.reject(ErrOverloaded)
	}
	if s.limiter != nil && !s.limiter.Allow() {
		if !wait {
			return s.reject(ErrRateLimited)
		}
		if err := s.waitRate(ctx); err != nil {
			return s.reject(err)
		}
	}
	if keyed {
		e, err := s.keys.acquire(key)
		if err != nil {
			return s.reject(err)
		}
		j.key = e
	}
	var n int64
	var err error
	if wait {
		n, err = s.admitOrWait(ctx)
	} else {
		n, err = s.tryAdmit()
	}
	if err != nil {
		if j.key != nil {
			s.keys.release(j.key)
		}
		return s.reject(err)
	}
	s.submitted.Add(1)
	s.dispatch(j, n)
	return nil
}

func (s *Spawner) reject(err error) error {
	s.submitted.Add(1)
	s.rejected.Add(1)
	if f := s.cfg.hooks.OnReject; f != nil {
		f(err)
	}
	return err
}

// tryAdmit counts one more admitted task if there is room, and returns the
// new count.
func (s *Spawner) tryAdmit() (int64, error) {
	for {
		v := s.state.Load()
		if v&closedBit != 0 {
			return 0, ErrClosed
		}
		if v >= s.limit {
			return 0, ErrSaturated
		}
		if s.state.CompareAndSwap(v, v+1) {
			return v + 1, nil
		}
	}
}

// admitOrWait admits a task for a caller that may wait for room: it parks
// the caller until there is room, ctx ends or the spawner shuts down.
//
// Parked callers are woken only once the admitted count is at most lowWater
// (the queue at most half full): a task admitted earlier would only wait
// behind the queued ones, and waking a blocked submitter per finished task
// would cost it a park and an unpark per task, where waking it at half a
// queue lets it refill half a queue at full speed. With no queue, any room
// wakes a waiter. So that the room is not taken by later callers while
// waiters sleep, a caller that finds others waiting queues up behind them
// (TryGo, which never waits, may still take the room).
func (s *Spawner) admitOrWait(ctx context.Context) (int64, error) {
	if s.roomWaiting.Load() == 0 {
		if n, err := s.tryAdmit(); err != ErrSaturated {
			return n, err
		}
	}
	if s.isOwnTask(ctx) {
		// Never park a task of this spawner: it may hold the slot it
		// would wait for. It gets room if there is any.
		n, err := s.tryAdmit()
		if err == ErrSaturated {
			err = ErrWouldDeadlock
		}
		return n, err
	}
	if !s.addWaiter() {
		n, err := s.tryAdmit()
		if err == ErrSaturated {
			err = errWaitersFull
		}
		return n, err
	}
	s.roomWaiting.Add(1)
	defer func() {
		s.roomWaiting.Add(-1)
		s.waiting.Add(-1)
	}()
	woken := false
	for {
		// We counted ourselves in roomWaiting before this check, and a
		// finishing task decrements state before it loads roomWaiting
		// (see end). With sequentially consistent atomics at least one
		// side sees the other: either we see the count at lowWater or
		// below and try, or the task that brought it there sees us and
		// sends a token on room. If the count is above lowWater, the
		// admitted tasks will bring it down (the last one to zero) and
		// wake us.
		if woken || s.pending() <= s.lowWater {
			n, err := s.tryAdmit()
			if err == nil {
				// A token stands for "room appeared", not for one slot,
				// and tokens coalesce in room's one-slot buffer: pass it
				// on while room remains, so waiters drain in a chain.
				if n < s.limit && s.roomWaiting.Load() > 1 {
					s.signalRoom()
				}
				return n, nil
			}
			if err != ErrSaturated {
				return 0, err
			}
		}
		select {
		case <-s.room:
			woken = true
		case <-ctx.Done():
			return 0, ctxError(ctx)
		case <-s.closed:
			return 0, ErrClosed
		}
	}
}

// waitRate waits for a rate token as one of the MaxWaiters waiters.
func (s *Spawner) waitRate(ctx context.Context) error {
	if !s.addWaiter() {
		return ErrRateLimited
	}
	defer s.waiting.Add(-1)
	r := s.limiter.Reserve()
	if !r.OK() {
		return ErrRateLimited
	}
	d := r.Delay()
	if d == 0 {
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		r.Cancel()
		return errRateTooLate
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctxError(ctx)
	case <-s.closed:
		r.Cancel()
		return ErrClosed
	}
}

func (s *Spawner) addWaiter() bool {
	for {
		w := s.waiting.Load()
		if w >= int64(s.cfg.maxWaiters) {
			return false
		}
		if s.waiting.CompareAndSwap(w, w+1) {
			return true
		}
	}
}

// signalRoom wakes a caller waiting for room, and reports whether it sent
// a token (rather than finding one pending, whose taker passes it on).
func (s *Spawner) signalRoom() bool {
	select {
	case s.room <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s *Spawner) isOwnTask(ctx context.Context) bool {
	owner, _ := ctx.Value(ctxKey{}).(*Spawner)
	return owner == s
}

// dispatch hands an admitted job to a worker. admitted is the admitted count
// including j, as seen right after admitting it.
func (s *Spawner) dispatch(j job, admitted int64) {
	for {
		w := s.workers.Load()
		if w >= s.maxRunning || w >= admitted {
			// Enough workers exist for every admitted task (or the cap is
			// reached); each either takes j from the queue or, if it is
			// retiring, re-checks in retire and stays. The queue never
			// overflows: it holds at most the admitted tasks.
			s.q.push(j)
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
	return w < s.maxRunning && w < s.pending()
}

func (s *Spawner) pending() int64 { return s.state.Load() &^ closedBit }

// worker runs j, then whatever the queue holds, until it has been idle for
// a whole tick of its idle ticker (or the spawner is closed) and no admitted
// task needs it.
func (s *Spawner) worker(j job) {
	w := workerState{busy: true}
	retired := false
	defer func() {
		if w.tick != nil {
			w.tick.Stop()
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
			s.execute(&j)
			w.busy = true
		}
		var ok bool
		if j, ok = s.next(&w); !ok {
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
}

// next returns the next job, or false once the worker has retired.
func (s *Spawner) next(w *workerState) (job, bool) {
	woken := false
	for {
		if j, ok := s.q.pop(); ok {
			if woken {
				// The wake token may have been sent for a job behind
				// this one: a job whose pusher had claimed its slot
				// but not yet published it kept an earlier woken
				// worker from reaching the later job.
				s.passWake()
			}
			return j, true
		}
		if s.state.Load()&closedBit != 0 {
			// Closed: no lingering. If retire keeps us, a job is being
			// pushed; let its pusher run.
			if !s.retire() {
				return job{}, false
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
				if j, ok := s.q.pop(); ok {
					s.spinning.Add(-1)
					s.passWake()
					return j, true
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
		if j, ok := s.q.pop(); ok {
			s.idle.Add(-1)
			s.passWake()
			return j, true
		}
		if w.tick == nil {
			w.tick = time.NewTicker(s.cfg.idleTimeout)
		}
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
			return job{}, false
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
	if s.idle.Load() > 0 && !s.q.empty() {
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
// workers, then loads state. Go's atomics are sequentially consistent, so
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

// execute runs one admitted job and accounts for it exactly once.
func (s *Spawner) execute(j *job) {
	if s.forced.Load() {
		s.end(j, canceledQueued, ErrShutdown)
		return
	}
	if j.ctx != nil && j.ctx.Err() != nil {
		s.end(j, canceledQueued, ctxError(j.ctx))
		return
	}
	ctx := s.taskCtx
	var cancel context.CancelFunc
	if s.cfg.taskTimeout > 0 {
		// Only here does a task cost a context allocation and a timer.
		ctx, cancel = context.WithTimeoutCause(ctx, s.cfg.taskTimeout, ErrTaskTimeout)
	}
	if j.h != nil {
		var timeoutCtx context.Context
		if cancel != nil {
			timeoutCtx = ctx
		}
		var ok bool
		if ctx, ok = j.h.begin(s, timeoutCtx); !ok {
			if cancel != nil {
				cancel()
			}
			s.end(j, canceledQueued, errCanceled)
			return
		}
	}
	s.started.Add(1)
	returned := false
	defer func() {
		if returned {
			return
		}
		// The task panicked, or called runtime.Goexit, in which case
		// recover returns nil and the worker goroutine keeps unwinding
		// after this function (worker's deferred function replaces it).
		pe := &PanicError{Value: recover(), Stack: debug.Stack()}
		if pe.Value == nil {
			pe.Value = ErrGoexit
		}
		if cancel != nil {
			cancel()
		}
		if f := s.cfg.hooks.OnPanic; f != nil {
			f(pe)
		}
		s.end(j, panicked, pe)
	}()
	var err error
	if j.h != nil {
		err = j.h.run(ctx)
	} else {
		err = j.fn(ctx)
	}
	returned = true

	oc := succeeded
	if ctx.Err() != nil {
		// The task's context ended before it returned: it did not finish
		// in time, whatever it returned.
		if context.Cause(ctx) == ErrTaskTimeout {
			oc = timedOut
			if err == nil {
				err = errTimedOut
			}
		} else {
			oc = canceledRunning
			if err == nil {
				err = ctxError(ctx)
				if s.forced.Load() && !errors.Is(err, ErrShutdown) {
					err = errShutdownRunning
				}
			}
		}
	} else if err != nil {
		oc = failed
	}
	if cancel != nil {
		cancel()
	}
	s.end(j, oc, err)
}

// end accounts for a job that ended in oc, resolves its handle and key, and
// releases its admission slot last, so that once Wait sees no admitted task
// every counter, handle and hook is settled.
func (s *Spawner) end(j *job, oc outcome, err error) {
	switch oc {
	case succeeded:
		s.succeeded.Add(1)
	case failed:
		s.failed.Add(1)
	case panicked:
		s.panicked.Add(1)
	case timedOut:
		s.timedOut.Add(1)
	case canceledRunning:
		s.canceledRun.Add(1)
	case canceledQueued:
		s.canceledQueued.Add(1)
	}
	if j.h != nil {
		j.h.end(err)
	}
	if j.key != nil {
		s.keys.release(j.key)
	}
	if f := s.cfg.hooks.OnDone; f != nil {
		f(err)
	}
	n := s.state.Add(-1) &^ closedBit
	if n <= s.lowWater && s.roomWaiting.Load() > 0 && s.signalRoom() {
		// The woken caller was queued to run next on this processor,
		// behind this worker, which may have a queue to drain first.
		// Yield, so that it refills the queue while workers drain it.
		runtime.Gosched()
	}
	if n == 0 {
		s.quiet.broadcast()
	}
}

// Wait blocks until no task is running or queued, or ctx is done, in which
// case it returns ctx's error wrapping context.Cause(ctx). Tasks submitted
// meanwhile extend the wait. Wait does not stop admissions, and idle workers
// may linger up to the idle timeout after it returns (Shutdown ends them).
// Called with the context of one of this spawner's tasks it returns
// ErrWouldDeadlock, since it would wait for its caller.
func (s *Spawner) Wait(ctx context.Context) error {
	if s.isOwnTask(ctx) {
		return ErrWouldDeadlock
	}
	return s.await(ctx, func() bool { return s.pending() == 0 })
}

// Shutdown stops admissions (submissions from now on get ErrClosed, callers
// waiting in Go are woken with ErrClosed), then waits for queued and running
// tasks to finish and for every worker goroutine to exit, and returns nil.
//
// If ctx ends first, Shutdown gives up: it cancels running tasks' contexts
// with cause ErrShutdown, resolves every still-queued task with ErrShutdown
// without running it (counted as Canceled), and returns ctx's error wrapping
// context.Cause(ctx). Tasks that ignore their context are then still
// running; call Wait or Shutdown again to wait for them. Calling Shutdown
// again after it returned nil returns nil at once. Called with the context
// of one of this spawner's tasks it stops admissions and returns
// ErrWouldDeadlock at once, since it would wait for its caller.
func (s *Spawner) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		// Admission increments state and then checks closedBit in the
		// same word, so after this Or no task can be admitted, and every
		// task admitted before it is counted in the state we wait on.
		s.state.Or(closedBit)
		close(s.closed)
		// Wake parked workers so they retire now. Workers check closedBit
		// before parking; one that parks after this loop finds the
		// buffer full of tokens, one parked before is handed one.
		for {
			select {
			case s.wake <- struct{}{}:
				continue
			default:
			}
			break
		}
	})
	if s.isOwnTask(ctx) {
		return ErrWouldDeadlock
	}
	err := s.await(ctx, func() bool { return s.pending() == 0 && s.workers.Load() == 0 })
	if err == nil {
		return nil
	}
	s.forced.Store(true)
	// Cancel the registered Submit contexts before the base context: an
	// unregistered one reports the base's cancellation in Err, and must
	// not before the registered ones' Done channels are closed.
	s.cancelWatched()
	s.cancelTasks(ErrShutdown)
	// Resolve the queue now rather than when busy workers get to it; any
	// job taken concurrently by a worker is dropped there (forced is set).
	for {
		j, ok := s.q.pop()
		if !ok {
			return err
		}
		s.end(&j, canceledQueued, ErrShutdown)
	}
}

// await waits until cond holds or ctx is done.
func (s *Spawner) await(ctx context.Context, cond func() bool) error {
	for {
		// Arming before checking pairs with the signalers, which change
		// their counter before looking at the armed flag.
		ch := s.quiet.arm()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctxError(ctx)
		}
	}
}

// notifier is a broadcast that costs its signalers one atomic load while
// nobody waits on it.
type notifier struct {
	armed atomic.Bool
	mu    sync.Mutex
	ch    chan struct{}
}

// arm returns a channel closed by the next broadcast.
func (n *notifier) arm() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	n.armed.Store(true)
	return n.ch
}

func (n *notifier) broadcast() {
	if !n.armed.Load() {
		return
	}
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.armed.Store(false)
	n.mu.Unlock()
}
