package limiter

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
)

// The table maps a key's 64-bit seeded hash to its GCRA state in a fixed
// array of 16-byte slots, split into shards. It never allocates after
// construction: a new key takes a free slot in one of its two buckets, or
// evicts.
//
// Concurrency. A slot is {tag, tat}. Reads and GCRA updates are lock-free:
// a reader loads tat, checks tag, and commits with a CAS on tat, or, when
// the bucket is not full (tat >= now, the step is tat += cost), with an
// atomic add, which cannot fail and retry under contention on a hot key.
// Only an insert changes tag, and it runs under the shard's mutex as:
// tat := busy, tag := h, tat := fresh. busy is so negative that an add
// racing the insert leaves it negative, and every tat < 0 reads as busy. A
// reader that saw the previous owner's tat fails its CAS (tat is now busy or
// the new owner's value) and retries; an adder re-checks tag after adding
// and retries under the lock. An update can thus land on the wrong key only
// in two races that both err towards denial, never admission: an ABA on tat
// (after a lossy eviction the new owner's TAT equals a value the evicted key
// once held, and a CAS started before the eviction charges the new key), and
// an add that lands between an insert's final stores (the new owner is
// charged one request). An add that overshoots the limit is taken back with
// a CAS; if that CAS fails, the key keeps one request's worth of extra debt.

const (
	probeWindow = 8
	busy        = math.MinInt64 // tat of a slot being (re)assigned
)

type slot struct {
	tag atomic.Uint64 // key hash; 0 = empty (hashes of 0 are mapped to 1)
	tat atomic.Int64
}

// A shard is 128 bytes: the 48 that every step reads come first and the
// ones inserts write start 64 bytes later, so that the two never share a
// cache line when the slice of shards starts at a line or 8 bytes past one
// (after the allocator's header), as Go places it.
type shard struct {
	slots []slot
	mask  uint64
	// hot is the hash of a key whose lock-free steps were lately admitted
	// while another core wrote the same TAT, or 0, and hotSlot its slot
	// (see learn and step). They change only when a key turns hot or cold,
	// not on every step. They are set one after the other: a step that
	// reads them between the two stores prefetches a wrong line, which
	// costs nothing but the prefetch.
	hot     atomic.Uint64
	hotSlot atomic.Pointer[slot]
	_       [16]byte

	mu sync.Mutex // serialises inserts and evictions, not updates
	// The counters change under mu (on inserts and evictions, not on
	// updates) but are atomic so that Stats reads them without taking 64
	// locks: an uncontended atomic add under a held lock costs next to
	// nothing more than a plain one.
	used   atomic.Int64 // slots with a tag
	evicts atomic.Uint64
	lossy  atomic.Uint64
	// sketchDenials counts requests of untracked keys denied on the
	// sketch's estimate (EvictStrict).
	sketchDenials atomic.Uint64
	rng           uint64 // xorshift state for EvictLossy's victim choice, under mu
	_             [16]byte
}

type table struct {
	shards []shard
	shift  uint // h >> shift selects the shard
	sketch *sketch
	// lossy (EvictLossy): a victim is drawn at random, and a key that is
	// not tracked starts no further than one request from its limit,
	// whatever the sketch estimates, so that it is always served once.
	lossy bool
}

func newTable(capacity int, policy EvictionPolicy, seed uint64) *table {
	nshards := 1
	for nshards < 64 && capacity/(nshards*2) >= 256 {
		nshards *= 2
	}
	per := 1
	for per*nshards < capacity || per < probeWindow {
		per *= 2
	}
	t := &table{shards: make([]shard, nshards), shift: 64}
	for n := nshards; n > 1; n >>= 1 {
		t.shift--
	}
	for i := range t.shards {
		t.shards[i].slots = make([]slot, per)
		t.shards[i].mask = uint64(per - 1)
		t.shards[i].rng = seed + uint64(i)*0x9e3779b97f4a7c15 | 1
	}
	t.sketch = newSketch(t.capacity())
	t.lossy = policy == EvictLossy
	return t
}

