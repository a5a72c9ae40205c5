package spawn

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/garrison-go/garrison/internal/adaptive"
	"golang.org/x/time/rate"
)

// closedBit is set in Spawner.state by Shutdown. Keeping it in the same word
// as the admitted count lets one CAS both check for shutdown and admit, and
// makes the two race-free against each other (see Shutdown). The count
// below it would take 2⁶² admissions, centuries at 10⁸ a second, to reach
// it.
const closedBit = 1 << 62

// job is one admitted task on its way to a worker. It travels by value
// through the queue, so admitting a Go task allocates nothing.
type job struct {
	fn  func(context.Context) error // the task of Go, TryGo and GoKey
	h   runner                      // the task of Submit or a Group; fn is nil then
	ctx context.Context             // the submit context, whose values the task sees; nil for TryGo
	key *keyEntry                   // the GoKey key, when keys are tracked
	// enq is when the job was queued (see codel.now), only with
	// WithQueueTarget and only for a job that went through the queue;
	// shedMark once take decided to shed it.
	enq int64
}

// runner is a task with its own state: a Submit handle or a Group task.
// Its job may be run by the worker that dequeues it or, earlier, by a task
// that waits for it (help-while-waiting); claim decides which, once.
type runner interface {
	// claim reports whether by (claimedByWorker or claimedByHelper) is
	// the first to claim the task, and so the one to run and account it.
	claim(by uint32) bool
	// base returns the parent of the task's context when a task timeout
	// must be derived from it; submitCtx is the job's ctx.
	base(s *Spawner, submitCtx context.Context) context.Context
	// begin moves the task to running and returns its context: derived
	// from timeoutCtx if not nil, else provided by the runner. false means
	// the task was resolved while queued.
	begin(s *Spawner, timeoutCtx context.Context) (context.Context, bool)
	// run calls the task and keeps its value.
	run(ctx context.Context) error
	// end resolves the task with err unless it is already resolved.
	end(err error)
}

// ctxKey marks the contexts handed to tasks with the spawner running them,
// which is how Go recognizes a task submitting into its own spawner.
type ctxKey struct{}

// cacheLine separates counters written by submitters from those written by
// workers, so the two sides do not invalidate each other's cache lines.
type cacheLine [64]byte

// Spawner runs tasks on a bounded set of reused worker goroutines: it is
// what a service uses instead of a bare go statement. Tasks are admitted up
// to MaxConcurrent running (or the limit of WithAdaptiveLimit) plus Queue
// waiting, less a reserve for more critical work (see Criticality); beyond
// that Go waits (bounded by its ctx and by MaxWaiters) and TryGo refuses.
// Workers exist only while there is work: an idle spawner holds no
// goroutine after twice its idle timeout (see WithIdleTimeout).
//
// A Spawner must be created with New. All methods are safe for concurrent
// use.
type Spawner struct {
	cfg         config
	maxRunning  int64
	limit       int64           // maxRunning + queue: most tasks admitted at once
	lowWater    int64           // admitted count at or below which waiters are woken
	queueCap    int64           // the Queue option
	lim         *adaptive.Limit // WithAdaptiveLimit, or nil
	cd          *codel          // WithQueueTarget, or nil
	maxSpinning int64           // most workers polling an empty queue at once
	q           *queue
	wake        chan struct{}   // wakes workers parked in next
	tickers     sync.Pool       // stopped idle tickers of retired workers (see idleTicker)
	room        chan struct{}   // wakes one caller waiting in Go for room
	closed      chan struct{}   // closed by Shutdown
	taskCtx     context.Context // of Go tasks without values: marks them, canceled by Shutdown
	cancelTasks context.CancelCauseFunc
	watched     watchSet // Submit contexts that Shutdown must cancel
	limiter     *rate.Limiter
	guard       *guard
	keys        *keyTable
	quiet       notifier // broadcasts when pending or workers reach zero
	closeOnce   sync.Once
	forced      atomic.Bool               // Shutdown's ctx ended: queued tasks are dropped
	lastVals    atomic.Pointer[valuesCtx] // see valuesCtx

	// The counters are grouped by who writes them how often, each group
	// on its own cache line, so that a submitter's writes do not evict
	// what workers read per task, and the other way round.

	_ cacheLine
	// state is the number of tasks admitted since New, with closedBit set
	// once Shutdown starts. It only grows: the tasks in the spawner
	// (queued plus running) are state less released (see pending), so
	// that admission writes a line only submitters write, and a finished
	// task writes one only workers write (released; the starts and the
	// common outcomes are counted on the workers' stripes) instead of
	// both contending for one word: at cap 1000 that word's traffic was
	// a fifth of the spawner's CPU time.
	state atomic.Int64
	// relSeen is a value released had, at most its current one, which
	// admission subtracts from state for an upper bound of the tasks in
	// the spawner without reading the workers' line (see tryAdmit).
	relSeen atomic.Int64

	_           cacheLine
	waiting     atomic.Int64 // callers parked for room or a rate token
	roomWaiting atomic.Int64 // those parked for room

	// Stats' Submitted is not counted apart: it is the admissions (state),
	// the rejections and the tasks run inline, so admitting a task moves
	// one counter, not two.
	_        cacheLine
	rejected atomic.Int64
	inline   atomic.Int64 // tasks run on a waiting task's goroutine (see runInline)
	// rejectedLevel counts ErrSaturated rejections of tasks marked with
	// a criticality, by levelIndex.
	rejectedLevel [3]atomic.Int64

	_        cacheLine
	workers  atomic.Int64
	idle     atomic.Int64 // workers parked (or parking) in next
	spinning atomic.Int64 // workers polling the queue before parking

	_        cacheLine
	released atomic.Int64 // admitted tasks that ended and gave their slot back
	// The rarer outcomes; the common ones, and the starts, are counted on
	// the stripes.
	panicked       atomic.Int64
	timedOut       atomic.Int64
	canceledRun    atomic.Int64
	canceledQueued atomic.Int64
	shed           atomic.Int64

	_          cacheLine
	nextStripe atomic.Uint32 // the stripe of the next worker started
	stripes    [numStripes]stripe
}

