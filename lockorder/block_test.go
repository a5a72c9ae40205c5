//go:build lockorder || race

package lockorder

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWaitGroupWaitHoldingLockDoneNeeds: a worker locks mu before Done;
// later the waiter holds mu across Wait. Reported at Wait, before it
// blocks, although this run does not hang (the worker finished first).
func TestWaitGroupWaitHoldingLockDoneNeeds(t *testing.T) {
	c := collect(t)
	mu := classed("wg.mu", 0)
	var wg WaitGroup
	wg.Add(1)
	run(func() {
		mu.Lock()
		work.Add(1)
		mu.Unlock()
		wg.Done()
	})
	require.Empty(t, c.all())
	mu.Lock()
	wg.Wait()
	mu.Unlock()
	errs := c.all()
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], ErrBlocking)
	msg := errs[0].Error()
	require.Regexp(t, `^lock held while blocking: wg\.mu -> WaitGroup#\d+ \(first used at block_test\.go:\d+\) -> wg\.mu\n`, msg)
	require.Contains(t, msg, "waited for WaitGroup#")
	require.Contains(t, msg, "needed wg.mu before unblocking WaitGroup#")
	require.Equal(t, WaitedHolding, errs[0].Edges[len(errs[0].Edges)-1].Relation)
	t.Logf("sample report:\n%s", msg)
}

// TestWaitGroupGoReportsInTheHangingRun: the waiter holds mu and waits
// first; the function passed to Go then needs mu. This interleaving hangs
// with sync types; here the acquisition inside Go is reported before it
// blocks (the handler panics it out), so the run ends.
func TestWaitGroupGoReportsInTheHangingRun(t *testing.T) {
	forgetReports()
	restore := SetHandler(func(e *OrderError) { panic(e) })
	defer restore()
	mu := classed("wggo.mu", 0)
	var wg WaitGroup
	var got any
	waiting := make(chan struct{})
	mu.Lock()
	wg.Go(func() {
		defer func() { got = recover() }()
		<-waiting
		mu.Lock() // reported: wg's waiter holds mu
		work.Add(1)
		mu.Unlock()
	})
	// The wait edge is recorded before Wait blocks; close(waiting) comes
	// after Wait's check only if it runs on another goroutine.
	go func() {
		require.Eventually(t, func() bool { return wgWaitRecorded(mu) }, 10*time.Second, time.Millisecond)
		close(waiting)
	}()
	wg.Wait()
	mu.Unlock()
	e, ok := got.(*OrderError)
	require.True(t, ok, "the worker's Lock was reported: %v", got)
	require.ErrorIs(t, e, ErrBlocking)
}

// wgWaitRecorded reports whether m's class has an edge to an event.
func wgWaitRecorded(m *Mutex) bool {
	graph.mu.Lock()
	defer graph.mu.Unlock()
	n := 0
	for range m.lk.class.Load().node.out.Load().all {
		n++
	}
	return n > 0
}

func TestWaitGroupNoReportWhenWorkersDoNotNeedTheLock(t *testing.T) {
	c := collect(t)
	mu, other := classed("wgok.mu", 0), classed("wgok.other", 0)
	var wg WaitGroup
	for range 4 {
		wg.Go(func() {
			other.Lock()
			work.Add(1)
			other.Unlock()
		})
	}
	// mu is taken and released before the wait; the workers never see it.
	mu.Lock()
	work.Add(1)
	mu.Unlock()
	other.Lock()
	work.Add(1)
	other.Unlock()
	wg.Wait()
	// Held while waiting, but no worker needs mu.
	mu.Lock()
	var wg2 WaitGroup
	wg2.Go(func() { lockAB(other, new(Mutex)) })
	wg2.Wait()
	mu.Unlock()
	require.Empty(t, c.all())
}

// TestCondRLockHeldAcrossWait: the waiter holds rw for reading across
// Wait; a signaller locks rw for writing before it signals. A run that does
// not hang (that signaller went first, another one wakes the waiter) is
// reported at Wait.
func TestCondRLockHeldAcrossWait(t *testing.T) {
	c := collect(t)
	var rw RWMutex
	rw.SetClass(NewClass("cond.rw", 0))
	mu := classed("cond.mu", 0)
	cond := NewCond(mu)
	ready := false
	run(func() {
		rw.Lock()
		work.Add(1)
		rw.Unlock()
		mu.Lock()
		cond.Signal() // nobody waits yet
		mu.Unlock()
	})
	rw.RLock()
	mu.Lock()
	go func() {
		mu.Lock()
		ready = true
		cond.Signal()
		mu.Unlock()
	}()
	for !ready {
		cond.Wait()
	}
	mu.Unlock()
	rw.RUnlock()
	errs := c.all()
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], ErrBlocking)
	require.Contains(t, errs[0].Error(), "cond.rw -> Cond#")
	require.NotContains(t, errs[0].Error(), "cond.mu -> Cond", "Wait releases L")
}

// TestCondWaitReleasesL: the usual pattern (L held by both sides) is fine.
func TestCondWaitReleasesL(t *testing.T) {
	c := collect(t)
	var mu Mutex
	cond := &Cond{L: &mu}
	n := 0
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			mu.Lock()
			n++
			cond.Broadcast()
			mu.Unlock()
		})
	}
	mu.Lock()
	for n < 4 {
		cond.Wait()
	}
	mu.Unlock()
	wg.Wait()
	require.Empty(t, c.all())
}

