//go:build lockorder || race

package lockorder

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// work is the critical sections' stand-in for real work.
var work atomic.Int64

// forgetReports clears the per-bug deduplication, so that a test run
// again (-count) sees its per-instance reports again: tests that rely on a
// report to leave an operation that would block would otherwise hang.
func forgetReports() { seenReports.Clear() }

// collector receives reports instead of the default panic.
type collector struct {
	mu   sync.Mutex
	errs []*OrderError
}

func collect(t *testing.T) *collector {
	t.Helper()
	forgetReports()
	c := &collector{}
	t.Cleanup(SetHandler(func(e *OrderError) {
		c.mu.Lock()
		c.errs = append(c.errs, e)
		c.mu.Unlock()
	}))
	return c
}

func (c *collector) all() []*OrderError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*OrderError(nil), c.errs...)
}

func classed(name string, rank int) *Mutex {
	m := new(Mutex)
	m.SetClass(NewClass(name, rank))
	return m
}

func lockAB(a, b sync.Locker) {
	a.Lock()
	b.Lock()
	work.Add(1)
	b.Unlock()
	a.Unlock()
}

// heldHere is the number of locks the calling goroutine is recorded as
// holding.
func heldHere() int { return heldBy(curGoid()) }

// heldBy is the number of records (held or waiting) of goroutine gid.
func heldBy(gid int64) int {
	sh := shardOf(gid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if gl := sh.lookup(gid); gl != nil {
		return len(gl.held)
	}
	return 0
}

func TestInversionAcrossGoroutinesReportedOnce(t *testing.T) {
	c := collect(t)
	a, b := classed("inv.A", 0), classed("inv.B", 0)
	run(func() { lockAB(a, b) })
	require.Empty(t, c.all())
	run(func() { lockAB(b, a) })

	errs := c.all()
	require.Len(t, errs, 1)
	e := errs[0]
	require.ErrorIs(t, e, ErrInversion)
	require.Len(t, e.Edges, 2)
	require.Equal(t, [2]string{"inv.A", "inv.B"}, [2]string{e.Edges[0].From, e.Edges[0].To})
	require.Equal(t, [2]string{"inv.B", "inv.A"}, [2]string{e.Edges[1].From, e.Edges[1].To})
	require.False(t, e.Edges[0].Current)
	require.True(t, e.Edges[1].Current)
	require.NotEqual(t, e.Edges[0].Goroutine, e.Edges[1].Goroutine, "two goroutines made the two edges")
	for _, ed := range e.Edges {
		require.Contains(t, ed.Stack(), "lockorder.lockAB")
		require.Contains(t, ed.Stack(), "order_test.go:")
		require.NotContains(t, ed.Stack(), "lockorder.acquire", "internal frames are trimmed")
	}
	msg := e.Error()
	require.True(t, strings.HasPrefix(msg, "lock order inversion: inv.A -> inv.B -> inv.A\n"), msg)
	require.Equal(t, 2, strings.Count(msg, "lockorder.lockAB"))
	t.Logf("sample report:\n%s", msg)

	// Both orders are now known: repeating them reports nothing new.
	run(func() { lockAB(a, b) })
	run(func() { lockAB(b, a) })
	require.Len(t, c.all(), 1)
}

func TestThreeCycleAcrossThreeGoroutines(t *testing.T) {
	c := collect(t)
	a, b, d := classed("tri.A", 0), classed("tri.B", 0), classed("tri.C", 0)
	run(func() { lockAB(a, b) })
	run(func() { lockAB(b, d) })
	require.Empty(t, c.all())
	run(func() { lockAB(d, a) })
	errs := c.all()
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], ErrInversion)
	require.True(t, strings.HasPrefix(errs[0].Error(), "lock order inversion: tri.A -> tri.B -> tri.C -> tri.A\n"), errs[0].Error())
	require.Len(t, errs[0].Edges, 3)
	ids := map[int64]bool{}
	for _, ed := range errs[0].Edges {
		ids[ed.Goroutine] = true
	}
	require.Len(t, ids, 3)
}

