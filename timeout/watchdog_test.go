package timeout

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reports collects what WithOnStuck delivers.
type reports struct {
	mu  sync.Mutex
	got []Stuck
	at  []time.Time
}

func (r *reports) add(s Stuck) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, s)
	r.at = append(r.at, time.Now())
}

func (r *reports) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.got {
		out = append(out, s.Name)
	}
	return out
}

func newWatchdog(t *testing.T, opts ...WatchdogOption) *Watchdog {
	t.Helper()
	w, err := NewWatchdog(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, w.Close()) })
	return w
}

// beatEvery beats tok every period until stop is closed.
func beatEvery(tok *Token, period time.Duration, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(period):
			tok.Beat()
		}
	}
}

func TestWatchdogReportsStuckWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r reports
		w := newWatchdog(t, WithStallAfter(time.Second), WithOnStuck(r.add))
		start := time.Now()
		_, stuck := w.Track(t.Context(), "stuck")
		_, alive := w.Track(t.Context(), "alive")
		stop := make(chan struct{})
		go beatEvery(alive, 900*time.Millisecond, stop)

		time.Sleep(5 * time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"stuck"}, r.names(), "reported once, and only the stuck one")
		at := r.at[0].Sub(start)
		assert.GreaterOrEqual(t, at, time.Second, "never before stallAfter")
		assert.LessOrEqual(t, at, time.Second+2*w.tick, "within stallAfter plus two ticks")
		assert.GreaterOrEqual(t, r.got[0].SinceBeat, time.Second)

		got := w.Stuck()
		require.Len(t, got, 1)
		assert.Equal(t, "stuck", got[0].Name)
		assert.InDelta(t, 5*time.Second, got[0].Age, float64(w.tick))
		assert.Equal(t, got[0].Age, got[0].SinceBeat)
		assert.Empty(t, got[0].Stack, "no stacks unless asked for")

		close(stop)
		stuck.Done()
		alive.Done()
		assert.Empty(t, w.Stuck())
		assert.Equal(t, WatchdogStats{Tracked: 2, Stalls: 1}, w.Stats())
	})
}

func TestWatchdogReportsAgainAfterRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r reports
		w := newWatchdog(t, WithStallAfter(time.Second), WithOnStuck(r.add))
		_, tok := w.Track(t.Context(), "flaky")
		defer tok.Done()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		assert.Len(t, r.names(), 1)

		tok.Beat()
		time.Sleep(500 * time.Millisecond)
		assert.Empty(t, w.Stuck(), "a Beat clears the stall")
		time.Sleep(3 * time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"flaky", "flaky"}, r.names())
		assert.Equal(t, uint64(2), w.Stats().Stalls)
	})
}

func TestWatchdogCancelsStalledWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWatchdog(t, WithStallAfter(time.Second), WithCancelStalled(true))
		ctx, tok := w.Track(t.Context(), "report.render")
		defer tok.Done()
		start := time.Now()
		<-ctx.Done()
		assert.GreaterOrEqual(t, time.Since(start), time.Second)
		cause := context.Cause(ctx)
		assert.ErrorIs(t, cause, ErrStalled)
		assert.Contains(t, cause.Error(), `"report.render" made no progress for`)
		assert.NoError(t, t.Context().Err(), "only the tracked context is cancelled")
		synctest.Wait()
		assert.Equal(t, uint64(1), w.Stats().Canceled)
	})
}

func TestWatchdogBeatingWorkIsNotCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWatchdog(t, WithStallAfter(time.Second), WithCancelStalled(true))
		ctx, tok := w.Track(t.Context(), "busy")
		stop := make(chan struct{})
		go beatEvery(tok, 990*time.Millisecond, stop)
		time.Sleep(time.Minute)
		assert.NoError(t, ctx.Err())
		close(stop)
		tok.Done()
		assert.ErrorIs(t, ctx.Err(), context.Canceled, "Done releases the context")
		assert.NotErrorIs(t, context.Cause(ctx), ErrStalled)
	})
}

func TestWatchdogStacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWatchdog(t, WithStallAfter(time.Second), WithStacks(true))
		_, tok := w.Track(t.Context(), "with-stack")
		defer tok.Done()
		time.Sleep(2 * time.Second)
		got := w.Stuck()
		require.Len(t, got, 1)
		assert.Contains(t, got[0].Stack, "timeout.TestWatchdogStacks")
		assert.Contains(t, got[0].Stack, "watchdog_test.go:")
		assert.NotContains(t, got[0].Stack, "timeout.(*Watchdog).Track", "starts at Track's caller")
	})
}

