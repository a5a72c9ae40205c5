package changuard

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustChan[T any](t testing.TB, capacity int, opts ...ChanOption[T]) *Chan[T] {
	t.Helper()
	c, err := NewChan(capacity, opts...)
	require.NoError(t, err)
	return c
}

func TestNewChanValidates(t *testing.T) {
	for _, capacity := range []int{0, -1} {
		_, err := NewChan[int](capacity)
		assert.Error(t, err, "capacity %d", capacity)
	}
	for _, p := range []Overflow{DropOldest, DropNewest} {
		_, err := NewChan(1, WithOverflow[int](p, nil))
		assert.ErrorContains(t, err, "onDrop", p.String())
	}
	_, err := NewChan(1, WithOverflow[int](Overflow(42), func(int) {}))
	assert.Error(t, err)
	for _, p := range []Overflow{Block, Reject} {
		c, err := NewChan(3, WithOverflow[int](p, nil))
		require.NoError(t, err)
		assert.Equal(t, 3, c.Cap())
	}
}

func TestChanFIFOAndCloseSemantics(t *testing.T) {
	ctx := context.Background()
	c := mustChan[int](t, 4)
	for i := range 3 {
		require.NoError(t, c.Send(ctx, i))
	}
	assert.Equal(t, 3, c.Len())
	v, err := c.Recv(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, v)

	assert.NoError(t, c.Close())
	assert.ErrorIs(t, c.Close(), ErrClosed, "second Close reports ErrClosed")

	err = c.Send(ctx, 7)
	var ce *ClosedError[int]
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 7, ce.Value)
	assert.ErrorIs(t, err, ErrClosed)
	assert.Contains(t, err.Error(), "closed")
	require.ErrorAs(t, c.TrySend(8), &ce)
	assert.Equal(t, 8, ce.Value)

	// Buffered values survive Close, then ErrClosed.
	v, err = c.Recv(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	v, ok := c.TryRecv()
	assert.True(t, ok)
	assert.Equal(t, 2, v)
	_, err = c.Recv(ctx)
	assert.ErrorIs(t, err, ErrClosed)
	_, ok = c.TryRecv()
	assert.False(t, ok)
	assert.Empty(t, c.Drain())

	s := c.Stats()
	assert.Equal(t, ChanStats{Sent: 3, Received: 3, Returned: 2, Cap: 4}, s)
}

func TestChanDrain(t *testing.T) {
	c := mustChan[int](t, 4)
	for i := range 4 {
		require.NoError(t, c.TrySend(i))
	}
	assert.Equal(t, []int{0, 1, 2, 3}, c.Drain(), "Drain before Close takes what is buffered")
	require.NoError(t, c.TrySend(10))
	c.Close()
	assert.Equal(t, []int{10}, c.Drain())
	assert.Nil(t, c.Drain())
	s := c.Stats()
	assert.Equal(t, uint64(5), s.Sent)
	assert.Equal(t, uint64(5), s.Drained)
	assert.Equal(t, uint64(0), s.Received)
}

func TestChanRecvChanAndAll(t *testing.T) {
	c := mustChan[int](t, 8)
	for i := range 5 {
		require.NoError(t, c.TrySend(i))
	}
	got := []int{<-c.RecvChan()}
	c.Close()
	for v := range c.All(context.Background()) {
		got = append(got, v)
		if v == 2 {
			break
		}
	}
	for v := range c.RecvChan() {
		got = append(got, v)
	}
	assert.Equal(t, []int{0, 1, 2, 3, 4}, got)
	assert.Equal(t, uint64(5), c.Stats().Received, "RecvChan receives are counted")
}

func TestChanAllStopsOnCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := mustChan[int](t, 2)
		require.NoError(t, c.TrySend(1))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var got []int
		for v := range c.All(ctx) {
			got = append(got, v)
		}
		assert.Equal(t, []int{1}, got)
		assert.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
	})
}

func TestChanTrySendFull(t *testing.T) {
	c := mustChan[int](t, 1)
	require.NoError(t, c.TrySend(1))
	assert.ErrorIs(t, c.TrySend(2), ErrFull)
	s := c.Stats()
	assert.Equal(t, uint64(1), s.Rejected)
	assert.Equal(t, uint64(1), s.FullEvents)
}

