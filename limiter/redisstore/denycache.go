package redisstore

import (
	"hash/maphash"
	"sync"
)

// denyWays is the associativity of the deny cache: a key may live in any of
// the denyWays slots of its bucket, so a few hot keys sharing a bucket do
// not evict each other.
const denyWays = 4

// denyCache remembers keys that Redis denied until their RetryAfter has
// passed, so that a client already over its limit costs no round trip.
//
// It stores a 64-bit seeded hash of the key instead of the key: memory is
// fixed at construction whatever the keys' length, and the random seed keeps
// an attacker from choosing keys whose hashes collide with a victim's. A
// collision would in any case only deny that victim for the remainder of a
// RetryAfter, and needs about 2^32 cached keys to become likely.
//
// Times are nanoseconds on the Limiter's monotonic clock, so a wall clock
// jump never extends or shortens an entry.
type denyCache struct {
	seed    maphash.Seed
	mask    uint64
	buckets []denyBucket
}

type denyBucket struct {
	mu    sync.Mutex
	slots [denyWays]denySlot
}

// denySlot is empty when hash is 0 or retryAt has passed.
type denySlot struct {
	hash    uint64
	retryAt int64
	resetAt int64
}

// newDenyCache returns a cache holding at least size entries, rounded up to
// a power-of-two number of buckets.
func newDenyCache(size int) *denyCache {
	n := 1
	for n*denyWays < size {
		n <<= 1
	}
	return &denyCache{
		seed:    maphash.MakeSeed(),
		mask:    uint64(n - 1),
		buckets: make([]denyBucket, n),
	}
}

// capacity reports how many entries the cache holds at most.
func (c *denyCache) capacity() int { return len(c.buckets) * denyWays }

func (c *denyCache) hash(key string) uint64 {
	h := maphash.String(c.seed, key)
	if h == 0 {
		h = 1
	}
	return h
}

// lookup reports whether h is denied at now and, if so, the instants at
// which it may retry and at which its bucket is full again.
func (c *denyCache) lookup(h uint64, now int64) (retryAt, resetAt int64, ok bool) {
	b := &c.buckets[h&c.mask]
	b.mu.Lock()
	for i := range b.slots {
		s := &b.slots[i]
		if s.hash == h && s.retryAt > now {
			retryAt, resetAt, ok = s.retryAt, s.resetAt, true
			break
		}
	}
	b.mu.Unlock()
	return retryAt, resetAt, ok
}

// insert records that h is denied until retryAt. It replaces, in order of
// preference, the entry for the same hash, an empty or expired slot, or the
// entry that expires soonest: evicting that one costs at most one extra
// round trip, and only if its key comes back before it expires.
func (c *denyCache) insert(h uint64, now, retryAt, resetAt int64) {
	if retryAt <= now {
		return
	}
	b := &c.buckets[h&c.mask]
	b.mu.Lock()
	victim := -1
	for i := range b.slots {
		if b.slots[i].hash == h {
			victim = i
			break
		}
	}
	if victim < 0 {
		victim = 0
		for i := range b.slots {
			s := &b.slots[i]
			if s.hash == 0 || s.retryAt <= now {
				victim = i
				break
			}
			if s.retryAt < b.slots[victim].retryAt {
				victim = i
			}
		}
	}
	b.slots[victim] = denySlot{hash: h, retryAt: retryAt, resetAt: resetAt}
	b.mu.Unlock()
}