func TestWatchdogOptions(t *testing.T) {
	for _, opts := range [][]WatchdogOption{
		{WithStallAfter(0)},
		{WithStallAfter(-time.Second)},
		{WithStallAfter(time.Microsecond)},
		{nil},
	} {
		w, err := NewWatchdog(opts...)
		assert.ErrorIs(t, err, ErrInvalid)
		assert.Nil(t, w)
	}
	synctest.Test(t, func(t *testing.T) {
		w := newWatchdog(t)
		assert.Equal(t, defaultStallAfter, w.cfg.stallAfter)
		assert.Equal(t, time.Second, w.tick, "ticks are at most a second apart")
		ctx, tok := w.Track(t.Context(), "x")
		assert.Equal(t, t.Context(), ctx, "without cancellation Track derives no context")
		tok.Done()
	})
}

func TestWatchdogCloseAndZeroToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, err := NewWatchdog(WithStallAfter(time.Second))
		require.NoError(t, err)
		require.NoError(t, w.Close())
		require.NoError(t, w.Close(), "Close is idempotent")
		_, tok := w.Track(t.Context(), "after close")
		tok.Beat()
		tok.Done()
		tok.Done()
		assert.Equal(t, 0, w.Stats().Tracking)
	})
	var zero Token
	zero.Beat()
	zero.Done()
	var zw Watchdog
	_, tok := zw.Track(context.Background(), "zero")
	tok.Done()
	assert.NoError(t, zw.Close(), "a zero Watchdog closes at once")
}

// TestWatchdogStress tracks, beats and finishes work from many goroutines
// while the watchdog scans, and checks that no Token is lost or kept.
func TestWatchdogStress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r reports
		w := newWatchdog(t, WithStallAfter(10*time.Millisecond), WithCancelStalled(true), WithOnStuck(r.add))
		const workers = 32
		rounds := 200
		if testing.Short() {
			rounds = 50
		}
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				for j := range rounds {
					ctx, tok := w.Track(t.Context(), "w")
					if (i+j)%7 == 0 {
						<-ctx.Done() // stall until cancelled
						assert.ErrorIs(t, context.Cause(ctx), ErrStalled)
					} else {
						tok.Beat()
						time.Sleep(time.Millisecond)
						tok.Beat()
					}
					tok.Done()
				}
			})
		}
		wg.Wait()
		synctest.Wait()
		st := w.Stats()
		stalled := 0
		for i := range workers {
			for j := range rounds {
				if (i+j)%7 == 0 {
					stalled++
				}
			}
		}
		assert.Equal(t, 0, st.Tracking)
		assert.Equal(t, uint64(workers*rounds), st.Tracked)
		assert.Equal(t, uint64(stalled), st.Stalls, "each stalled Token reported once, no beating one")
		assert.Equal(t, uint64(stalled), st.Canceled)
		assert.Len(t, r.names(), stalled)
		assert.Empty(t, w.Stuck())
		assert.False(t, errors.Is(context.Cause(t.Context()), ErrStalled))
	})
}

// TestWatchdogStarvedTicksReportNothingEarly drives the cutoff by hand
// through a watchdog goroutine that was starved for ten seconds: Beats
// during the starvation stored a stale clock, and must not be mistaken
// for ten seconds of silence.
func TestWatchdogStarvedTicksReportNothingEarly(t *testing.T) {
	w := &Watchdog{cfg: watchdogConfig{stallAfter: time.Second}}
	tick := func(now time.Duration) int64 {
		w.marks = append(w.marks, mark{val: int64(now), after: int64(now)})
		return w.advanceCutoff(int64(now))
	}
	// A Beat at real time 9.9s still stored 0, the last published value.
	beat := int64(0)
	assert.Equal(t, int64(0), tick(0))
	cutoff := tick(10 * time.Second) // the first tick after starvation
	assert.False(t, beat < cutoff, "not stuck: the Beat may be 0.1s old")
	cutoff = tick(10*time.Second + 500*time.Millisecond)
	assert.False(t, beat < cutoff, "not stuck: the Beat may be 0.6s old")
	cutoff = tick(11 * time.Second)
	assert.True(t, beat < cutoff, "stuck: the Beat is at least 1s old")
	assert.Equal(t, []mark{{10_500_000_000, 10_500_000_000}, {11_000_000_000, 11_000_000_000}}, w.marks, "marks up to the cutoff are dropped")
}

func TestWatchdogStuckOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWatchdog(t, WithStallAfter(time.Second))
		_, a := w.Track(t.Context(), "older")
		time.Sleep(time.Second)
		_, b := w.Track(t.Context(), "newer")
		time.Sleep(2 * time.Second)
		got := w.Stuck()
		require.Len(t, got, 2)
		assert.Equal(t, "older", got[0].Name)
		assert.Equal(t, "newer", got[1].Name)
		assert.Greater(t, got[0].Age, got[1].Age)
		a.Done()
		b.Done()
	})
}