// TestOnceCycle: f takes mu while another caller of Do, holding mu, waits
// for f: the interleaving that hangs with sync.Once. The second of the two
// acquisitions is reported before it blocks; the panicking handler ends f.
func TestOnceCycle(t *testing.T) {
	forgetReports()
	restore := SetHandler(func(e *OrderError) { panic(e) })
	defer restore()
	mu := classed("once.mu", 0)
	var once Once
	inF, aGid := make(chan struct{}), make(chan int64, 1)
	var got any
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { got = recover() }()
		once.Do(func() {
			close(inF)
			gid := <-aGid
			// A holds mu and waits for the Once lock.
			require.Eventually(t, func() bool { return heldBy(gid) == 2 }, 10*time.Second, time.Millisecond)
			mu.Lock()
			work.Add(1)
			mu.Unlock()
		})
	}()
	<-inF
	mu.Lock()
	aGid <- curGoid()
	once.Do(func() {})
	mu.Unlock()
	<-done
	e, ok := got.(*OrderError)
	require.True(t, ok, "f's Lock was reported: %v", got)
	require.ErrorIs(t, e, ErrInversion)
	require.Regexp(t, `once\.mu -> Once#\d+ \(first locked at block_test\.go:\d+\)`, e.Error())

	// Recursive Do is a self-deadlock with sync.Once too: reported
	// before it blocks (the handler panics it out of f).
	var o2 Once
	got = nil
	func() {
		defer func() { got = recover() }()
		o2.Do(func() { o2.Do(func() {}) })
	}()
	e, ok = got.(*OrderError)
	require.True(t, ok, "recursive Do was reported: %v", got)
	require.ErrorIs(t, e, ErrRecursive)
}

func TestOnceRunsOnce(t *testing.T) {
	var once Once
	n := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { once.Do(func() { n++ }) })
	}
	wg.Wait()
	require.Equal(t, 1, n)
	var p Once
	require.Panics(t, func() { p.Do(func() { panic("x") }) })
	p.Do(func() { n++ })
	require.Equal(t, 1, n, "a panicking f counts as done")
}

// TestAnnotatedChannel: raw channels annotated with Blocking/Unblocking,
// and a string-named event.
func TestAnnotatedChannel(t *testing.T) {
	c := collect(t)
	mu := classed("ann.mu", 0)
	results := make(chan int, 1)
	run(func() {
		mu.Lock()
		work.Add(1)
		mu.Unlock()
		Unblocking(results)
		results <- 1
	})
	mu.Lock()
	Blocking(results)
	<-results
	mu.Unlock()
	require.Len(t, c.all(), 1)
	require.ErrorIs(t, c.all()[0], ErrBlocking)
	require.Contains(t, c.all()[0].Error(), "chan int signal#")

	run(func() {
		mu.Lock()
		work.Add(1)
		mu.Unlock()
		Unblocking("cache refill")
	})
	mu.Lock()
	Blocking("cache refill")
	mu.Unlock()
	require.Len(t, c.all(), 2)
	require.Contains(t, c.all()[1].Error(), `signal of "cache refill"`)

	// nil and non-comparable values are ignored.
	Blocking(nil)
	Unblocking([]int{1})
	require.Len(t, c.all(), 2)
}

// TestWillUnblockSeesAcquisitionsInTheHangingRun: the unblocking goroutine
// declares its obligation, so its Lock is reported while the waiter holds
// the lock and waits: the run that would hang.
func TestWillUnblockSeesAcquisitionsInTheHangingRun(t *testing.T) {
	c := collect(t)
	mu := classed("will.mu", 0)
	done := make(chan struct{})
	mu.Lock()
	Blocking(done) // recorded: mu -> done
	go func() {
		WillUnblock(done)
		defer close(done)
		defer Unblocking(done)
		if mu.TryLock() { // a real Lock would hang; the check runs first
			mu.Unlock()
		}
		ok := mu.TryLock()
		require.False(t, ok)
		// A blocking acquisition now would be reported; simulate its check.
		checkOnly(mu)
	}()
	require.Eventually(t, func() bool { return len(c.all()) == 1 }, 10*time.Second, time.Millisecond)
	mu.Unlock()
	<-done
	require.ErrorIs(t, c.all()[0], ErrBlocking)
	require.True(t, strings.HasPrefix(c.all()[0].Error(), "lock held while blocking: will.mu -> chan struct {} signal#"), c.all()[0].Error())
}

// checkOnly runs the checks of a blocking Lock of m without blocking.
func checkOnly(m *Mutex) {
	e := acquire(&m.lk, classOf(m, &m.lk, "Mutex"), false, 0)
	e.abandon()
}

func TestReportStringReadsWell(t *testing.T) {
	r := Report{Class: "db", Goroutine: 7, Waiting: true, For: 2*time.Second + 3*time.Microsecond, Stack: "main.go:1 main.f", HolderGoroutine: 3, HolderStack: "x.go:2 main.g"}
	require.Equal(t, "goroutine 7 has waited 2s for lock db, since:\n        main.go:1 main.f\nheld by goroutine 3, acquired at:\n        x.go:2 main.g", r.String())
	r = Report{Class: "db", Goroutine: 3, For: 1500 * time.Millisecond}
	require.Equal(t, "goroutine 3 has held lock db for 1.5s, since:\n        (no stack recorded)", r.String())
}