func (t *table) capacity() int { return len(t.shards) * len(t.shards[0].slots) }

// buckets returns the first slots of the two aligned buckets of probeWindow
// slots where h may live: two choices keep the table usable at high load,
// and an aligned bucket is two cache lines. The shard index takes the top
// bits of h, the buckets take the low and the middle bits.
func (s *shard) buckets(h uint64) (uint64, uint64) {
	const align = ^uint64(probeWindow - 1)
	return h & s.mask & align, bits.RotateLeft64(h, 32) & s.mask & align
}

// step applies one GCRA step costing cost to the key with hash h at time
// now. It returns the key's TAT after the step and whether the request
// passed.
//
// For the shard's hot key (see learn), step first asks for the cache line
// of its slot for writing, as an admitted step ends in a write to it. When
// several cores step one key and admit, each step then moves that line
// between the cores once rather than twice: the load of the tag in find
// took it shared from the core that wrote last, and the add had to take it
// again, exclusive. Any other key is read plainly: a denial only reads,
// and lines that cores only read stay in all their caches, where a
// prefetch for writing would move them from core to core on every step
// (keyed Allow at 1e5 keys in parallel, mostly denials: 58-69 ns a call
// with no prefetch, 105-125 with one on every lookup). On the machine of
// bench/RESULTS.md, in its slow state, parallel Allow on one admitted key
// went from 86-98 to 67-85 ns a call (x/time/rate: about 105-155), and
// denials of one key stayed at 20-26 ns.
func (t *table) step(h uint64, now, cost int64, g *gcra) (int64, bool) {
	if h == 0 {
		h = 1
	}
	s := &t.shards[h>>t.shift]
	if s.hot.Load() == h {
		if p := s.hotSlot.Load(); p != nil {
			prefetchForWrite(p)
		}
	}
	if sl := s.find(h); sl != nil {
		if tat, allowed, raced, ok := update(sl, h, now, cost, g); ok {
			if raced && allowed || !allowed && s.hot.Load() == h {
				s.learn(h, sl, allowed, now)
			}
			return tat, allowed
		}
	}
	return t.insert(s, h, now, cost, g)
}

// learn keeps s.hot after a step of h on slot sl that was denied, or
// admitted although another core wrote the TAT between the step's load and
// its own write. A key admitted in such a race becomes hot if no other key
// is (or, one time in 256, in place of the one that is, so that a key that
// went quiet does not keep the place); a hot key that is denied becomes
// cold. Two keys contending for the place thus rewrite it at most at a
// 256th of their rate. The draw is the top byte of the clock times 2⁶⁴/φ,
// which spreads consecutive clock readings, whatever their resolution,
// over the whole byte. Callers skip the call for the steps that change
// nothing: an admission no other write raced, a denial of a key that is
// not hot.
func (s *shard) learn(h uint64, sl *slot, allowed bool, now int64) {
	switch hot := s.hot.Load(); {
	case !allowed:
		if hot == h {
			s.hot.CompareAndSwap(h, 0)
		}
	case hot == h:
		if s.hotSlot.Load() != sl {
			s.hotSlot.Store(sl) // evicted and inserted again
		}
	case hot == 0 || uint64(now)*0x9e3779b97f4a7c15>>56 == 0:
		s.hotSlot.Store(sl)
		s.hot.Store(h)
	}
}

// find returns h's slot, or nil. A key goes to its second bucket only when
// the first is full, and slots are never emptied, so an empty slot in the
// first bucket proves the key is in neither.
func (s *shard) find(h uint64) *slot {
	b1, b2 := s.buckets(h)
	for _, b := range [2]uint64{b1, b2} {
		for p := uint64(0); p < probeWindow; p++ {
			sl := &s.slots[b+p]
			switch sl.tag.Load() {
			case h:
				return sl
			case 0:
				return nil
			}
		}
	}
	return nil
}