func TestChanOverflowPolicies(t *testing.T) {
	ctx := context.Background()
	t.Run("Reject", func(t *testing.T) {
		c := mustChan(t, 2, WithOverflow[int](Reject, nil))
		require.NoError(t, c.Send(ctx, 1))
		require.NoError(t, c.Send(ctx, 2))
		assert.ErrorIs(t, c.Send(ctx, 3), ErrFull)
		assert.Equal(t, []int{1, 2}, c.Drain())
		s := c.Stats()
		assert.Equal(t, uint64(2), s.Sent)
		assert.Equal(t, uint64(1), s.Rejected)
		assert.Equal(t, uint64(1), s.FullEvents)
	})
	t.Run("DropOldest", func(t *testing.T) {
		var dropped []int
		c := mustChan(t, 2, WithOverflow(DropOldest, func(v int) { dropped = append(dropped, v) }))
		for i := 1; i <= 5; i++ {
			require.NoError(t, c.Send(ctx, i))
		}
		assert.Equal(t, []int{1, 2, 3}, dropped)
		c.Close()
		assert.Equal(t, []int{4, 5}, c.Drain())
		s := c.Stats()
		assert.Equal(t, uint64(5), s.Sent)
		assert.Equal(t, uint64(3), s.Dropped)
		assert.Equal(t, uint64(2), s.Drained)
		assert.Equal(t, uint64(3), s.FullEvents)
	})
	t.Run("DropNewest", func(t *testing.T) {
		var dropped []int
		c := mustChan(t, 2, WithOverflow(DropNewest, func(v int) { dropped = append(dropped, v) }))
		for i := 1; i <= 5; i++ {
			require.NoError(t, c.Send(ctx, i))
		}
		assert.Equal(t, []int{3, 4, 5}, dropped)
		assert.Equal(t, []int{1, 2}, c.Drain())
		s := c.Stats()
		assert.Equal(t, uint64(5), s.Sent)
		assert.Equal(t, uint64(3), s.Dropped)
		assert.Equal(t, uint64(0), s.Received)
	})
	t.Run("Block", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := mustChan[int](t, 1)
			require.NoError(t, c.Send(ctx, 1))
			done := make(chan error)
			go func() { done <- c.Send(ctx, 2) }()
			synctest.Wait()
			assert.Equal(t, 1, c.Stats().BlockedSenders, "the sender waits, durably blocked")
			v, err := c.Recv(ctx)
			require.NoError(t, err)
			assert.Equal(t, 1, v)
			require.NoError(t, <-done)
			v, err = c.Recv(ctx)
			require.NoError(t, err)
			assert.Equal(t, 2, v)
			s := c.Stats()
			assert.Equal(t, 0, s.BlockedSenders)
			assert.Equal(t, uint64(1), s.FullEvents)
			assert.Equal(t, uint64(2), s.Received)
		})
	})
}

func TestChanSendCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := mustChan[int](t, 1)
		require.NoError(t, c.TrySend(1))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err := c.Send(ctx, 2)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start))

		cause := errors.New("client went away")
		ctx2, cancel2 := context.WithCancelCause(context.Background())
		go func() {
			synctest.Wait()
			cancel2(cause)
		}()
		err = c.Send(ctx2, 3)
		assert.ErrorIs(t, err, cause)
		assert.ErrorIs(t, err, context.Canceled)

		s := c.Stats()
		assert.Equal(t, uint64(2), s.Canceled)
		assert.Equal(t, uint64(1), s.Sent)
		assert.Equal(t, 0, s.BlockedSenders)
	})
}

func TestChanRecvCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := mustChan[int](t, 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := c.Recv(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorContains(t, err, "Chan.Recv")
	})
}

func TestChanCloseReleasesBlockedSenders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := mustChan[int](t, 1)
		require.NoError(t, c.TrySend(0))
		errs := make(chan error, 3)
		for i := 1; i <= 3; i++ {
			go func() { errs <- c.Send(context.Background(), i) }()
		}
		synctest.Wait()
		assert.Equal(t, 3, c.Stats().BlockedSenders)
		assert.NoError(t, c.Close())
		got := map[int]bool{}
		for range 3 {
			var ce *ClosedError[int]
			require.ErrorAs(t, <-errs, &ce)
			got[ce.Value] = true
		}
		assert.Equal(t, map[int]bool{1: true, 2: true, 3: true}, got, "every value is handed back")
		assert.Equal(t, []int{0}, c.Drain())
		_, err := c.Recv(context.Background())
		assert.ErrorIs(t, err, ErrClosed)
	})
}

