//go:build lockorder || race

package lockorder

import "testing"

const checkingBuild = true

// TestNestedAcquisitionDoesNotAllocate: once a nesting has been seen, the
// checking build's steady state (a write lock under another, its gate
// set unchanged) allocates nothing. A closure in the gate bookkeeping
// once cost 24 B per acquisition, the go-deadlock comparison with it.
var allocWork int

func TestNestedAcquisitionDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates; the lockorder tag alone is measured")
	}
	var a, b Mutex
	a.SetClass(NewClass("alloc.A", 0))
	b.SetClass(NewClass("alloc.B", 0))
	nest := func() {
		a.Lock()
		b.Lock()
		allocWork++
		b.Unlock()
		a.Unlock()
	}
	nest() // the first time records the edge and the gate set
	if n := testing.AllocsPerRun(1000, nest); n != 0 {
		t.Fatalf("nested acquisition allocates %v times per run", n)
	}
}