func TestInversionInOneGoroutine(t *testing.T) {
	c := collect(t)
	a, b := classed("one.A", 0), classed("one.B", 0)
	lockAB(a, b)
	lockAB(b, a)
	errs := c.all()
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], ErrInversion)
	require.Equal(t, errs[0].Edges[0].Goroutine, errs[0].Edges[1].Goroutine)
}

func TestPerInstanceClassesAreNamedBySite(t *testing.T) {
	c := collect(t)
	var a, b Mutex
	lockAB(&a, &b)
	lockAB(&b, &a)
	errs := c.all()
	require.Len(t, errs, 1)
	require.Regexp(t, `^lock order inversion: Mutex#\d+ \(first locked at order_test\.go:\d+\) -> Mutex#\d+ `, errs[0].Error())
}

func TestTryLockAddsNoEdge(t *testing.T) {
	c := collect(t)
	a, b := classed("try.A", 0), classed("try.B", 0)
	run(func() {
		a.Lock()
		require.True(t, b.TryLock())
		b.Unlock()
		a.Unlock()
	})
	run(func() {
		b.Lock()
		require.True(t, a.TryLock())
		a.Unlock()
		b.Unlock()
	})
	require.Empty(t, c.all())
	require.Zero(t, heldHere())

	// A lock taken by TryLock is held: blocking on another lock while
	// holding it is an edge like any other.
	x, y := classed("try.X", 0), classed("try.Y", 0)
	run(func() {
		require.True(t, x.TryLock())
		y.Lock()
		work.Add(1)
		y.Unlock()
		x.Unlock()
	})
	run(func() { lockAB(y, x) })
	require.Len(t, c.all(), 1)
	require.ErrorIs(t, c.all()[0], ErrInversion)
}

func TestRecursiveRLockReported(t *testing.T) {
	c := collect(t)
	var rw RWMutex
	rw.SetClass(NewClass("rec.RW", 0))
	rw.RLock()
	rw.RLock()
	work.Add(1)
	rw.RUnlock()
	rw.RUnlock()
	errs := c.all()
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], ErrRecursive)
	require.Contains(t, errs[0].Error(), "recursive locking: rec.RW")

	// TryRLock cannot block, so a recursive TryRLock is not reported.
	var rw2 RWMutex
	rw2.RLock()
	require.True(t, rw2.TryRLock())
	rw2.RUnlock()
	rw2.RUnlock()
	require.Len(t, c.all(), 1)
	require.Zero(t, heldHere())
}

func TestRLockInversionsReported(t *testing.T) {
	c := collect(t)
	var r1, r2 RWMutex
	r1.SetClass(NewClass("rr.1", 0))
	r2.SetClass(NewClass("rr.2", 0))
	run(func() { lockAB(r1.RLocker(), r2.RLocker()) })
	run(func() { lockAB(r2.RLocker(), r1.RLocker()) })
	require.Len(t, c.all(), 1)
	require.ErrorIs(t, c.all()[0], ErrInversion)

	var w1, w2 RWMutex
	w1.SetClass(NewClass("rw.1", 0))
	w2.SetClass(NewClass("rw.2", 0))
	run(func() { lockAB(w1.RLocker(), &w2) })
	run(func() { lockAB(&w2, &w1) })
	require.Len(t, c.all(), 2)
	require.ErrorIs(t, c.all()[1], ErrInversion)
}

func TestUnlockFromAnotherGoroutine(t *testing.T) {
	c := collect(t)
	m, other := classed("xg.M", 0), classed("xg.Other", 0)
	var rw RWMutex
	rw.SetClass(NewClass("xg.RW", 0))
	var tm TimedMutex
	tm.SetClass(NewClass("xg.Timed", 0))

	locked, unlocked, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		m.Lock()
		rw.RLock()
		tm.Lock()
		close(locked)
		<-unlocked
		// Nothing is held here any more: no edge from m, rw or tm.
		require.Zero(t, heldHere())
		other.Lock()
		work.Add(1)
		other.Unlock()
	}()
	<-locked
	tm.Unlock()
	rw.RUnlock()
	m.Unlock()
	close(unlocked)
	<-done

	// Had a stale record survived, "m then other" would now invert.
	run(func() { lockAB(other, m) })
	run(func() { lockAB(other, &rw) })
	run(func() { lockAB(other, &tm) })
	require.Empty(t, c.all())
}