// TestChanCloseRace has many senders race Close under every policy and
// checks that every value ends in exactly one place.
func TestChanCloseRace(t *testing.T) {
	senders, perSender := 32, 2000
	if testing.Short() {
		perSender = 300
	}
	for _, p := range []Overflow{Block, Reject, DropOldest, DropNewest} {
		t.Run(p.String(), func(t *testing.T) {
			for round := range 4 {
				closeRace(t, p, senders, perSender, round)
			}
		})
	}
}

func closeRace(t *testing.T, p Overflow, senders, perSender, round int) {
	total := senders * perSender
	seen := make([]atomic.Int32, total) // how many places each value reached
	var dropped atomic.Int64
	onDrop := func(v int) {
		seen[v].Add(1)
		dropped.Add(1)
	}
	if p == Block || p == Reject {
		onDrop = nil
	}
	c := mustChan(t, 16, WithOverflow(p, onDrop))
	if round%2 == 1 {
		c.stripes, c.shift = make([]stripe, 8), 64-3
	}

	var accepted, returned, rejected, received, drainedInside atomic.Int64
	var sendWG, recvWG sync.WaitGroup
	closeAt := total / (2 + round) // close part-way through, at a different point each round
	var sentSoFar atomic.Int64
	var closers atomic.Int32

	for s := range senders {
		sendWG.Go(func() {
			for i := range perSender {
				v := s*perSender + i
				var err error
				if i%3 == 0 {
					err = c.TrySend(v)
				} else {
					err = c.Send(context.Background(), v)
				}
				var ce *ClosedError[int]
				switch {
				case err == nil:
					accepted.Add(1)
				case errors.As(err, &ce):
					if ce.Value != v {
						t.Errorf("ClosedError carries %d, sent %d", ce.Value, v)
					}
					seen[v].Add(1)
					returned.Add(1)
				case errors.Is(err, ErrFull):
					seen[v].Add(1)
					rejected.Add(1)
				default:
					t.Errorf("unexpected Send error %v", err)
				}
				if sentSoFar.Add(1) == int64(closeAt) || (s == 0 && i == perSender/2) {
					if c.Close() == nil {
						closers.Add(1)
					}
				}
			}
		})
	}
	for r := range 4 {
		recvWG.Go(func() {
			for {
				var v int
				var err error
				switch r {
				case 0:
					var ok bool
					v, ok = <-c.RecvChan()
					if !ok {
						err = ErrClosed
					}
				case 1:
					v, err = c.Recv(context.Background())
				default:
					var ok bool
					if v, ok = c.TryRecv(); !ok {
						// Nothing buffered: wait rather than spin.
						v, err = c.Recv(context.Background())
					}
				}
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("Recv: %v", err)
					}
					return
				}
				seen[v].Add(1)
				received.Add(1)
				if r == 1 && v%7 == 0 {
					// Concurrent Drains compete with receivers too.
					for _, d := range c.Drain() {
						seen[d].Add(1)
						drainedInside.Add(1)
					}
				}
			}
		})
	}
	sendWG.Wait()
	if c.Close() == nil {
		closers.Add(1)
	}
	recvWG.Wait()
	var drained int64
	for _, d := range c.Drain() {
		seen[d].Add(1)
		drained++
	}

	require.Equal(t, int32(1), closers.Load(), "exactly one Close reports true")
	for v := range seen {
		if n := seen[v].Load(); n != 1 {
			t.Fatalf("value %d ended in %d places, want 1", v, n)
		}
	}
	s := c.Stats()
	assert.Equal(t, int64(total), accepted.Load()+returned.Load()+rejected.Load())
	assert.Equal(t, uint64(accepted.Load()), s.Sent)
	assert.Equal(t, uint64(returned.Load()), s.Returned)
	assert.Equal(t, uint64(rejected.Load()), s.Rejected)
	assert.Equal(t, uint64(dropped.Load()), s.Dropped)
	assert.Equal(t, s.Sent, s.Received+s.Drained+s.Dropped, "sent = received + drained + dropped")
	assert.Equal(t, uint64(received.Load()), s.Received)
	assert.Equal(t, uint64(drainedInside.Load()+drained), s.Drained)
	assert.Equal(t, 0, s.Len)
	assert.Equal(t, 0, s.BlockedSenders)
}

