package limiter

import (
	"math/bits"
	"sync/atomic"
)

// sketchRows is the number of independent cells a key maps to. A fresh key
// is overestimated only when every one of its cells holds a deadline still
// in the future, so more rows mean fewer false denials while few keys are
// folded, and fewer cells per row mean more once many are.
const sketchRows = 2

// sketch remembers the state of evicted keys, in fixed memory:
// a count-min sketch whose cells hold deadlines (TATs) and combine by max
// instead of sum. Folding a key raises each of its cells to at least its
// TAT; estimating takes the minimum of its cells. Every cell a key maps to
// is at least that key's last folded TAT, so the estimate never lies below
// it: a returning key is never treated as having more quota than it had
// when it was evicted. The error is one-sided: a fresh key whose cells all
// hold other keys' future deadlines starts with less quota than it should
// (a false denial, counted in KeyedStats.SketchDenials), never more.
//
// Cells need no expiry: a deadline in the past constrains nothing, since a
// GCRA step takes max(TAT, now).
type sketch struct {
	cells []atomic.Int64 // sketchRows rows of 1<<rowBits cells
	bits  uint
}

// multipliers decorrelate the rows from each other and from the table's
// bucket and shard bits, which come from the same hash.
var sketchMul = [sketchRows]uint64{0x9e3779b97f4a7c15, 0xc2b2ae3d27d4eb4f}

func newSketch(capacity int) *sketch {
	// As many cells in all as the table has slots: 8 bytes more per key.
	rowBits := uint(bits.Len(uint(capacity/sketchRows)) - 1)
	return &sketch{cells: make([]atomic.Int64, sketchRows<<rowBits), bits: rowBits}
}

func (s *sketch) cell(row int, h uint64) *atomic.Int64 {
	i := (h * sketchMul[row]) >> (64 - s.bits)
	return &s.cells[uint64(row)<<s.bits+i]
}

// fold records that key h was forgotten with TAT tat.
func (s *sketch) fold(h uint64, tat int64) {
	for row := range sketchRows {
		c := s.cell(row, h)
		for {
			old := c.Load()
			if old >= tat || c.CompareAndSwap(old, tat) {
				break
			}
		}
	}
}

// estimate returns an upper bound on the TAT key h had when last folded,
// or a time in the past.
func (s *sketch) estimate(h uint64) int64 {
	est := s.cell(0, h).Load()
	for row := 1; row < sketchRows; row++ {
		est = min(est, s.cell(row, h).Load())
	}
	return est
}
