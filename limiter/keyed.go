package limiter

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// DefaultCapacity is the number of keys a Keyed tracks unless WithCapacity
// says otherwise: 65536 keys in 1 MiB.
const DefaultCapacity = 1 << 16

// maxCapacity bounds WithCapacity so a typo cannot allocate the machine away.
const maxCapacity = 1 << 28

// epoch anchors the limiter clock. time.Since on a time with a monotonic
// reading uses only the monotonic clock, so wall-clock steps (NTP, a manual
// date change) never move a decision.
var epoch = time.Now()

func monotonicNow() int64 { return int64(time.Since(epoch)) }

// Keyed is a per-key rate limiter with fixed memory: each key (a client
// address, a user ID, an API token) gets its own GCRA bucket of rate r and
// the given burst. It tracks at most its capacity of keys in a table
// allocated once, so an attacker cycling through millions of source
// addresses cannot grow it; when the table is full, a new key evicts one
// whose bucket is full again (nothing is lost), or else the one with the
// oldest state, which is counted in Stats as a lossy eviction.
//
// Keys are identified by a 64-bit hash seeded at random per Keyed, so an
// attacker cannot pick colliding keys; two distinct live keys share a bucket
// with probability about n²/2⁶⁵ for n tracked keys (3·10⁻¹⁰ at 65536).
//
// Allow and AllowAddr never block or allocate. Keyed is safe for concurrent
// use; its zero value is not usable: construct it with NewKeyed.
type Keyed struct {
	g    gcra
	seed maphash.Seed
	// addrSeed hashes AllowAddr's keys: maphash gives a string and the same
	// bytes one hash, so with one seed a string key could spell out an
	// address's encoding and land in that address's bucket.
	addrSeed   maphash.Seed
	table      table
	v6Bits     int
	clock      func() int64 // nil: monotonicNow; tests set it
	infinite   bool
	capacityIn int
}

// KeyedOption configures NewKeyed.
type KeyedOption func(*Keyed) error

// WithCapacity sets the number of keys tracked at once (default
// DefaultCapacity). It is rounded up to a power of two, at least 8. Memory
// is 16 bytes per key and does not grow past it, however many keys are
// seen. Give it about 1.5× the keys expected to be active within one refill
// window: a fuller table starts evicting keys whose buckets are not full.
func WithCapacity(n int) KeyedOption {
	return func(k *Keyed) error {
		if n < 1 || n > maxCapacity {
			return invalidf("capacity %d must be in [1, %d]", n, maxCapacity)
		}
		k.capacityIn = n
		return nil
	}
}

// WithKeyedIPv6Prefix sets how many leading bits of an IPv6 address form
// AllowAddr's key (default 64: one customer network shares one bucket, since
// a host can pick any of 2⁶⁴ addresses in its /64). IPv4 addresses are keyed
// on all 32 bits.
func WithKeyedIPv6Prefix(bits int) KeyedOption {
	return func(k *Keyed) error {
		if bits < 1 || bits > 128 {
			return invalidf("IPv6 prefix /%d must be in [1, 128]", bits)
		}
		k.v6Bits = bits
		return nil
	}
}

// NewKeyed returns a limiter that allows each key r events per second with
// bursts of up to burst. r must be positive (rate.Inf allows everything) and
// burst at least 1; invalid values or options return an error.
func NewKeyed(r rate.Limit, burst int, opts ...KeyedOption) (*Keyed, error) {
	g, err := newGCRA(r, burst)
	if err != nil {
		return nil, err
	}
	k := &Keyed{g: g, seed: maphash.MakeSeed(), addrSeed: maphash.MakeSeed(), v6Bits: 64, capacityIn: DefaultCapacity}
	for _, opt := range opts {
		if opt == nil {
			return nil, invalidf("nil KeyedOption")
		}
		if err := opt(k); err != nil {
			return nil, err
		}
	}
	k.infinite = g.interval == 0
	if k.infinite {
		k.capacityIn = 1 // never consulted
	}
	k.table = *newTable(k.capacityIn)
	return k, nil
}

func (k *Keyed) now() int64 {
	if k.clock != nil {
		return k.clock()
	}
	return monotonicNow()
}