func TestChanSentCounterWraps(t *testing.T) {
	c := mustChan[int](t, 4)
	// One stripe, so that every send below counts on the one set up here.
	c.stripes, c.shift = c.stripes[:1], 64
	st := &c.stripes[0]
	// Start the packed low half of Sent just below a wrap, as if 2^33-3
	// values had been sent, then jump it to just below the next two half
	// crossings, leaving halves to the code each time. sentCount makes
	// up for one missed bump of sentHalves, so only crossings that pile up
	// show a missed one.
	st.state.Store((1<<32 - 3) << 32)
	st.halves.Store(3)
	want := uint64(1<<33 - 3)
	require.Equal(t, want, c.Stats().Sent)
	for _, next := range []uint64{1<<31 - 2, 1<<32 - 2, 0} {
		for i := range 6 {
			require.NoError(t, c.TrySend(i))
			<-c.RecvChan()
			want++
			require.Equal(t, want, c.Stats().Sent, "after crossing to %#x", want)
		}
		if next != 0 {
			st.state.Store(next << 32)
			want = want>>32<<32 | next
			require.Equal(t, want, c.Stats().Sent)
		}
	}
	// Crossings at 2^33, 2^33+2^31 and 3*2^32.
	assert.Equal(t, uint64(6), st.halves.Load())
	assert.Equal(t, uint64(3<<32+4), want)
	assert.NoError(t, c.Close())
	_, ok := <-c.RecvChan()
	assert.False(t, ok, "Close sees no sender in flight despite the Sent bits")
}

// TestHotPathsDoNotAllocate pins the zero-allocation targets.
func TestHotPathsDoNotAllocate(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := mustChan[int](t, 8)
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		_ = c.Send(ctx, 1)
		_, _ = c.Recv(ctx)
		_ = c.TrySend(2)
		_, _ = c.TryRecv()
	}), "Chan")
	var g Guarded[[2]int]
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		g.With(func(v *[2]int) { v[0]++ })
		g.Read(func(v [2]int) { _ = v[0] })
	}), "Guarded")
	s := NewSnapshot([2]int{})
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _, _ = s.Load() }), "Snapshot.Load")
}

// TestNewChanBoundsCapacity used to crash the process (makechan: size out
// of range) or allocate the whole buffer up front.
func TestNewChanBoundsCapacity(t *testing.T) {
	_, err := NewChan[int](1 << 40)
	require.ErrorIs(t, err, ErrInvalidCapacity)
	assert.ErrorContains(t, err, "MaxCapacity")
	_, err = NewChan[[1 << 10]byte](MaxCapacity)
	require.ErrorIs(t, err, ErrInvalidCapacity)
	assert.ErrorContains(t, err, "MaxBufferBytes")
	_, err = NewChan[int](0)
	require.ErrorIs(t, err, ErrInvalidCapacity)
	c, err := NewChan[struct{}](MaxCapacity)
	require.NoError(t, err, "zero-size values take no buffer memory")
	assert.Equal(t, MaxCapacity, c.Cap())
}

// TestChanNilContext: a nil ctx used to panic inside Send after the sender
// was counted in flight, so Close never closed the data channel and Drain
// hung. It is now an error, with no effect on the Chan.
func TestChanNilContext(t *testing.T) {
	c := mustChan[int](t, 1)
	require.NoError(t, c.TrySend(1))
	//lint:ignore SA1012 a nil ctx is the input under test
	err := c.Send(nil, 2) //nolint:staticcheck
	require.ErrorIs(t, err, ErrNilContext)
	//lint:ignore SA1012 a nil ctx is the input under test
	_, err = c.Recv(nil) //nolint:staticcheck
	require.ErrorIs(t, err, ErrNilContext)
	require.NoError(t, c.Close())
	assert.Equal(t, []int{1}, c.Drain(), "Drain returns, the data channel was closed")
	_, ok := <-c.RecvChan()
	assert.False(t, ok)
	s := c.Stats()
	assert.Equal(t, uint64(1), s.Canceled, "the nil-ctx Send handed its value back")
	assert.Equal(t, uint64(1), s.Sent)
}

