package timeout

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Watchdog finds work that has stopped making progress. Work registers
// with Track, calls Token.Beat whenever it makes progress and Token.Done
// when it ends; a Token that goes stallAfter without a Beat is stuck. Stuck
// work is listed by Stuck, passed to the WithOnStuck callback once per
// stall and, with WithCancelStalled, has its context cancelled with a cause
// naming it. The watchdog never exits the process.
//
// One goroutine checks every Token on a coarse ticker (stallAfter/8,
// between 1ms and 1s), so watching costs no timer per Token, and it
// publishes a coarse clock that Beat copies: a Beat is at most one atomic
// store and reads no clock. A stall is never reported before stallAfter has
// really passed since the last Beat, however late the ticks come, and is
// reported within stallAfter plus two ticks when they come on time.
//
// Use NewWatchdog and Close it when done; Close stops the goroutine. A
// zero Watchdog tracks Tokens but never checks them, and its Close returns
// at once. A Watchdog is safe for concurrent use.
type Watchdog struct {
	cfg   watchdogConfig
	tick  time.Duration
	epoch time.Time

	// now is nanoseconds since epoch as of the latest tick: the coarse
	// clock that Track and Beat read instead of calling time.Now. A Token
	// whose last Beat stored a value below cutoff is stuck.
	now    atomic.Int64
	cutoff atomic.Int64
	marks  []mark // owned by loop

	mu       sync.Mutex
	tokens   []*Token // unordered; each Token knows its index
	tracked  uint64
	stalls   uint64
	canceled uint64

	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

// Token is one piece of tracked work. Its methods may be called from any
// goroutine. Methods on the zero Token do nothing.
type Token struct {
	w        *Watchdog
	name     string
	start    int64
	lastBeat atomic.Int64
	cancel   context.CancelCauseFunc
	pcs      []uintptr

	// Guarded by w.mu.
	idx      int   // index in w.tokens; -1 once done
	reported int64 // lastBeat when last reported stuck; -1 if never
}

// Stuck describes one stuck Token.
type Stuck struct {
	Name      string        // the name given to Track
	Age       time.Duration // time since Track
	SinceBeat time.Duration // time since the last Beat, or since Track if none
	// Stack is where Track was called, one "function\n\tfile:line" entry
	// per frame, innermost first; empty unless the Watchdog was built
	// WithStacks(true).
	Stack string
}

// WatchdogStats is a snapshot of a Watchdog's counters.
type WatchdogStats struct {
	Tracking int    // Tokens tracked now
	Tracked  uint64 // Track calls since NewWatchdog
	Stalls   uint64 // stalls found; a Token that stalls, beats and stalls again counts twice
	Canceled uint64 // contexts cancelled because their Token stalled
}

// NewWatchdog returns a running Watchdog. By default work is stuck after
// 10s without a Beat, stalls are only reported (not cancelled), and no
// stacks are recorded. It returns an error wrapping ErrInvalid for a bad
// option. The watchdog's goroutine and ticker start here, so in a
// testing/synctest bubble NewWatchdog must be called inside the bubble.
func NewWatchdog(opts ...WatchdogOption) (*Watchdog, error) {
	cfg := watchdogConfig{stallAfter: defaultStallAfter}
	for _, o := range opts {
		if o == nil {
			return nil, invalid("timeout.NewWatchdog: nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	tick := min(max(cfg.stallAfter/8, time.Millisecond), time.Second)
	w := &Watchdog{
		cfg:     cfg,
		tick:    tick,
		epoch:   time.Now(),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go w.loop()
	return w, nil
}

// Track starts watching work called name and returns the context the work
// should use, and its Token. The caller must call Token.Done when the work
// ends. With WithCancelStalled(true) the returned context is a child of
// ctx that is cancelled when the work is stuck, and also by Done; otherwise
// it is ctx itself. After Close, Tokens are still accepted but no longer
// checked. Track panics if ctx is nil and cancellation is on, as
// context.WithCancelCause does.
func (w *Watchdog) Track(ctx context.Context, name string) (context.Context, *Token) {
	now := w.now.Load()
	t := &Token{w: w, name: name, start: now, reported: -1}
	t.lastBeat.Store(now)
	if w.cfg.stacks {
		t.pcs = callers()
	}
	if w.cfg.cancel {
		ctx, t.cancel = context.WithCancelCause(ctx)
	}
	w.mu.Lock()
	t.idx = len(w.tokens)
	w.tokens = append(w.tokens, t)
	w.tracked++
	w.mu.Unlock()
	return ctx, t
}

func callers() []uintptr {
	var buf [32]uintptr
	// Skip runtime.Callers, callers and Track.
	n := runtime.Callers(3, buf[:])
	return slices.Clone(buf[:n])
}

// Beat records progress. It reads the watchdog's coarse clock and stores
// it in the Token, and never blocks, so it may be called in tight loops.
func (t *Token) Beat() {
	if w := t.w; w != nil {
		// Between two ticks the clock does not move: skipping the store
		// then makes most Beats in a tight loop two plain loads, and
		// spares the watchdog's scan a cache line bouncing between cores.
		if now := w.now.Load(); t.lastBeat.Load() != now {
			t.lastBeat.Store(now)
		}
	}
}

// Done stops watching the work and, if Track derived a context, cancels
// it to release its resources. Calling Done more than once is harmless.
func (t *Token) Done() {
	w := t.w
	if w == nil {
		return
	}
	w.mu.Lock()
	if i := t.idx; i >= 0 {
		last := len(w.tokens) - 1
		moved := w.tokens[last]
		w.tokens[i] = moved
		moved.idx = i
		w.tokens[last] = nil
		w.tokens = w.tokens[:last]
		t.idx = -1
		// Give memory back after a burst, at amortised O(1) per Done.
		if c := cap(w.tokens); c > 1024 && len(w.tokens) < c/4 {
			w.tokens = slices.Clone(w.tokens)
		}
	}
	w.mu.Unlock()
	if t.cancel != nil {
		t.cancel(nil)
	}
}

// mark is one value published on the coarse clock and the clock's
// reading just after it was published.
type mark struct{ val, after int64 }

func (w *Watchdog) loop() {
	defer close(w.stopped)
	ticker := time.NewTicker(w.tick)
	defer ticker.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-ticker.C:
		}
		now := int64(time.Since(w.epoch))
		w.now.Store(now)
		w.marks = append(w.marks, mark{val: now, after: int64(time.Since(w.epoch))})
		w.check(now, w.advanceCutoff(now))
	}
}

// advanceCutoff moves the cutoff to the latest published value m.val
// whose m.after is at least stallAfter ago. A Beat that stored a value
// below m.val loaded the clock before m was published, so before m.after:
// its Token has really gone stallAfter without a Beat, however late this
// goroutine ran. Reasoning on publication times rather than on the values
// alone is what keeps a starved watchdog from reporting every Token at
// once when it finally runs.
func (w *Watchdog) advanceCutoff(now int64) int64 {
	limit := now - int64(w.cfg.stallAfter)
	i := -1
	for j, m := range w.marks {
		if m.after > limit {
			break
		}
		i = j
	}
	if i < 0 {
		return w.cutoff.Load()
	}
	cutoff := w.marks[i].val
	w.marks = append(w.marks[:0], w.marks[i+1:]...)
	w.cutoff.Store(cutoff)
	return cutoff
}

type stall struct {
	t *Token
	s Stuck
}

func (w *Watchdog) check(now, cutoff int64) {
	var found []stall
	w.mu.Lock()
	for _, t := range w.tokens {
		last := t.lastBeat.Load()
		if last >= cutoff || last == t.reported {
			continue
		}
		t.reported = last
		found = append(found, stall{t, t.stuckAt(now, last)})
	}
	w.stalls += uint64(len(found))
	w.mu.Unlock()

	// Cancel and call back outside the lock: neither may hold up Track
	// and Done, and the callback may call Stuck.
	for _, f := range found {
		if f.t.cancel != nil {
			f.t.cancel(fmt.Errorf("%w: %s made no progress for %v (running for %v)",
				ErrStalled, quoteName(f.s.Name), f.s.SinceBeat, f.s.Age))
			w.mu.Lock()
			w.canceled++
			w.mu.Unlock()
		}
		if w.cfg.onStuck != nil {
			f.s.Stack = formatStack(f.t.pcs)
			w.cfg.onStuck(f.s)
		}
	}
}

func quoteName(name string) string {
	if name == "" {
		return "unnamed work"
	}
	return fmt.Sprintf("%q", name)
}

func (t *Token) stuckAt(now, last int64) Stuck {
	return Stuck{
		Name:      t.name,
		Age:       time.Duration(now - t.start),
		SinceBeat: time.Duration(now - last),
	}
}

// Stuck returns the work that is stuck now, longest-running first. Times
// are measured on the watchdog's coarse clock, so they may lag the real
// ones by up to a tick.
func (w *Watchdog) Stuck() []Stuck {
	now, cutoff := w.now.Load(), w.cutoff.Load()
	var found []stall
	w.mu.Lock()
	for _, t := range w.tokens {
		if last := t.lastBeat.Load(); last < cutoff {
			found = append(found, stall{t, t.stuckAt(now, last)})
		}
	}
	w.mu.Unlock()
	out := make([]Stuck, len(found))
	for i, f := range found {
		out[i] = f.s
		out[i].Stack = formatStack(f.t.pcs)
	}
	slices.SortFunc(out, func(a, b Stuck) int {
		return cmp.Or(cmp.Compare(b.Age, a.Age), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func formatStack(pcs []uintptr) string {
	if len(pcs) == 0 {
		return ""
	}
	var b strings.Builder
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		fmt.Fprintf(&b, "%s\n\t%s:%d\n", f.Function, f.File, f.Line)
		if !more {
			break
		}
	}
	return b.String()
}

// Stats returns a snapshot of the Watchdog's counters.
func (w *Watchdog) Stats() WatchdogStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return WatchdogStats{
		Tracking: len(w.tokens),
		Tracked:  w.tracked,
		Stalls:   w.stalls,
		Canceled: w.canceled,
	}
}

// Close stops the watchdog's goroutine and waits for it to exit, including
// a WithOnStuck callback in progress (so the callback must not call
// Close). It does not cancel tracked work. Close is idempotent and always
// returns nil.
func (w *Watchdog) Close() error {
	if w.stopped == nil {
		return nil // a zero Watchdog has no goroutine to stop
	}
	w.closeOnce.Do(func() {
		close(w.stop)
	})
	<-w.stopped
	return nil
}
