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
// The check reads the Tokens without any lock: Track and Done take a short
// lock only to pick or give back a slot in the Tokens' table, so their
// latency does not grow with the number of Tokens. Each slot holds its
// Token's last Beat, so a check reads the table in order and touches a
// Token only when it is stuck. The table's memory follows the peak number
// of Tokens tracked at once: 24 bytes per slot, reused by later Tokens.
//
// Use NewWatchdog and stop it when done: Shutdown waits for the tracked
// work to end first, Close stops the goroutine at once. A zero Watchdog
// tracks Tokens but never checks them, and its Close returns at once. A
// Watchdog is safe for concurrent use.
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

	// The table of Tokens: slot i is chunks[i>>chunkBits][i&chunkMask].
	// mu guards free, the growth of the table, the counts and idle, which
	// Track and Done change under one lock; slots are read and written
	// atomically, so the check reads them without mu. used is the number
	// of slots ever handed out (the part of the table to scan); it is
	// stored after chunks grows, and the check loads it first.
	mu       sync.Mutex
	free     []int32
	used     atomic.Int32
	tracking int
	tracked  uint64
	idle     chan struct{} // closed when tracking drops to zero while Shutdown waits
	chunks   atomic.Pointer[[]*chunk]

	stalls   atomic.Uint64
	canceled atomic.Uint64

	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

const (
	chunkBits = 12
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1
	// maxSlots bounds the table (and so the Tokens tracked at once) well
	// below the range of the int32 slot numbers.
	maxSlots = 1 << 30
)

type chunk [chunkSize]slot

// slot is one entry of the table. Track stores beat before it publishes
// tok, so a check that loads tok sees it. A Beat after Done could land in
// a slot reused by another Token and hide that Token's stall for one
// period; Beat checks that its Token still holds the slot, which leaves
// only a Beat racing Done, a misuse, exposed.
type slot struct {
	tok  atomic.Pointer[Token]
	beat atomic.Int64
	// reported is 1 + beat when last reported stuck, 0 if never; only the
	// watchdog's goroutine writes it. A later Token in the slot needs no
	// reset: a reported beat was below a cutoff, which the coarse clock
	// had passed before that Token's Track read it, so its beats are all
	// above the reported one.
	reported atomic.Int64
}

// Token is one piece of tracked work. Its methods may be called from any
// goroutine. Methods on the zero Token do nothing.
type Token struct {
	w      *Watchdog
	name   string
	start  int64
	entry  *slot // the Token's slot, where Beat stores
	cancel context.CancelCauseFunc
	pcs    []uintptr

	// slot is the index of entry in the table, or -1 once Done; set
	// before t is shared, then guarded by w.mu.
	slot int32
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
// checked. A nil ctx is returned as it is: the work is watched and
// reported, but has no context to cancel (Track never panics).
func (w *Watchdog) Track(ctx context.Context, name string) (context.Context, *Token) {
	now := w.now.Load()
	t := &Token{w: w, name: name, start: now}
	if w.cfg.stacks {
		t.pcs = callers()
	}
	if w.cfg.cancel && ctx != nil {
		ctx, t.cancel = context.WithCancelCause(ctx)
	}
	i := w.takeSlot()
	t.slot = i
	e := w.slotAt(i)
	t.entry = e
	e.beat.Store(now)
	// Published last: the check that loads t from the slot sees the rest.
	e.tok.Store(t)
	return ctx, t
}

// takeSlot returns a free slot, growing the table if none is.
func (w *Watchdog) takeSlot() int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tracking++
	w.tracked++
	if n := len(w.free); n > 0 {
		i := w.free[n-1]
		w.free = w.free[:n-1]
		return i
	}
	i := w.used.Load()
	if i >= maxSlots {
		// A billion Tokens at once: share the last slot rather than fail.
		// The check then sees only one of the Tokens sharing it.
		return i - 1
	}
	var dir []*chunk
	if p := w.chunks.Load(); p != nil {
		dir = *p
	}
	if int(i>>chunkBits) == len(dir) {
		grown := append(dir[:len(dir):len(dir)], new(chunk))
		w.chunks.Store(&grown)
	}
	w.used.Store(i + 1)
	return i
}