// TestWatchdogShutdownWaitsForWork: Shutdown keeps watching until every
// Token is Done, then stops the goroutine; Close does not wait.
func TestWatchdogShutdownWaitsForWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r reports
		w, err := NewWatchdog(WithStallAfter(time.Second), WithOnStuck(r.add))
		require.NoError(t, err)
		_, tok := w.Track(t.Context(), "slow")

		done, cancel := context.WithCancel(t.Context())
		cancel()
		require.ErrorIs(t, w.Shutdown(done), context.Canceled, "a done ctx fails at once")
		//lint:ignore SA1012 a nil ctx is the input under test
		require.ErrorIs(t, w.Shutdown(nil), ErrNilContext) //nolint:staticcheck

		shut := make(chan error, 1)
		go func() { shut <- w.Shutdown(t.Context()) }()
		time.Sleep(2 * time.Second) // fake clock: the watchdog still checks
		synctest.Wait()
		assert.Equal(t, []string{"slow"}, r.names(), "still watching while Shutdown waits")
		select {
		case err := <-shut:
			t.Fatalf("Shutdown returned %v with work tracked", err)
		default:
		}
		tok.Done()
		require.NoError(t, <-shut)
		require.NoError(t, w.Close())

		w2, err := NewWatchdog()
		require.NoError(t, err)
		_, tok2 := w2.Track(t.Context(), "left running")
		require.NoError(t, w2.Close(), "Close does not wait for tracked work")
		tok2.Done()
	})
}

// TestWatchdogTrackNilContext used to panic (context.WithCancelCause(nil))
// with cancellation on.
func TestWatchdogTrackNilContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r reports
		w := newWatchdog(t, WithStallAfter(time.Second), WithCancelStalled(true), WithOnStuck(r.add))
		//lint:ignore SA1012 a nil ctx is the input under test
		ctx, tok := w.Track(nil, "no ctx") //nolint:staticcheck
		assert.Nil(t, ctx)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"no ctx"}, r.names(), "watched all the same")
		tok.Done()
		assert.Equal(t, 0, w.Stats().Tracking)
	})
}

// TestWatchdogConcurrentTrackDoneAndScan runs Track, Beat and Done on
// many goroutines against Stuck scans (the lock-free read of the table)
// and checks the counts and that slots are reused, not leaked.
func TestWatchdogConcurrentTrackDoneAndScan(t *testing.T) {
	w, err := NewWatchdog(WithStallAfter(time.Minute), WithCancelStalled(true))
	require.NoError(t, err)
	defer func() { require.NoError(t, w.Close()) }()
	const workers, rounds, held = 8, 300, 4
	stop := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		for {
			select {
			case <-stop:
				return
			default:
			}
			assert.Empty(t, w.Stuck())
			_ = w.Stats()
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var toks []*Token
			for j := range rounds {
				_, tok := w.Track(context.Background(), "w")
				tok.Beat()
				toks = append(toks, tok)
				if len(toks) == held || j == rounds-1 {
					for _, tk := range toks {
						tk.Done()
						tk.Done()
					}
					toks = toks[:0]
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-scanned
	st := w.Stats()
	assert.Equal(t, 0, st.Tracking)
	assert.Equal(t, uint64(workers*rounds), st.Tracked)
	assert.Zero(t, st.Stalls)
	assert.LessOrEqual(t, int(w.used.Load()), workers*(held+1), "slots are reused (a Done between its two steps holds one more)")
	w.each(math.MaxInt64, func(tok *Token, _ *slot, _ int64) { t.Errorf("token %q still in the table", tok.name) })
}

// TestWatchdogCheckHoldsNoLock parks a check in the middle of the table
// and checks that Track and Done still go through: the check reads the
// slots without any lock that they take.
func TestWatchdogCheckHoldsNoLock(t *testing.T) {
	var w Watchdog // zero: no goroutine, the check below is the only one
	_, a := w.Track(context.Background(), "a")
	_, b := w.Track(context.Background(), "b")
	inCheck, release := make(chan struct{}), make(chan struct{})
	checked := make(chan int)
	go func() {
		n := 0
		w.each(math.MaxInt64, func(*Token, *slot, int64) {
			if n == 0 {
				close(inCheck)
				<-release
			}
			n++
		})
		checked <- n
	}()
	<-inCheck
	_, c := w.Track(context.Background(), "c")
	a.Done()
	c.Done()
	close(release)
	assert.GreaterOrEqual(t, <-checked, 1)
	b.Done()
	assert.Equal(t, 0, w.Stats().Tracking)
}