// TestUnlockForHolderBlockedOnSameLock: a goroutine locks, hands the
// unlock to another goroutine and locks again to wait for it (legal with
// sync mutexes). The checker reports the second Lock as recursive; if the
// handler returns, the other goroutine's Unlock must clear the held record,
// not the waiting one, which the blocked Lock still owns.
func TestUnlockForHolderBlockedOnSameLock(t *testing.T) {
	var tm TimedMutex
	cases := []struct {
		name string
		l    sync.Locker
		wait func(*testing.T)
	}{
		{"Mutex", new(Mutex), nil},
		{"RWMutex", new(RWMutex), nil},
		{"TimedMutex", &tm, func(t *testing.T) { require.NoError(t, tm.LockContext(t.Context())) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := collect(t)
			gid := curGoid()
			tc.l.Lock()
			unlocked := make(chan struct{})
			go func() {
				defer close(unlocked)
				// Both records, held and waiting, exist: this goroutine
				// is now blocked in the second Lock.
				assert.Eventually(t, func() bool { return heldBy(gid) == 2 }, 10*time.Second, time.Millisecond)
				tc.l.Unlock()
			}()
			if tc.wait != nil {
				tc.wait(t)
			} else {
				tc.l.Lock()
			}
			<-unlocked
			require.Equal(t, 1, heldHere(), "the waiting record became the held one")
			tc.l.Unlock()
			require.Zero(t, heldHere())
			require.Len(t, c.all(), 1)
			require.ErrorIs(t, c.all()[0], ErrRecursive)
		})
	}
}

func TestRanks(t *testing.T) {
	c := collect(t)
	lo, hi := classed("rank.lo", 1), classed("rank.hi", 2)
	lockAB(lo, hi)
	require.Empty(t, c.all())

	// First sight of hi -> lo: reported by rank even though no
	// goroutine ever took lo -> hi in this order before.
	x, y := classed("rank.x", 5), classed("rank.y", 4)
	lockAB(x, y)
	errs := c.all()
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], ErrRank)
	require.Contains(t, errs[0].Error(), "lock rank violation: acquiring rank.y (rank 4) while holding rank.x (rank 5)")

	e1, e2 := classed("rank.e1", 3), classed("rank.e2", 3)
	lockAB(e1, e2)
	require.Len(t, c.all(), 2)
	require.ErrorIs(t, c.all()[1], ErrRank)

	// Reported once per pair.
	lockAB(x, y)
	require.Len(t, c.all(), 2)

	// An unranked lock may be taken at any point.
	u := classed("rank.none", 0)
	lockAB(hi, u)
	lockAB(lo, u)
	require.Len(t, c.all(), 2)
}

func TestSameClassNesting(t *testing.T) {
	c := collect(t)
	acct := NewClass("account", 0)
	var a1, a2 Mutex
	a1.SetClass(acct)
	a2.SetClass(acct)
	lockAB(&a1, &a2)
	errs := c.all()
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], ErrNesting)
	require.Contains(t, errs[0].Error(), "second lock of class account outside LockAll")

	ranked := NewClass("ranked-account", 7)
	var r1, r2 Mutex
	r1.SetClass(ranked)
	r2.SetClass(ranked)
	LockAll(&r2, &r1)
	UnlockAll(&r2, &r1)
	require.Len(t, c.all(), 1)
	require.Zero(t, heldHere())
}

func TestLockAllThousandMutexesNeverReports(t *testing.T) {
	c := collect(t)
	const n = 1000
	acct := NewClass("lockall.account", 3)
	shared := make([]Mutex, n)
	for i := range shared {
		shared[i].SetClass(acct)
	}
	// Per-instance classes of mixed kinds: every pair gets ordered.
	var mixed []sync.Locker
	for i := range n {
		switch i % 4 {
		case 0:
			mixed = append(mixed, new(Mutex))
		case 1:
			mixed = append(mixed, new(RWMutex))
		case 2:
			mixed = append(mixed, new(TimedMutex))
		default:
			mixed = append(mixed, new(RWMutex).RLocker())
		}
	}
	counters := make([]int, n)
	workers, rounds := 4, 4
	if testing.Short() {
		rounds = 2
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range rounds {
				// A random subset of the shared class in random order.
				perm := rng.Perm(n)[:1+rng.IntN(n)]
				ls := make([]sync.Locker, len(perm))
				for i, p := range perm {
					ls[i] = &shared[p]
				}
				LockAll(ls...)
				for _, p := range perm {
					counters[p]++ // the race detector checks exclusion
				}
				UnlockAll(ls...)

				ms := append([]sync.Locker(nil), mixed...)
				rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
				LockAll(ms...)
				UnlockAll(ms...)
			}
		})
	}
	wg.Wait()
	require.Empty(t, c.all())
	require.Zero(t, heldHere())
	sum := 0
	for _, v := range counters {
		sum += v
	}
	require.Positive(t, sum)
}

