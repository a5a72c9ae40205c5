//go:build lockorder || race

package lockorder

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGatedReadCycleNotReported is issue 17's minimal false report: every
// writer of m holds gate, and the goroutine that holds m for reading while
// taking a also holds gate, so a's holder waiting for m(R) never waits
// behind a writer: no deadlock, no report.
func TestGatedReadCycleNotReported(t *testing.T) {
	c := collect(t)
	gate, a := classed("gated.gate", 0), classed("gated.a", 0)
	var m RWMutex
	m.SetClass(NewClass("gated.m", 0))
	run(func() { gate.Lock(); m.Lock(); work.Add(1); m.Unlock(); gate.Unlock() })
	run(func() { a.Lock(); m.RLock(); a.Unlock(); m.RUnlock() })
	run(func() {
		gate.Lock()
		m.RLock()
		a.Lock()
		work.Add(1)
		a.Unlock()
		m.RUnlock()
		gate.Unlock()
	})
	require.Empty(t, c.all())
}

// TestUngatedReadCycleReported: the same cycle without the gate on the
// reader's side is a real deadlock (a writer queued on m blocks a's holder,
// and m's reader waits for a): reported.
func TestUngatedReadCycleReported(t *testing.T) {
	c := collect(t)
	gate, a := classed("ungated.gate", 0), classed("ungated.a", 0)
	var m RWMutex
	m.SetClass(NewClass("ungated.m", 0))
	run(func() { gate.Lock(); m.Lock(); work.Add(1); m.Unlock(); gate.Unlock() })
	run(func() { a.Lock(); m.RLock(); a.Unlock(); m.RUnlock() })
	run(func() { m.RLock(); a.Lock(); work.Add(1); a.Unlock(); m.RUnlock() })
	require.Len(t, c.all(), 1)
	require.ErrorIs(t, c.all()[0], ErrInversion)
}

// TestWriterWithoutGateMakesItReal: one writer of m without the gate is
// enough for the cycle to deadlock: reported.
func TestWriterWithoutGateMakesItReal(t *testing.T) {
	c := collect(t)
	gate, a := classed("wog.gate", 0), classed("wog.a", 0)
	var m RWMutex
	m.SetClass(NewClass("wog.m", 0))
	run(func() { gate.Lock(); m.Lock(); work.Add(1); m.Unlock(); gate.Unlock() })
	run(func() { m.Lock(); work.Add(1); m.Unlock() }) // no gate
	run(func() { a.Lock(); m.RLock(); a.Unlock(); m.RUnlock() })
	run(func() {
		gate.Lock()
		m.RLock()
		a.Lock()
		work.Add(1)
		a.Unlock()
		m.RUnlock()
		gate.Unlock()
	})
	require.Len(t, c.all(), 1)
}

// TestReadOnlyCycles: RLock(A) -> RLock(B) here and RLock(B) -> RLock(A)
// there deadlock once writers queue on both (reported); when every writer
// of A and of B holds a gate that the second order is taken under, no
// writer can queue in between (not reported).
func TestReadOnlyCycles(t *testing.T) {
	c := collect(t)
	var a, b RWMutex
	a.SetClass(NewClass("ro.a", 0))
	b.SetClass(NewClass("ro.b", 0))
	run(func() { a.Lock(); work.Add(1); a.Unlock() })
	run(func() { b.Lock(); work.Add(1); b.Unlock() })
	run(func() { lockAB(a.RLocker(), b.RLocker()) })
	run(func() { lockAB(b.RLocker(), a.RLocker()) })
	require.Len(t, c.all(), 1, "writers without a gate: a real deadlock")

	gate := classed("ro.gate", 0)
	var x, y RWMutex
	x.SetClass(NewClass("ro.x", 0))
	y.SetClass(NewClass("ro.y", 0))
	run(func() {
		gate.Lock()
		x.Lock()
		y.Lock()
		work.Add(1)
		y.Unlock()
		x.Unlock()
		gate.Unlock()
	})
	run(func() { lockAB(x.RLocker(), y.RLocker()) })
	run(func() {
		gate.Lock()
		lockAB(y.RLocker(), x.RLocker())
		gate.Unlock()
	})
	require.Len(t, c.all(), 1, "every writer holds the gate the reverse order runs under")
}

// node is a type with a mutex field and no SetClass: its instances get
// per-instance classes.
type node struct {
	mu  Mutex
	val int
}

func (n *node) lockThen(other *node) {
	n.mu.Lock()
	other.mu.Lock()
	n.val, other.val = other.val, n.val
	other.mu.Unlock()
	n.mu.Unlock()
}