// update runs the lock-free GCRA step on sl for key h and returns the TAT
// after it and whether the request passed, and raced: whether another
// write to the TAT landed between this step's load and its own. It reports
// ok == false when sl is being reassigned or no longer holds h; the caller
// then takes the shard lock.
func update(sl *slot, h uint64, now, cost int64, g *gcra) (tat int64, allowed, raced, ok bool) {
	for ; ; raced = true {
		tat := sl.tat.Load()
		if tat < 0 || sl.tag.Load() != h {
			// busy, or busy moved by a racing add (see below)
			return 0, false, raced, false
		}
		newTat, allowed := g.admitCost(tat, now, cost)
		if !allowed {
			// Re-reading tat proves it was h's when the decision was made
			// (see the comment at the top of this file).
			if sl.tat.Load() == tat {
				return tat, false, raced, true
			}
			continue
		}
		if tat < now {
			// The bucket is full: the step sets tat to now+cost, which only
			// a CAS can do without moving it backwards.
			if sl.tat.CompareAndSwap(tat, newTat) {
				return newTat, true, raced, true
			}
			continue
		}
		// The bucket is not full, so the step is a pure increment. Under
		// contention an add cannot fail and retry the way a CAS does.
		got := sl.tat.Add(cost)
		prev := got - cost
		if prev < 0 || sl.tag.Load() != h {
			// The slot was being reassigned: the add landed on busy (which
			// the inserter overwrites) or on the slot's next owner, which it
			// charges one request too many, an error towards denial (the
			// ABA case at the top of this file). Retry under the lock.
			return 0, false, raced, false
		}
		if prev < now {
			// Another step's undo (or a Reset) moved tat below now after it
			// was loaded, so the add started from prev, not from now as a
			// full bucket's step does. Adding the difference makes the
			// charge exact whatever else was added meanwhile; if the slot
			// changed hands in between, retry under the lock, which at
			// worst charges this request twice (towards denial).
			got = sl.tat.Add(now - prev)
			if got < 0 || sl.tag.Load() != h {
				return 0, false, raced, false
			}
		}
		if got-now <= g.tolerance {
			return got, true, raced || prev != tat, true
		}
		// Raced past the limit: take the add back if nothing moved since,
		// else leave it, one request's worth of error towards denial.
		sl.tat.CompareAndSwap(got, got-cost)
		return prev, false, raced, true
	}
}

// insert handles a key not found lock-free: under the shard lock it looks
// again, then takes an empty slot, else a slot whose bucket is full again
// (TAT <= now, so forgetting it loses nothing), else evicts a key whose
// bucket is not full: a lossy eviction, chosen and remembered as the
// table's EvictionPolicy says (see victim).
//
// A new key starts from the sketch's estimate of its TAT rather than from
// a full bucket (under EvictLossy, from no further than one request short
// of its limit), and a key the estimate denies takes no slot: its state is
// already in the sketch, and evicting a tracked key for it would only fold
// more state into the sketch.
func (t *table) insert(s *shard, h uint64, now, cost int64, g *gcra) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if sl := s.find(h); sl != nil {
			// Only lock holders change tags, so this loop ends.
			for {
				if tat, allowed, raced, ok := update(sl, h, now, cost, g); ok {
					if raced && allowed || !allowed {
						s.learn(h, sl, allowed, now)
					}
					return tat, allowed
				}
			}
		}
		start := max(t.sketch.estimate(h), now)
		if t.lossy {
			// At most one request's worth of debt short of the limit: the
			// key is served now (as a fresh key must be under EvictLossy),
			// and a returning key that owed quota gets one request back,
			// not its whole burst.
			start = min(start, max(now, now+g.tolerance-cost))
		}
		newTat, allowed := g.admitCost(start, now, cost)
		if !allowed {
			if start > now {
				s.sketchDenials.Add(1)
			}
			s.learn(h, nil, false, now)
			return start, false
		}
		victim, victimTat, lossy := s.victim(h, now, t.lossy)
		// A CAS, not a store: a lock-free update may have admitted a request
		// for the victim since we read its TAT, and must not be erased.
		if !victim.tat.CompareAndSwap(victimTat, busy) {
			continue
		}
		if old := victim.tag.Load(); old == 0 {
			s.used.Add(1)
		} else {
			s.evicts.Add(1)
			if lossy {
				s.lossy.Add(1)
				// The victim's final TAT is victimTat: the CAS above proved
				// no update landed after it was read, and none can land now
				// that tat is busy. Folding it before its tag changes (and
				// before the lock is released) means the key, if it comes
				// back, finds its state in the sketch.
				t.sketch.fold(old, victimTat)
			}
		}
		victim.tag.Store(h)
		victim.tat.Store(newTat)
		return newTat, true
	}
}