func TestGraphDoesNotPinMutexes(t *testing.T) {
	c := collect(t)
	hub := classed("gc.hub", 0)
	hubClass := hub.lk.class.Load()
	var weaks []weak.Pointer[Mutex]
	var rws []weak.Pointer[RWMutex]
	// Holding the per-instance classes is fine: a class never references
	// its mutex, which is the property under test.
	var classes []*Class
	var keep []any
	for range 20 {
		a, b, rw := new(Mutex), new(Mutex), new(RWMutex)
		lockAB(a, b)
		lockAB(hub, a)
		lockAB(rw, hub)
		weaks = append(weaks, weak.Make(a), weak.Make(b))
		rws = append(rws, weak.Make(rw))
		classes = append(classes, a.lk.class.Load(), b.lk.class.Load(), rw.lk.class.Load())
		keep = append(keep, a, b, rw)
	}
	graph.mu.Lock()
	require.Equal(t, 20, hubClass.node.out.Load().len())
	graph.mu.Unlock()
	runtime.KeepAlive(keep) // from here on they may go
	linked := func(cl *Class) bool {
		graph.mu.Lock()
		defer graph.mu.Unlock()
		return len(cl.node.in) > 0 || cl.node.out.Load().len() > 0
	}
	require.Eventually(t, func() bool {
		runtime.GC()
		for _, w := range weaks {
			if w.Value() != nil {
				return false
			}
		}
		for _, w := range rws {
			if w.Value() != nil {
				return false
			}
		}
		// Cleanups run after the objects are gone: then every edge to or
		// from a dropped class is unlinked.
		for _, cl := range classes {
			if linked(cl) {
				return false
			}
		}
		return hubClass.node.out.Load().len() == 0
	}, 10*time.Second, 10*time.Millisecond)
	require.Empty(t, c.all())
	require.False(t, linked(hubClass), "the hub's edges went with the dropped classes")
}

// TestOrderSurvivesCollectedIntermediate: S is held while D is acquired,
// with a zero-value mutex r held in between. When r is garbage-collected
// its class and edges go, but "S before D" really happened and must still
// be known: D then S is an inversion.
func TestOrderSurvivesCollectedIntermediate(t *testing.T) {
	c := collect(t)
	s, d := classed("keep.S", 0), classed("keep.D", 0)
	var rc *Class
	run(func() {
		r := new(Mutex)
		lockAB(s, r) // S -> r is known before r is taken again below
		s.Lock()
		r.Lock()
		d.Lock()
		work.Add(1)
		d.Unlock()
		r.Unlock()
		s.Unlock()
		rc = r.lk.class.Load()
	})
	require.Eventually(t, func() bool {
		runtime.GC()
		graph.mu.Lock()
		defer graph.mu.Unlock()
		return len(rc.node.in) == 0 && rc.node.out.Load() == nil
	}, 10*time.Second, 10*time.Millisecond, "r was not collected")
	require.Empty(t, c.all())
	run(func() { lockAB(d, s) })
	require.Len(t, c.all(), 1)
	require.ErrorIs(t, c.all()[0], ErrInversion)
}

func TestHandlerRunsWithoutInternalLocks(t *testing.T) {
	var inHandler []string
	other := classed("h.other", 0)
	restore := SetHandler(func(e *OrderError) {
		// Would self-deadlock if the checker still held its shard or
		// graph lock.
		other.Lock()
		inHandler = append(inHandler, e.Kind.Error())
		_ = Stats()
		other.Unlock()
	})
	defer restore()
	a, b := classed("h.A", 0), classed("h.B", 0)
	lockAB(a, b)
	lockAB(b, a)
	require.Equal(t, []string{"lock order inversion"}, inHandler)
}

