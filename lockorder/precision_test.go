//go:build lockorder || race

package lockorder

import (
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