// TestThousandInstancesOneReport: the same AB-BA bug on 1,000 pairs of
// instances of one type is one report, not 1,000.
func TestThousandInstancesOneReport(t *testing.T) {
	c := collect(t)
	var first, second *node
	for range 1000 {
		a, b := &node{}, &node{}
		first, second = a, b
		a.mu.Lock() // every instance is first locked here
		work.Add(1)
		a.mu.Unlock()
		b.mu.Lock()
		work.Add(1)
		b.mu.Unlock()
		a.lockThen(b)
		b.lockThen(a)
	}
	require.Len(t, c.all(), 1)
	require.ErrorIs(t, c.all()[0], ErrInversion)
	require.NotNil(t, first)
	require.NotNil(t, second)
}

// TestCopyAfterUseReportedAsCopy: a used mutex copied (go vet's copylocks
// would say so) is a different lock: reported as a copy, and holding both
// is not "same-class nesting".
func TestCopyAfterUseReportedAsCopy(t *testing.T) {
	c := collect(t)
	orig := &node{}
	orig.mu.Lock()
	work.Add(1)
	orig.mu.Unlock()
	cp := new(node)
	copyNode(cp, orig)
	orig.mu.Lock()
	cp.mu.Lock()
	work.Add(1)
	cp.mu.Unlock()
	orig.mu.Unlock()
	errs := c.all()
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], ErrCopied)
	require.Regexp(t, `^mutex copied after first use: Mutex#\d+ \(first locked at precision_test\.go:\d+\) was copied; the copy is Mutex#\d+ \(a copy of Mutex#`, errs[0].Error())
	require.NotEqual(t, orig.mu.lk.class.Load(), cp.mu.lk.class.Load())
}

// copyNode copies a used mutex on purpose, as the bug does (through
// reflect, which go vet's copylocks check does not follow).
func copyNode(dst, src *node) {
	reflect.ValueOf(dst).Elem().Set(reflect.ValueOf(src).Elem())
}

// db mimics bbolt's DB: meta and mmap are fields locked in one order by
// commit (meta, then mmap) and in the other by remap (mmap, then meta),
// and meta is first locked by open in some instances and by commit in
// others.
type db struct {
	meta, mmap Mutex
}

func (d *db) open() {
	d.meta.Lock() // the first use of meta in an opened db
	work.Add(1)
	d.meta.Unlock()
}

func (d *db) commit() {
	d.meta.Lock() // the first use of meta in a db never opened
	d.mmap.Lock()
	work.Add(1)
	d.mmap.Unlock()
	d.meta.Unlock()
}

func (d *db) remap() {
	d.mmap.Lock()
	d.meta.Lock()
	work.Add(1)
	d.meta.Unlock()
	d.mmap.Unlock()
}

// TestOneFieldFirstLockedAtTwoPlacesOneReport: the same inversion in
// instances whose meta field was first locked at different places is one
// report (bbolt's metalock appeared as "first locked at db.go:797" and
// "db.go:852", one report each), and so is the same cycle closed by remap
// in one instance and by commit in another.
func TestOneFieldFirstLockedAtTwoPlacesOneReport(t *testing.T) {
	c := collect(t)
	for i := range 200 {
		d := new(db)
		if i%2 == 0 {
			d.open()
		}
		if i%3 == 0 {
			d.commit()
			d.remap()
		} else {
			d.remap()
			d.commit()
		}
	}
	errs := c.all()
	require.Len(t, errs, 1, "one field pair, one cycle: one report, however many instances and first sites")
	require.ErrorIs(t, errs[0], ErrInversion)
}

// TestDistinctLocksAtOneSiteStayDistinct: distinct variables acquired at
// one line (a loop, a helper) are not merged into one name: two distinct
// cycles are two reports.
func TestDistinctLocksAtOneSiteStayDistinct(t *testing.T) {
	c := collect(t)
	var a, b, x, y Mutex
	// Each first locked on a line of its own: four first sites.
	a.Lock()
	work.Add(1)
	a.Unlock()
	b.Lock()
	work.Add(1)
	b.Unlock()
	x.Lock()
	work.Add(1)
	x.Unlock()
	y.Lock()
	work.Add(1)
	y.Unlock()
	lockPair := func(p, q *Mutex) {
		p.Lock()
		q.Lock() // every nested acquisition is made here
		work.Add(1)
		q.Unlock()
		p.Unlock()
	}
	lockPair(&a, &b)
	lockPair(&b, &a)
	lockPair(&x, &y)
	lockPair(&y, &x)
	require.Len(t, c.all(), 2)
}