func TestDefaultHandlerPanicsBeforeLocking(t *testing.T) {
	restore := SetHandler(nil)
	defer restore()
	a, b := classed("p.A", 0), classed("p.B", 0)
	lockAB(a, b)
	var got any
	func() {
		defer func() { got = recover() }()
		b.Lock()
		defer b.Unlock()
		a.Lock() // panics: a is not taken
		work.Add(1)
		a.Unlock()
	}()
	var oe *OrderError
	require.True(t, errors.As(got.(error), &oe))
	require.ErrorIs(t, oe, ErrInversion)
	require.True(t, a.TryLock(), "the report came before the lock was taken")
	a.Unlock()
	require.Zero(t, heldHere())
}

func TestWatchdogReportsLongHoldAndWait(t *testing.T) {
	_, err := SetWatchdog(0, func(Report) {})
	require.Error(t, err)
	_, err = SetWatchdog(time.Second, nil)
	require.Error(t, err)

	reports := make(chan Report, 16)
	stop, err := SetWatchdog(20*time.Millisecond, func(r Report) { reports <- r })
	require.NoError(t, err)
	defer stop()
	_, err = SetWatchdog(time.Second, func(Report) {})
	require.ErrorIs(t, err, ErrWatchdogRunning)

	m := classed("wd.M", 0)
	holding, release, waiterDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		holdForWatchdog(m, holding, release)
	}()
	<-holding
	go func() {
		defer close(waiterDone)
		m.Lock()
		work.Add(1)
		m.Unlock()
	}()
	var held, waited *Report
	for held == nil || waited == nil {
		r := <-reports
		require.Equal(t, "wd.M", r.Class)
		if r.Waiting {
			waited = &r
		} else {
			held = &r
		}
	}
	close(release)
	<-waiterDone
	require.GreaterOrEqual(t, held.For, 20*time.Millisecond)
	require.Contains(t, held.Stack, "holdForWatchdog")
	require.Equal(t, held.Goroutine, waited.HolderGoroutine)
	require.Contains(t, waited.HolderStack, "holdForWatchdog")
	require.Contains(t, waited.String(), "has waited")
	require.NotContains(t, waited.String(), "for for")
	stop()
	stop()
	require.Zero(t, wdClock.Load())
}

// TestWatchdogReportsHoldAfterLongWait: a goroutine that waited too long
// (reported) and then holds the lock too long is reported again, for the
// hold: the two are separate findings.
func TestWatchdogReportsHoldAfterLongWait(t *testing.T) {
	reports := make(chan Report, 16)
	stop, err := SetWatchdog(20*time.Millisecond, func(r Report) { reports <- r })
	require.NoError(t, err)
	defer stop()

	m := classed("wd.again", 0)
	holding, releaseC := make(chan struct{}), make(chan struct{})
	releaseWaiterC, waiterDone := make(chan struct{}), make(chan struct{})
	// Deferred so that a failing test still lets both goroutines finish.
	release, releaseWaiter := sync.OnceFunc(func() { close(releaseC) }), sync.OnceFunc(func() { close(releaseWaiterC) })
	defer func() { release(); releaseWaiter(); <-waiterDone }()
	go holdForWatchdog(m, holding, releaseC)
	<-holding
	waiter := make(chan int64, 1)
	acquired := make(chan struct{})
	go func() {
		defer close(waiterDone)
		waiter <- curGoid()
		m.Lock()
		close(acquired)
		<-releaseWaiterC
		m.Unlock()
	}()
	wgid := <-waiter
	next := func() Report {
		select {
		case r := <-reports:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no watchdog report within 10s")
			return Report{}
		}
	}
	for r := next(); !r.Waiting || r.Goroutine != wgid; r = next() {
	}
	release()
	<-acquired
	for r := next(); r.Waiting || r.Goroutine != wgid; r = next() {
	}
}

func holdForWatchdog(m *Mutex, holding, release chan struct{}) {
	m.Lock()
	close(holding)
	<-release
	m.Unlock()
}