// Allow reports whether one event for key may happen now, and counts it if
// so. It never blocks and does not allocate.
func (k *Keyed) Allow(key string) Decision {
	if k.infinite {
		return Decision{Allowed: true, Remaining: k.g.burst, Limit: k.g.burst}
	}
	now := k.now()
	tat, ok := k.table.step(maphash.String(k.seed, key), now, &k.g)
	return k.g.decision(tat, now, ok)
}

// AllowAddr is Allow keyed on a network address, grouped by prefix: an IPv4
// address (or an IPv4-mapped IPv6 one) is its own key, an IPv6 address is
// keyed on its first 64 bits unless WithKeyedIPv6Prefix says otherwise.
// Zones are ignored; the zero Addr is one key of its own. Addresses live in
// a key space separate from Allow's strings. It does not allocate.
func (k *Keyed) AllowAddr(a netip.Addr) Decision {
	if k.infinite {
		return Decision{Allowed: true, Remaining: k.g.burst, Limit: k.g.burst}
	}
	now := k.now()
	tat, ok := k.table.step(addrHash(k.addrSeed, a, k.v6Bits), now, &k.g)
	return k.g.decision(tat, now, ok)
}

// addrHash hashes the prefix of a that identifies one client. The 17th byte
// separates IPv4 from IPv6 so ::/96 and IPv4 never share a key. The mask is
// applied by hand: netip.Addr.Prefix validates and copies more than this
// hot path needs.
func addrHash(seed maphash.Seed, a netip.Addr, v6Bits int) uint64 {
	var b [17]byte
	switch {
	case a.Is4() || a.Is4In6():
		v4 := a.Unmap().As4()
		copy(b[:4], v4[:])
		b[16] = 4
	case a.Is6():
		b16 := a.As16() // As16 drops the zone
		hi := binary.BigEndian.Uint64(b16[:8])
		lo := binary.BigEndian.Uint64(b16[8:])
		if v6Bits <= 64 {
			hi &= ^uint64(0) << (64 - v6Bits)
			lo = 0
		} else {
			lo &= ^uint64(0) << (128 - v6Bits)
		}
		binary.BigEndian.PutUint64(b[:8], hi)
		binary.BigEndian.PutUint64(b[8:16], lo)
		b[16] = 6
	}
	return maphash.Bytes(seed, b[:])
}

// AllowContext implements RateLimiter. The in-process limiter cannot fail:
// it returns Allow's decision and a nil error, without looking at ctx.
func (k *Keyed) AllowContext(_ context.Context, key string) (Decision, error) {
	return k.Allow(key), nil
}

// Wait blocks until one event for key is allowed, or ctx is done. It
// returns nil once the event has been counted. If ctx is done first it
// returns an error wrapping context.Cause(ctx); if ctx's deadline comes
// before the earliest moment the event could pass, it returns at once with
// an error matching ErrRateLimited. Waiters are not queued: under contention
// for one key, a later caller may pass before an earlier one.
func (k *Keyed) Wait(ctx context.Context, key string) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("limiter: wait for %q: %w", key, context.Cause(ctx))
		}
		d := k.Allow(key)
		if d.Allowed {
			return nil
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d.RetryAfter {
			return fmt.Errorf("limiter: wait for %q would exceed the context deadline: %w", key, d.Err())
		}
		t := time.NewTimer(d.RetryAfter)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("limiter: wait for %q: %w", key, context.Cause(ctx))
		}
	}
}

// KeyedStats is a snapshot of a Keyed's table.
type KeyedStats struct {
	Capacity       int    // slots in the table: the most keys tracked at once
	Tracked        int    // slots holding a key
	Evictions      uint64 // keys replaced by a new key
	LossyEvictions uint64 // of those, keys whose bucket was not yet full: their history was lost
}

// Stats returns the table's counters. Decisions themselves are not counted:
// a shared counter on the hot path would serialise every core; count in the
// caller if needed.
func (k *Keyed) Stats() KeyedStats {
	st := KeyedStats{Capacity: k.table.capacity()}
	for i := range k.table.shards {
		s := &k.table.shards[i]
		s.mu.Lock()
		st.Tracked += s.used
		st.Evictions += s.evicts
		st.LossyEvictions += s.lossy
		s.mu.Unlock()
	}
	return st
}
