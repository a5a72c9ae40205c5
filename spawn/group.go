package spawn

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Group is a batch of tasks run on a Spawner's workers, under its caps,
// whose errors and panics come back from Wait: it is errgroup.Group (or
// conc's ErrorPool) for a bounded, shared spawner. Where Spawner.Wait
// waits for the whole spawner and reports no error, Group.Wait waits for
// this group's tasks only and returns the first task error (every one with
// WithAllErrors), a panic included as a *PanicError.
//
// Groups nest: a task may create a group with its own context and Wait on
// it, even in a full spawner. Go called on such a group runs the task
// right away on the calling task's goroutine when the spawner has no room
// (the caller holds a worker that the task would wait for), and Wait runs
// the group's still-queued tasks itself instead of waiting for a worker
// (help-while-waiting, as fork-join pools do), so nesting never deadlocks
// on the spawner's caps.
//
// A Group is created with NewGroup (the zero value reports an error from
// every method) and must not be copied. All methods are
// safe for concurrent use, including Go from the group's own tasks.
type Group struct {
	s         *Spawner
	ctx       context.Context // the group's context, returned by NewGroup
	taskCtx   *groupCtx       // ctx marked as a task context of s
	mark      *groupMark      // the submit context of the group's jobs
	cancel    context.CancelCauseFunc
	stop      func() bool // unhooks ctx from the spawner's cancellation
	cancelErr bool        // WithCancelOnError
	allErrs   bool        // WithAllErrors
	nested    bool        // created with a context of one of s's tasks
	initErr   error       // nil ctx or spawner: every call fails with it

	// The tasks of the group in flight are entered less ended (see
	// pending): the submitter writes one line per task and the workers
	// another, as the spawner's own counters do, instead of both
	// contending for one word. quiet is on the workers' line because
	// every ending task reads its armed flag, and only Wait writes it.
	_                  cacheLine
	entered            atomic.Int64 // tasks counted in, before admission
	admitted, rejected atomic.Int64 // for Stats
	_                  cacheLine
	ended              atomic.Int64 // entered tasks that ended or were refused
	failed             atomic.Int64 // for Stats
	quiet              notifier     // broadcasts when pending reaches zero or a task is queued (nested)
	_                  cacheLine

	mu     sync.Mutex
	err    error        // the first error
	errs   []error      // every error, with WithAllErrors
	queued []*groupTask // nested groups: tasks that may still be queued
}

// GroupOption configures a Group.
type GroupOption func(*Group)

// WithCancelOnError makes the first task error (or panic) cancel the
// group's context, with that error as its cause, as errgroup.WithContext
// does. Tasks already running see their context canceled; tasks not yet
// admitted are refused by Go.
func WithCancelOnError() GroupOption { return func(g *Group) { g.cancelErr = true } }

// WithAllErrors makes Wait return errors.Join of every task error, in the
// order the tasks ended, instead of the first one.
func WithAllErrors() GroupOption { return func(g *Group) { g.allErrs = true } }

// NewGroup returns a Group that runs its tasks on s, and the group's
// context, derived from ctx: it carries ctx's values and is canceled when
// ctx is, when Wait returns, on the first error with WithCancelOnError, and
// with cause ErrShutdown when s gives up on its tasks (Shutdown's ctx
// ending, or Close). Each task's context is the group's context (with the
// task timeout of s, if any).
//
// A nil ctx or s is reported by every later call: Go, TryGo and Wait return
// ErrNilContext or a nil-spawner error, and the returned context is
// already canceled with that error as its cause.
func NewGroup(ctx context.Context, s *Spawner, opts ...GroupOption) (*Group, context.Context) {
	g := &Group{s: s}
	for _, opt := range opts {
		if opt != nil {
			opt(g)
		}
	}
	switch {
	case ctx == nil:
		g.initErr = ErrNilContext
	case s == nil:
		g.initErr = errNilSpawner
	}
	if g.initErr != nil {
		gctx, cancel := context.WithCancelCause(context.Background())
		cancel(g.initErr)
		g.ctx, g.cancel, g.stop = gctx, cancel, func() bool { return false }
		return g, gctx
	}
	g.ctx, g.cancel = context.WithCancelCause(ctx)
	// s.taskCtx is a standard cancelable context: AfterFunc registers
	// with it and starts no goroutine until it is canceled.
	g.stop = context.AfterFunc(s.taskCtx, func() { g.cancel(ErrShutdown) })
	g.taskCtx = &groupCtx{Context: g.ctx, s: s, g: g}
	g.mark = &groupMark{gc: g.taskCtx}
	g.nested = s.isOwnTask(ctx)
	return g, g.ctx
}