// refGraph is the fuzz test's reference: a plain adjacency matrix with a
// depth-first reachability check, no snapshots, no shortcuts.
type refGraph struct {
	known, good [][]bool
}

func (g *refGraph) reach(from, to int) bool {
	seen := make([]bool, len(g.good))
	var dfs func(int) bool
	dfs = func(n int) bool {
		if n == to {
			return true
		}
		seen[n] = true
		for m, ok := range g.good[n] {
			if ok && !seen[m] && dfs(m) {
				return true
			}
		}
		return false
	}
	return dfs(from)
}

var firstLock = [...]func(*Mutex){
	func(m *Mutex) { m.Lock(); work.Add(1); m.Unlock() },
	func(m *Mutex) { m.Lock(); work.Add(1); m.Unlock() },
	func(m *Mutex) { m.Lock(); work.Add(1); m.Unlock() },
	func(m *Mutex) { m.Lock(); work.Add(1); m.Unlock() },
	func(m *Mutex) { m.Lock(); work.Add(1); m.Unlock() },
}

func FuzzOrderAgainstReference(f *testing.F) {
	f.Add([]byte{0, 1, 15, 1, 0, 15})
	f.Add([]byte{0, 1, 15, 1, 2, 15, 2, 0, 15})
	f.Add([]byte{0, 1, 2, 3, 15, 3, 2, 1, 0, 15, 4, 0, 15})
	f.Add([]byte{4, 3, 10, 2, 1, 0, 15, 0, 4, 12, 3, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const n = 5
		if len(ops) > 200 {
			ops = ops[:200]
		}
		c := collect(t)
		ms := make([]*Mutex, n)
		names := map[string]int{}
		for i := range ms {
			ms[i] = new(Mutex)
			// Shared classes take the chained shortcut, per-instance
			// ones never do (see check): mix both.
			if i%2 == 1 {
				ms[i].SetClass(NewClass("fuzz."+string(rune('a'+i)), 0))
			}
			// Creates and names the per-instance class, from a site of its
			// own: per-instance classes first locked at one site are one
			// declaration for report deduplication.
			firstLock[i](ms[i])
			names[ms[i].lk.class.Load().String()] = i
		}
		ref := &refGraph{known: make([][]bool, n), good: make([][]bool, n)}
		for i := range n {
			ref.known[i], ref.good[i] = make([]bool, n), make([]bool, n)
		}
		var held []int
		want := 0
		isHeld := func(x int) bool {
			for _, h := range held {
				if h == x {
					return true
				}
			}
			return false
		}
		for _, op := range ops {
			x := int(op) % n
			switch (int(op) / n) % 4 {
			case 3: // TryLock x if not held: held, but no edges
				if isHeld(x) {
					continue
				}
				require.True(t, ms[x].TryLock())
				held = append(held, x)
			case 0, 1: // lock x if not held
				if isHeld(x) {
					continue
				}
				for i := len(held) - 1; i >= 0; i-- {
					h := held[i]
					if ref.known[h][x] {
						continue
					}
					ref.known[h][x] = true
					if ref.reach(x, h) {
						want++
					} else {
						ref.good[h][x] = true
					}
				}
				ms[x].Lock()
				held = append(held, x)
				require.Len(t, c.all(), want)
			default: // unlock the lock at position x of the held list
				if len(held) == 0 {
					continue
				}
				i := x % len(held)
				ms[held[i]].Unlock()
				held = append(held[:i], held[i+1:]...)
			}
		}
		for i := len(held) - 1; i >= 0; i-- {
			ms[held[i]].Unlock()
		}
		require.Zero(t, heldHere())
		// Every report is a real cycle of the reference graph.
		for _, e := range c.all() {
			require.ErrorIs(t, e, ErrInversion)
			for i, ed := range e.Edges {
				from, to := names[ed.From], names[ed.To]
				require.True(t, ref.known[from][to], "edge %s -> %s never happened", ed.From, ed.To)
				require.Equal(t, ed.To, e.Edges[(i+1)%len(e.Edges)].From)
			}
		}
	})
}