func (w *Watchdog) slotAt(i int32) *slot {
	return &(*w.chunks.Load())[i>>chunkBits][i&chunkMask]
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
		if now := w.now.Load(); t.entry.beat.Load() != now && t.entry.tok.Load() == t {
			t.entry.beat.Store(now)
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
	if i := t.slot; i >= 0 {
		// Only the first Done gets here. The slot is emptied before it
		// is freed, so a check that still holds t sees that t is done.
		t.slot = -1
		t.entry.tok.Store(nil)
		w.free = append(w.free, i)
		// Shutdown reads tracking and sets idle under mu too, so the last
		// Done cannot miss it.
		if w.tracking--; w.tracking == 0 && w.idle != nil {
			close(w.idle)
			w.idle = nil
		}
	}
	w.mu.Unlock()
	if t.cancel != nil {
		t.cancel(nil)
	}
}

// each calls f for every slot holding a Token whose last Beat is below
// cutoff, without any lock: the slots are atomic, and a Token loaded from
// one is complete (see Track). The table is read in order and no Token is
// touched here; f checks that t still holds e, last, when it needs to.
func (w *Watchdog) each(cutoff int64, f func(t *Token, e *slot, last int64)) {
	n := w.used.Load()
	p := w.chunks.Load()
	if p == nil {
		return
	}
	dir := *p
	for i := range n {
		e := &dir[i>>chunkBits][i&chunkMask]
		t := e.tok.Load()
		if t == nil {
			continue
		}
		if last := e.beat.Load(); last < cutoff {
			f(t, e, last)
		}
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
	w.each(cutoff, func(t *Token, e *slot, last int64) {
		// A Token done meanwhile may still be seen here, its slot already
		// emptied: it is no longer stuck.
		if last+1 == e.reported.Load() || e.tok.Load() != t {
			return
		}
		e.reported.Store(last + 1)
		found = append(found, stall{t, t.stuckAt(now, last)})
	})
	w.stalls.Add(uint64(len(found)))

	for _, f := range found {
		if f.t.cancel != nil {
			f.t.cancel(fmt.Errorf("%w: %s made no progress for %v (running for %v)",
				ErrStalled, quoteName(f.s.Name), f.s.SinceBeat, f.s.Age))
			w.canceled.Add(1)
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
	w.each(cutoff, func(t *Token, e *slot, last int64) {
		if e.tok.Load() == t {
			found = append(found, stall{t, t.stuckAt(now, last)})
		}
	})
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
	tracking, tracked := w.tracking, w.tracked
	w.mu.Unlock()
	return WatchdogStats{
		Tracking: tracking,
		Tracked:  tracked,
		Stalls:   w.stalls.Load(),
		Canceled: w.canceled.Load(),
	}
}

// Shutdown stops the watchdog gracefully: it keeps checking until every
// tracked Token is Done, then stops like Close. If ctx ends first it
// returns an error matching ctx.Err() and context.Cause(ctx) and the
// watchdog keeps running. A ctx already done fails Shutdown at once, and a
// nil ctx is an error wrapping ErrInvalid and ErrNilContext. Work tracked
// while Shutdown waits is waited for too. Like Close, it must not be
// called from a WithOnStuck callback.
func (w *Watchdog) Shutdown(ctx context.Context) error {
	if ctx == nil {
		return nilContext("timeout.Watchdog.Shutdown")
	}
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	if err := w.waitIdle(ctx); err != nil {
		return err
	}
	return w.Close()
}

func (w *Watchdog) waitIdle(ctx context.Context) error {
	w.mu.Lock()
	if w.tracking == 0 {
		w.mu.Unlock()
		return nil
	}
	if w.idle == nil {
		w.idle = make(chan struct{})
	}
	idle := w.idle
	w.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctxError(ctx)
	}
}

// Close stops the watchdog's goroutine at once, whatever is tracked, and
// waits for it to exit, including a WithOnStuck callback in progress (so
// the callback must not call Close). It does not cancel tracked work.
// Close is idempotent and always returns nil.
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