// Go runs task on the spawner as part of g. If the spawner is full it
// waits for room like Spawner.Go, bounded by the group's context: it
// returns nil once the task is admitted, or why it was not, in which case
// task never runs and is not part of g: the group context's error (its
// cause is the first error under WithCancelOnError, or ctx's cause),
// ErrClosed, ErrSaturated, ErrRateLimited, ErrOverloaded, or an error for
// a nil task or group. In a nested group (see Group) a task that finds no
// room runs on the caller's goroutine before Go returns.
//
// An admitted task always runs, even if the group's context is canceled
// before a worker picks it up (it then sees a canceled context), unless
// the spawner gives up on it (Shutdown's ctx ending, Close): then its error
// is ErrShutdown.
func (g *Group) Go(task func(context.Context) error) error {
	return g.goTask(task, true)
}

// TryGo is Go that never waits for room: it returns ErrSaturated (or
// another rejection error) at once when the spawner cannot admit the task
// right now, also in a nested group.
func (g *Group) TryGo(task func(context.Context) error) error {
	return g.goTask(task, false)
}

func (g *Group) goTask(task func(context.Context) error, wait bool) error {
	if g == nil || g.ctx == nil {
		return errNilGroup
	}
	if g.initErr != nil {
		return g.initErr
	}
	if task == nil {
		return g.s.reject(errNilTask)
	}
	// Counted before admission, so that a Wait running concurrently
	// cannot miss a task admitted before it returns.
	g.entered.Add(1)
	if !g.nested {
		// The common case costs no allocation: the job carries the
		// task and the group's task context, by which the worker finds
		// the group (see Spawner.account).
		j := job{fn: task, ctx: g.mark}
		err := g.s.admit(g.ctx, &j, "", false, wait)
		if err != nil {
			g.taskDone()
			g.rejected.Add(1)
			return g.s.reject(err)
		}
		g.admitted.Add(1)
		return nil
	}
	// A nested group's tasks may be run by a helping Wait: each needs a
	// claim of its own.
	t := &groupTask{g: g, fn: task}
	j := job{h: t}
	err := g.s.admit(g.ctx, &j, "", false, wait)
	if err == nil {
		g.admitted.Add(1)
		if g.nested {
			g.track(t)
		}
		return nil
	}
	if err == ErrWouldDeadlock && wait {
		// A task of s, in a full s: waiting could hold the very slot
		// the task would wait for. Run it here instead: the caller's
		// slot covers it.
		g.admitted.Add(1)
		t.claim(claimedByHelper)
		g.s.runInline(&j)
		return nil
	}
	g.taskDone()
	g.rejected.Add(1)
	return g.s.reject(err)
}

// Wait blocks until every task of g admitted so far has ended, cancels the
// group's context, and returns the first task error (errors.Join of all of
// them with WithAllErrors), or nil. A task that panicked or called
// runtime.Goexit contributes a *PanicError with its stack (errors.Is(err,
// ErrPanic)); the worker and the process survive. Tasks may call Go while
// Wait waits; tasks of other groups and of the spawner do not delay it.
//
// In a nested group (see Group), Wait runs the group's still-queued tasks
// itself.
func (g *Group) Wait() error {
	if g == nil || g.ctx == nil {
		return errNilGroup
	}
	if g.initErr != nil {
		return g.initErr
	}
	for {
		// Arming before checking pairs with taskDone and track, which
		// change pending or the queued list before they broadcast.
		ch := g.quiet.arm()
		if g.nested {
			g.help()
		}
		if g.pending() == 0 {
			break
		}
		<-ch
	}
	g.mu.Lock()
	err := g.err
	if g.allErrs {
		err = errors.Join(g.errs...)
	}
	g.mu.Unlock()
	g.stop()
	g.cancel(err)
	return err
}

// track records t as possibly queued, for a helping Wait, dropping the
// tasks already claimed so that the list stays proportional to the tasks
// in flight.
func (g *Group) track(t *groupTask) {
	g.mu.Lock()
	if len(g.queued) >= 64 && len(g.queued) == cap(g.queued) {
		live := g.queued[:0]
		for _, q := range g.queued {
			if q.claimed.Load() == unclaimed {
				live = append(live, q)
			}
		}
		clear(g.queued[len(live):])
		g.queued = live
	}
	g.queued = append(g.queued, t)
	g.mu.Unlock()
	g.quiet.broadcast()
}