// numStripes is how many stripes the per-task counters are spread over.
const numStripes = 8

// stripe holds the counters a worker moves for every task it runs: the
// task's start and its outcome when it returns or fails. Each worker
// counts on the stripe it was given when it started (round robin; a task
// run by a helping caller counts on the first), so that two workers
// running on two cores seldom write the same cache line per task: on one
// line shared by every worker, these three adds crossed between the cores
// with every task and cost a tenth of a tiny task's time at two cores.
// Stats sums the stripes. A task starts and ends on one worker, so on one
// stripe, which is what keeps the running gauge (starts less ends) exact.
type stripe struct {
	started, succeeded, failed atomic.Int64
	// Two cache lines, less the counters, so that no two stripes' counters
	// share a line however the Spawner is aligned.
	_ [2*64 - 3*8]byte
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
	lim, err := newAdaptive(&cfg)
	if err != nil {
		return nil, err
	}
	if n := cfg.maxConcurrent + cfg.queue; n > maxSlots {
		return nil, fmt.Errorf("spawn: MaxConcurrent(%d) + Queue(%d) = %d exceeds %d: the queue is allocated up front, "+
			"%d bytes per slot (%d MiB at this size), so the sum is bounded to keep a typo from allocating gigabytes",
			cfg.maxConcurrent, cfg.queue, n, maxSlots, slotBytes, (uint64(queueSize(n))*slotBytes)>>20)
	}
	cfg.hooks = cfg.logHooks()
	s := &Spawner{
		cfg:         cfg,
		maxRunning:  int64(cfg.maxConcurrent),
		limit:       int64(cfg.maxConcurrent + cfg.queue),
		lowWater:    int64(cfg.maxConcurrent + cfg.queue/2),
		queueCap:    int64(cfg.queue),
		lim:         lim,
		maxSpinning: int64(max(1, runtime.GOMAXPROCS(0)/2)),
		q:           newQueue(cfg.maxConcurrent + cfg.queue),
		wake:        make(chan struct{}, cfg.maxConcurrent),
		room:        make(chan struct{}, 1),
		closed:      make(chan struct{}),
	}
	base, cancel := context.WithCancelCause(context.Background())
	s.taskCtx, s.cancelTasks = context.WithValue(base, ctxKey{}, s), cancel
	if cfg.queueTarget > 0 {
		s.cd = newCodel(cfg.queueTarget, cfg.queueWindow)
	}
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
