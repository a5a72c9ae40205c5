package limiter

import (
	"hash/maphash"
	"net/netip"
	"sync"
)

// ipTable holds the Listener's per-prefix state in fixed memory: open
// connections and the per-prefix accept-rate TAT. Accepts are serialised by
// the kernel and a syscall apiece, so one mutex costs nothing measurable
// here, and it lets admission check and update both limits atomically.
type ipTable struct {
	mu     sync.Mutex
	seed   maphash.Seed
	v6Bits int
	slots  []ipSlot
	mask   uint64
	used   int
	lossy  uint64
}

type ipSlot struct {
	tag    uint64 // 0 = empty
	active int32
	tat    int64
}

const ipProbeWindow = 16

func newIPTable(n, v6Bits int) *ipTable {
	size := ipProbeWindow
	for size < n {
		size *= 2
	}
	return &ipTable{seed: maphash.MakeSeed(), v6Bits: v6Bits, slots: make([]ipSlot, size), mask: uint64(size - 1)}
}

// admit checks and, if both pass, takes one connection and one accept-rate
// token for a's prefix. It returns the slot to release later.
func (t *ipTable) admit(a netip.Addr, now int64, maxConns int, g *gcra) (int, Reason) {
	h := addrHash(t.seed, a, t.v6Bits)
	if h == 0 {
		h = 1
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	idx, free, oldest := -1, -1, -1
	for p := uint64(0); p < ipProbeWindow; p++ {
		i := int((h + p) & t.mask)
		s := &t.slots[i]
		if s.tag == h {
			idx = i
			break
		}
		if s.tag == 0 {
			if free < 0 || t.slots[free].tag != 0 {
				free = i
			}
			break
		}
		if s.active > 0 {
			continue
		}
		if s.tat <= now {
			if free < 0 {
				free = i
			}
		} else if oldest < 0 || s.tat < t.slots[oldest].tat {
			oldest = i
		}
	}
	if idx < 0 {
		switch {
		case free >= 0:
			idx = free
		case oldest >= 0:
			idx = oldest
			t.lossy++
		default:
			return -1, TableFull
		}
		if t.slots[idx].tag == 0 {
			t.used++
		}
		t.slots[idx] = ipSlot{tag: h}
	}
	s := &t.slots[idx]
	if maxConns > 0 && int(s.active) >= maxConns {
		return -1, IPConns
	}
	if g != nil {
		newTat, ok := g.admit(s.tat, now)
		if !ok {
			return -1, IPAcceptRate
		}
		s.tat = newTat
	}
	s.active++
	return idx, NoReason
}

func (t *ipTable) release(idx int) {
	t.mu.Lock()
	t.slots[idx].active--
	t.mu.Unlock()
}

// held returns how many connections slot idx's prefix holds.
func (t *ipTable) held(idx int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return int(t.slots[idx].active)
}

func (t *ipTable) stats() (used int, lossy uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.used, t.lossy
}