// help runs, on the calling goroutine, every task of g that no worker has
// claimed yet. Its slot is released when a worker dequeues the job.
func (g *Group) help() {
	for {
		g.mu.Lock()
		batch := g.queued
		g.queued = nil
		g.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for _, t := range batch {
			if t.claim(claimedByHelper) {
				g.s.run(&job{h: t}, nil)
			}
		}
	}
}

// record keeps err as a task's result.
func (g *Group) record(err error) {
	if err == nil {
		return
	}
	g.failed.Add(1)
	g.mu.Lock()
	first := g.err == nil
	if first {
		g.err = err
	}
	if g.allErrs {
		g.errs = append(g.errs, err)
	}
	g.mu.Unlock()
	if first && g.cancelErr {
		g.cancel(err)
	}
}

// GroupStats is a snapshot of a Group's counters: every call of Go or TryGo
// with a task is Admitted or Rejected; of the admitted, Pending have not
// ended yet and Failed ended with an error or a panic.
type GroupStats struct {
	Admitted, Rejected int64
	Pending            int64
	Failed             int64
}

// Stats returns g's counters; a nil or zero Group reports zeros.
func (g *Group) Stats() GroupStats {
	if g == nil {
		return GroupStats{}
	}
	return GroupStats{
		Admitted: g.admitted.Load(),
		Rejected: g.rejected.Load(),
		Pending:  g.pending(),
		Failed:   g.failed.Load(),
	}
}

// taskDone ends one entered task. Wait arms quiet before it reads
// pending, and taskDone counts the end before it reads the armed flag: with
// sequentially consistent atomics one of them sees the other.
func (g *Group) taskDone() {
	g.ended.Add(1)
	if g.quiet.armed.Load() && g.pending() == 0 {
		g.quiet.broadcast()
	}
}

// pending returns the tasks entered and not yet ended. ended is loaded
// first: every end counted was of a task entered by then, so the result is
// never below the tasks in flight when entered is loaded, and zero means
// none was.
func (g *Group) pending() int64 {
	e := g.ended.Load()
	return g.entered.Load() - e
}

// groupTask is one task of a Group, as the spawner runs it.
type groupTask struct {
	g       *Group
	fn      func(context.Context) error
	claimed atomic.Uint32
	ran     bool  // fn returned; written and read by the goroutine running it
	err     error // what fn returned
}

func (t *groupTask) claim(by uint32) bool { return t.claimed.CompareAndSwap(unclaimed, by) }

func (t *groupTask) base(*Spawner, context.Context) context.Context {
	return t.g.taskCtx
}

func (t *groupTask) begin(_ *Spawner, timeoutCtx context.Context) (context.Context, bool) {
	if timeoutCtx != nil {
		return timeoutCtx, true
	}
	return t.g.taskCtx, true
}

func (t *groupTask) run(ctx context.Context) error {
	t.err = t.fn(ctx)
	t.ran = true
	return t.err
}

// end records what the task itself returned, not how the spawner counted
// it: a task that returns nil after the group's context was canceled did
// not fail (as with errgroup), though Stats counts it as Canceled. A task
// that outlived its WithTaskTimeout deadline and returned nil reports the
// timeout.
func (t *groupTask) end(err error) {
	if t.ran && (t.err != nil || !errors.Is(err, ErrTaskTimeout)) {
		err = t.err
	}
	t.g.record(err)
	t.g.taskDone()
}

// groupCtx is the context of a Group's tasks: the group's context, marked
// as a task context of the spawner, so that a task creating a group with it
// gets a nested group, and Go or Wait with it is recognized as a task's.
type groupCtx struct {
	context.Context
	s *Spawner
	g *Group
}

func (c *groupCtx) Value(key any) any {
	if key == (ctxKey{}) {
		return c.s
	}
	return c.Context.Value(key)
}

// groupMark is the submit context of a Group's jobs that are run as plain
// Go jobs: it tells the worker that the job belongs to a group (see
// Spawner.account), and is never handed to a task (the task gets gc), so
// a task that passes its own context to Spawner.Go is not taken for one of
// the group's.
type groupMark struct{ gc *groupCtx }

func (m *groupMark) Deadline() (time.Time, bool) { return m.gc.Deadline() }
func (m *groupMark) Done() <-chan struct{}       { return m.gc.Done() }
func (m *groupMark) Err() error                  { return m.gc.Err() }
func (m *groupMark) Value(key any) any           { return m.gc.Value(key) }