// totalHeld counts the held-lock records of all goroutines.
func totalHeld() int {
	n := 0
	for i := range shards {
		s := &shards[i]
		s.mu.Lock()
		for _, gl := range s.m {
			n += len(gl.held)
		}
		s.mu.Unlock()
	}
	return n
}

// TestCheckerStressConsistentOrder: many goroutines take random subsets of
// eight ranked classes, always in ascending rank, with TryLocks, read
// locks and unlocks handed to other goroutines mixed in. Nothing is
// reported, and no held-lock record survives.
func TestCheckerStressConsistentOrder(t *testing.T) {
	c := collect(t)
	require.Zero(t, totalHeld())
	const classes = 8
	rws := make([]RWMutex, classes)
	for i := range rws {
		rws[i].SetClass(NewClass("stress."+string(rune('a'+i)), i+1))
	}
	iters := 300
	if testing.Short() {
		iters = 100
	}
	var wg sync.WaitGroup
	for g := range 12 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 4))
			for range iters {
				var held []func()
				for i := range rws {
					if rng.IntN(3) != 0 {
						continue
					}
					rw := &rws[i]
					switch rng.IntN(4) {
					case 0:
						rw.RLock()
						held = append(held, rw.RUnlock)
					case 1:
						if rw.TryLock() {
							held = append(held, rw.Unlock)
						}
					default:
						rw.Lock()
						work.Add(1)
						held = append(held, rw.Unlock)
					}
				}
				for i := len(held) - 1; i >= 0; i-- {
					held[i]()
				}
				// Hand a write lock to another goroutine to release.
				rw := &rws[rng.IntN(classes)]
				rw.Lock()
				run(rw.Unlock)
			}
		})
	}
	wg.Wait()
	require.Empty(t, c.all())
	require.Zero(t, totalHeld())
}

// TestLockAllContextSameClassIsNotNesting: a set of one class taken by
// LockAllContext (TimedMutexes too) is ordered, like LockAll's.
func TestLockAllContextSameClassIsNotNesting(t *testing.T) {
	c := collect(t)
	acct := NewClass("lac.account", 0)
	ms := make([]Mutex, 3)
	ts := make([]TimedMutex, 3)
	var ls []sync.Locker
	for i := range ms {
		ms[i].SetClass(acct)
		ts[i].SetClass(acct)
		ls = append(ls, &ms[i], &ts[i])
	}
	require.NoError(t, LockAllContext(t.Context(), ls...))
	UnlockAll(ls...)
	require.Empty(t, c.all())
	require.Zero(t, heldHere())
	// Outside of it, nesting is reported as before.
	lockAB(&ts[0], &ts[1])
	require.Len(t, c.all(), 1)
	require.ErrorIs(t, c.all()[0], ErrNesting)
}

// TestRankViolationShowsTheCycle: a -> b -> c was seen in rank order; c
// held while taking a breaks the ranks, and the report shows the cycle.
func TestRankViolationShowsTheCycle(t *testing.T) {
	c := collect(t)
	a, b, d := classed("rc.a", 1), classed("rc.b", 2), classed("rc.c", 3)
	lockAB(a, b)
	lockAB(b, d)
	x := classed("rc.x", 4)
	run(func() {
		d.Lock()
		x.Lock()
		a.Lock() // outranked by both held locks
		work.Add(1)
		a.Unlock()
		x.Unlock()
		d.Unlock()
	})
	errs := c.all()
	require.Len(t, errs, 1, "one report per acquisition")
	e := errs[0]
	require.ErrorIs(t, e, ErrRank)
	msg := e.Error()
	// The graph knows rc.a -> rc.b -> rc.c -> rc.x (the last edge from
	// this goroutine): the whole cycle the ranks forbid.
	require.Contains(t, msg, "lock rank violation: acquiring rc.a (rank 1) while holding rc.x (rank 4) (cycle: rc.a (rank 1) -> rc.b (rank 2) -> rc.c (rank 3) -> rc.x (rank 4) -> rc.a (rank 1))")
	require.Contains(t, msg, "acquired rc.a (rank 1) while holding rc.c (rank 3)", "every outranking held lock is named")
	last := e.Edges[len(e.Edges)-1]
	require.True(t, last.Current)
	require.Equal(t, "rc.x (rank 4)", last.From)
}