// victim picks the slot for a new key among its two buckets: the first
// empty slot, else the first whose bucket is full again, else a lossy
// victim. Called with s.mu held.
//
// Which lossy victim matters to an attacker. Evicting the oldest TAT (the
// key with the most quota left) loses the least state, which is right
// under EvictStrict, where a small TAT raises the sketch's cells the
// least. Under EvictLossy a returning key gets one request back whatever
// it owed, and the oldest-TAT rule hands the attacker a target: keys it
// drove to exhaustion have the newest TATs and always survive, while a
// victim that has spent only part of its quota is evicted first, on every
// insert into its buckets. There the victim is drawn uniformly among the
// candidates from a per-shard random stream, so each insert into a
// victim's buckets evicts it with probability at most 1/(2×probeWindow)
// whatever the attacker's keys hold.
func (s *shard) victim(h uint64, now int64, random bool) (v *slot, vTat int64, lossy bool) {
	b1, b2 := s.buckets(h)
	var pick uint64
	if random {
		s.rng ^= s.rng << 13
		s.rng ^= s.rng >> 7
		s.rng ^= s.rng << 17
		pick = s.rng % (2 * probeWindow)
	}
	for i, b := range [2]uint64{b1, b2} {
		for p := uint64(0); p < probeWindow; p++ {
			sl := &s.slots[b+p]
			if sl.tag.Load() == 0 {
				return sl, 0, false
			}
			tat := sl.tat.Load()
			switch {
			case tat <= now:
				if v == nil || lossy {
					v, vTat, lossy = sl, tat, false
				}
			case random:
				if uint64(i)*probeWindow+p == pick && (v == nil || lossy) {
					v, vTat, lossy = sl, tat, true
				}
			case v == nil || (lossy && tat < vTat):
				v, vTat, lossy = sl, tat, true
			}
		}
	}
	return v, vTat, lossy
}

// reset forgets h's spent quota: a tracked key's TAT becomes 0 (a full
// bucket). Under EvictStrict an untracked key whose sketch estimate is
// still in the future is inserted with a full bucket, since otherwise it
// would come back with the estimate. Called rarely (after a successful
// login, say), so it simply takes the shard lock.
func (t *table) reset(h uint64, now int64) {
	if h == 0 {
		h = 1
	}
	s := &t.shards[h>>t.shift]
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl := s.find(h); sl != nil {
		// Tags change only under mu, so sl still holds h. A lock-free update
		// racing this store fails its CAS and retries from 0.
		sl.tat.Store(0)
		return
	}
	if t.sketch.estimate(h) <= now {
		return
	}
	for {
		victim, victimTat, lossy := s.victim(h, now, false)
		if !victim.tat.CompareAndSwap(victimTat, busy) {
			continue
		}
		if old := victim.tag.Load(); old == 0 {
			s.used.Add(1)
		} else {
			s.evicts.Add(1)
			if lossy {
				s.lossy.Add(1)
				t.sketch.fold(old, victimTat)
			}
		}
		victim.tag.Store(h)
		victim.tat.Store(0)
		return
	}
}