// TestChanDoneContextFailsAtOnce: a ctx already done fails Send and Recv
// at once even with room or a value buffered (the rule of internal/ctxerr);
// Send used to succeed.
func TestChanDoneContextFailsAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	why := errors.New("client went away")
	cancel(why)
	c := mustChan[int](t, 2)
	err := c.Send(ctx, 1)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, why)
	assert.Equal(t, 0, c.Len(), "no side effect")
	require.NoError(t, c.TrySend(2))
	_, err = c.Recv(ctx)
	require.ErrorIs(t, err, why)
	assert.Equal(t, 1, c.Len(), "no side effect")
	s := c.Stats()
	assert.Equal(t, uint64(1), s.Canceled)
	assert.Equal(t, uint64(1), s.Sent)
}

// TestChanCloseStripesStress closes Chans while many goroutines (spread
// over stripes) send, and checks that RecvChan always ends (the data
// channel is closed once the last sender in flight leaves) and that every
// value is accounted for exactly once.
func TestChanCloseStripesStress(t *testing.T) {
	for round := range 50 {
		c := mustChan[int](t, 4)
		// Several stripes whatever GOMAXPROCS, so that Close retires
		// stripes with and without senders in flight.
		c.stripes, c.shift = make([]stripe, 8), 64-3
		var sent, back atomic.Int64
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 50 {
					err := c.Send(context.Background(), g*1000+i)
					switch {
					case err == nil:
						sent.Add(1)
					case errors.Is(err, ErrClosed):
						back.Add(1)
					default:
						t.Errorf("Send: %v", err)
					}
				}
			})
		}
		var got int64
		recvDone := make(chan struct{})
		go func() {
			defer close(recvDone)
			n := 0
			for range c.RecvChan() {
				got++
				n++
				if n == round%20+1 {
					_ = c.Close()
				}
			}
		}()
		wg.Wait()
		_ = c.Close()
		<-recvDone
		assert.Equal(t, sent.Load(), got, "every accepted value received")
		assert.Equal(t, int64(400), sent.Load()+back.Load())
		s := c.Stats()
		assert.Equal(t, uint64(sent.Load()), s.Sent)
		assert.Equal(t, uint64(back.Load()), s.Returned)
	}
}

// growStack uses about depth*256 bytes of stack, then returns the stripe
// the caller's goroutine gets.
//
//go:noinline
func growStack(c *Chan[int], depth int) *stripe {
	var buf [256]byte
	if depth > 0 {
		s := growStack(c, depth-1)
		buf[depth%len(buf)] = byte(depth)
		if buf[0] == 255 {
			return nil
		}
		return s
	}
	return c.stripe()
}

// TestChanStripesSpread: goroutines running the same code on stacks of the
// same size must not all count on one stripe. Stacks above the smallest
// size are aligned to their size, so an index taken from the address bits
// alone was the same for all of them and striping did nothing.
func TestChanStripesSpread(t *testing.T) {
	c := mustChan[int](t, 4)
	c.stripes, c.shift = make([]stripe, 8), 64-3
	for _, depth := range []int{0, 12, 40} { // 2 KiB, 4-8 KiB, 16 KiB stacks
		const n = 32
		got := make(chan *stripe, n)
		release := make(chan struct{})
		var wg, picked sync.WaitGroup
		picked.Add(n)
		for range n {
			// Each goroutine stays alive until all have picked, so that
			// no stack is reused by the next goroutine.
			wg.Go(func() {
				got <- growStack(c, depth)
				picked.Done()
				<-release
			})
		}
		picked.Wait()
		close(release)
		wg.Wait()
		close(got)
		seen := map[*stripe]bool{}
		for s := range got {
			seen[s] = true
		}
		// With a uniform pick, fewer than 4 of 8 stripes for 32 goroutines
		// has a probability below 1e-12.
		assert.GreaterOrEqual(t, len(seen), 4, "stack depth %d: %d goroutines on %d stripes", depth, n, len(seen))
	}
}
