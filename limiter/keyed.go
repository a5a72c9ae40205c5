package limiter

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/time/rate"

	"github.com/garrison-go/garrison/internal/ctxerr"
)

// ErrNilContext is matched (errors.Is) by the error of a blocking call
// given a nil context.
var ErrNilContext = ctxerr.ErrNilContext

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
// allocated once, so an attacker cycling through millions of keys cannot
// grow it. When the table is full, a new key takes the slot of a key whose
// bucket is full again (nothing is lost); failing that, the table evicts a
// key that still owes quota, and its EvictionPolicy decides what happens to
// that debt: EvictStrict (the default) holds a returning key to all of it,
// EvictLossy to all of it but one request.
//
// Keys are identified by a 64-bit hash seeded at random per Keyed, so an
// attacker cannot pick colliding keys; two distinct live keys share a bucket
// with probability about n²/2⁶⁵ for n tracked keys (3·10⁻¹⁰ at 65536).
//
// Allow, AllowN and AllowAddr never block or allocate. Keyed is safe for
// concurrent use; its zero value is not usable: construct it with NewKeyed.
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
	policy     EvictionPolicy
}

// EvictionPolicy says what a full Keyed does with the quota a key still
// owes when the key must make room for a new one. Either way memory stays
// fixed and the evicted key's debt is folded into a fixed-size sketch, and
// a key that comes back starts from the sketch's estimate, which is never
// below its real debt; the policies differ in how far they trust that
// estimate for a key the table does not hold, and so in who pays when more
// keys are active at once than the table holds.
//
// Under EvictStrict the estimate is the key's state: no key is ever
// admitted above its rate and burst, whatever other keys do. The price is
// paid by fresh keys: once the keys evicted within one refill window far
// outnumber the sketch's cells, most cells hold someone's future deadline,
// and a fresh key may start with part of its burst already spent, or none
// left (KeyedStats.SketchDenials counts these denials).
//
// Under EvictLossy a key the table does not hold is always served once:
// it starts from the estimate, but never more than one request short of
// its limit. A fresh key's first request always passes; an attacker who
// makes the table evict a victim (a user name under a login limit, say)
// wins one request for the victim per eviction, not a whole burst, and the
// victim to evict is drawn at random among the candidates, so the
// attacker's exhausted keys are not kept in preference to the victim's.
// The price, again paid by fresh keys while the table is flooded, is their
// burst: past the first request they may start at their rate.
//
// Measured at the default capacity (65536), rate 1 per 12 s, burst 5, with
// an attacker exhausting N distinct keys (5 requests each) spread over 50 s
// and then 10,000 fresh keys making 5 requests each at once
// (BenchmarkEvictionPrice): EvictStrict denied 0 % of the fresh keys'
// first requests at N = 10⁵ and 57 % at N = 10⁶, and 26 % and 100 % of the
// four after them; EvictLossy denied no first request, and 35 % and 100 %
// of the four after them. Exhausted keys are not needed: a fresh key starts
// from its cells' estimate and, evicted in turn, folds that estimate plus
// its own use back, so under a sustained flood of keys used once each the
// cells climb too. Over HTTP (the siege's chosen-keys scenario: a table of
// 1024 names, 1 per 10 s, burst 5, 51,200 single-use junk names in 2 s)
// about 80 % of new names were refused under EvictStrict. Cells never climb
// past one full burst (burst × the emission interval) ahead, so the denials
// end at most that long after the flood stops. Rate limit what feeds the
// table (per client address, say) so that the keys evicted within one
// window stay well below its capacity.
//
// In exchange, under the red team's reset attack (TestEvictionFlood:
// 20,000 junk keys per second, each used 5 times, the victim tried every
// 10 ms for 60 s; at most 10 admissions are due) the victim got 9
// admissions with EvictStrict at both capacities, and 18 to 28 at the
// default capacity and 1,022 to 1,125 at capacity 1024 with EvictLossy
// (seven runs). Before a returning key was limited to one request,
// EvictLossy gave 85 to 130 and 3,600 to 3,900 in the same replay, and the
// oldest-TAT rule it used before the random draw 95 and 5,999.
//
// EvictStrict is the default because a limit that holds is what a limiter
// promises, and what it trades for, denying newcomers while a large
// sustained flood lasts, is visible in SketchDenials and ends with the
// flood. Choose EvictLossy where serving every newcomer at once matters
// more than exact per-key limits (a generous per-IP API limit, say), and
// size WithCapacity to the keys active within one window either way.
type EvictionPolicy uint8

const (
	// EvictStrict starts a key the table does not hold from the sketch's
	// estimate: no key is ever admitted above its limit, and fresh keys may
	// be denied while the table is flooded. The default.
	EvictStrict EvictionPolicy = iota
	// EvictLossy serves a key the table does not hold at least once: a
	// fresh key's first request always passes, and a key evicted while it
	// owed quota (counted in KeyedStats.LossyEvictions) comes back with
	// one request, not its whole burst. The victim is drawn at random
	// among the candidates.
	EvictLossy
)

// String returns "strict" or "lossy".
func (p EvictionPolicy) String() string {
	switch p {
	case EvictStrict:
		return "strict"
	case EvictLossy:
		return "lossy"
	}
	return "EvictionPolicy(" + strconv.Itoa(int(p)) + ")"
}

// KeyedOption configures NewKeyed. The options made for it are
// WithCapacity and WithEviction; WithIPv6Prefix, a ListenerOption, is
// accepted too, so one option sets the IPv6 grouping everywhere.
type KeyedOption interface {
	applyKeyed(*Keyed) error
}

type keyedOption func(*Keyed) error

func (f keyedOption) applyKeyed(k *Keyed) error { return f(k) }

// applyKeyed lets the one IPv6-prefix option, WithIPv6Prefix, configure a
// Keyed as well as a Listener. Any other ListenerOption leaves v6Bits alone
// and is reported as misplaced.
func (o ListenerOption) applyKeyed(k *Keyed) error {
	bits, err := ipv6PrefixOf(o)
	if err != nil {
		return err
	}
	k.v6Bits = bits
	return nil
}

// ipv6PrefixOf runs o on a scratch Listener configuration and returns the
// IPv6 prefix it sets, or an error if o is not WithIPv6Prefix.
func ipv6PrefixOf(o ListenerOption) (int, error) {
	if o == nil {
		return 0, invalidf("nil option")
	}
	var c listenerConfig
	c.v6Bits = -1
	if err := o(&c); err != nil {
		return 0, err
	}
	if c.v6Bits == -1 {
		return 0, invalidf("a Listener option other than WithIPv6Prefix given to a Keyed or a middleware")
	}
	return c.v6Bits, nil
}

// WithCapacity sets the number of keys tracked at once (default
// DefaultCapacity). It is rounded up to a power of two, at least 8. Memory
// is 24 bytes per key (a 16-byte slot and an 8-byte sketch cell), and does
// not grow past it, however many keys are seen. Give it about 1.5× the keys
// expected to be active within one refill window: a fuller table starts
// evicting keys whose buckets are not full.
func WithCapacity(n int) KeyedOption {
	return keyedOption(func(k *Keyed) error {
		if n < 1 || n > maxCapacity {
			return invalidf("capacity %d must be in [1, %d]", n, maxCapacity)
		}
		k.capacityIn = n
		return nil
	})
}

// WithEviction sets what happens to the debt of a key evicted from a full
// table (default EvictStrict); see EvictionPolicy for the trade-off.
func WithEviction(p EvictionPolicy) KeyedOption {
	return keyedOption(func(k *Keyed) error {
		if p != EvictStrict && p != EvictLossy {
			return invalidf("unknown eviction policy %d", p)
		}
		k.policy = p
		return nil
	})
}

// NewKeyed returns a limiter that allows each key r events per second with
// bursts of up to burst. The limits must pass CheckRate (r in (0, MaxRate]
// or rate.Inf, which allows everything; burst in [1, MaxBurst]); invalid
// values or options return an error.
func NewKeyed(r rate.Limit, burst int, opts ...KeyedOption) (*Keyed, error) {
	if err := CheckRate(r, burst); err != nil {
		return nil, err
	}
	g, err := newGCRA(r, burst)
	if err != nil {
		return nil, err
	}
	k := &Keyed{g: g, seed: maphash.MakeSeed(), addrSeed: maphash.MakeSeed(), v6Bits: 64, capacityIn: DefaultCapacity}
	for _, opt := range opts {
		if opt == nil {
			return nil, invalidf("nil KeyedOption")
		}
		if err := opt.applyKeyed(k); err != nil {
			return nil, err
		}
	}
	k.infinite = g.interval == 0
	if k.infinite {
		k.capacityIn = 1 // never consulted
	}
	k.table = *newTable(k.capacityIn, k.policy, maphash.Comparable(k.seed, k.capacityIn))
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
//
// Allow, AllowN and AllowAddr are small enough to be inlined: each fills
// its result through a pointer, in a call that is not inlined, so that a
// caller reads the fields it wants from its own frame. The compiler keeps
// no struct of more than four words in registers, and a Decision returned
// from a call that is not inlined is stored by its caller field by field
// and then copied with 16-byte moves, whose loads cannot be forwarded from
// those narrower stores: a stall of 5-8 ns, a tenth of a serial Allow on
// the machine of bench/RESULTS.md, in every caller's code.
func (k *Keyed) Allow(key string) (d Decision) {
	k.allow(&d, key, 1)
	return d
}

// allow is Allow and AllowN; *d is zero on entry.
func (k *Keyed) allow(d *Decision, key string, n int) {
	if n < 0 || n > k.g.burst {
		*d = Decision{RetryAfter: never, ResetAfter: 0, Reason: RequestRate, Limit: k.g.burst, Window: time.Duration(k.g.tolerance)}
		return
	}
	if k.infinite {
		*d = Decision{Allowed: true, Remaining: k.g.burst, Limit: k.g.burst}
		return
	}
	now := k.now()
	cost := int64(n) * k.g.interval
	tat, ok := k.table.step(maphash.String(k.seed, key), now, cost, &k.g)
	k.g.fill(d, tat, now, cost, ok)
}

// never is the RetryAfter of a request that can never pass.
const never = time.Duration(math.MaxInt64)

// AllowN reports whether n events for key may happen now, and counts all n
// if so; a denial counts none (like x/time/rate's AllowN). n == 0 is always
// allowed and counts nothing. A negative n, or an n above the burst, can
// never pass: the Decision is denied with RetryAfter math.MaxInt64. It
// never blocks and does not allocate.
func (k *Keyed) AllowN(key string, n int) (d Decision) {
	k.allow(&d, key, n)
	return d
}

// Reset gives key a full burst again, as if it had been idle for a whole
// window: after a successful login, say, so that earlier failures stop
// counting against the user. A key that was evicted while it owed quota
// is put back in the table with a full burst; if it is
// evicted again before it spends anything, it comes back with the sketch's
// estimate, which may predate the reset. Reset does not allocate.
func (k *Keyed) Reset(key string) {
	if k.infinite {
		return
	}
	k.table.reset(maphash.String(k.seed, key), k.now())
}

// AllowAddr is Allow keyed on a network address, grouped by prefix: an IPv4
// address (or an IPv4-mapped IPv6 one) is its own key, an IPv6 address is
// keyed on its first 64 bits unless WithIPv6Prefix says otherwise.
// Zones are ignored; the zero Addr is one key of its own. Addresses live in
// a key space separate from Allow's strings. It does not allocate.
func (k *Keyed) AllowAddr(a netip.Addr) (d Decision) {
	k.allowAddr(&d, a)
	return d
}

// allowAddr is AllowAddr; *d is zero on entry.
func (k *Keyed) allowAddr(d *Decision, a netip.Addr) {
	if k.infinite {
		*d = Decision{Allowed: true, Remaining: k.g.burst, Limit: k.g.burst}
		return
	}
	now := k.now()
	tat, ok := k.table.step(addrHash(k.addrSeed, a, k.v6Bits), now, k.g.interval, &k.g)
	k.g.fill(d, tat, now, k.g.interval, ok)
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

// Wait blocks until one event for key is allowed, or ctx is done; it is
// WaitN(ctx, key, 1).
func (k *Keyed) Wait(ctx context.Context, key string) error {
	return k.WaitN(ctx, key, 1)
}

// WaitN blocks until n events for key are allowed, or ctx is done. It
// returns nil once the n events have been counted. A nil ctx is an error
// matching ErrNilContext; a ctx already done fails at once without taking
// quota; if ctx ends while waiting, the error matches both ctx.Err() and
// context.Cause(ctx). If ctx's deadline comes before the earliest moment
// the events could pass, or n is negative or above the burst, it returns at
// once with an error matching ErrRateLimited. Waiters are not queued: under
// contention for one key, a later caller may pass before an earlier one.
func (k *Keyed) WaitN(ctx context.Context, key string, n int) error {
	if err := ctxerr.Check(ctx); err != nil {
		return fmt.Errorf("limiter: wait for %q: %w", key, err)
	}
	for {
		d := k.AllowN(key, n)
		if d.Allowed {
			return nil
		}
		if d.RetryAfter == never {
			return fmt.Errorf("limiter: wait for %d events of %q can never pass: burst is %d: %w", n, key, k.g.burst, d.Err())
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d.RetryAfter {
			return fmt.Errorf("limiter: wait for %q would exceed the context deadline: %w", key, d.Err())
		}
		t := time.NewTimer(d.RetryAfter)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("limiter: wait for %q: %w", key, ctxerr.Err(ctx))
		}
		// Checked again before the next attempt: ctx may have ended as the
		// timer fired, and a done ctx must not take quota.
		if err := ctxerr.Err(ctx); err != nil {
			return fmt.Errorf("limiter: wait for %q: %w", key, err)
		}
	}
}

// KeyedStats is a snapshot of a Keyed's table.
type KeyedStats struct {
	Capacity  int            // slots in the table: the most keys tracked at once
	Tracked   int            // slots holding a key
	Eviction  EvictionPolicy // the table's policy
	Evictions uint64         // keys replaced by a new key
	// LossyEvictions counts, of those, keys whose bucket was not yet full:
	// their debt was folded into the sketch, where a returning key finds
	// it (under EvictLossy, all of it but one request).
	LossyEvictions uint64
	// SketchDenials counts requests of keys not in the table that were
	// denied on the sketch's estimate: returning keys that still owed
	// quota, and fresh keys whose cells other keys had filled (the
	// policy's price). Always 0 under EvictLossy, which serves such a
	// key's first request; its later requests are denied as a tracked
	// key's are.
	SketchDenials uint64
}

// Stats returns the table's counters. Decisions themselves are not counted:
// a shared counter on the hot path would serialise every core; count in the
// caller if needed.
func (k *Keyed) Stats() KeyedStats {
	st := KeyedStats{Capacity: k.table.capacity(), Eviction: k.policy}
	for i := range k.table.shards {
		s := &k.table.shards[i]
		// No lock: each counter is exact; the sums may straddle an insert
		// in progress, as any snapshot of a live table does.
		st.Tracked += int(s.used.Load())
		st.Evictions += s.evicts.Load()
		st.LossyEvictions += s.lossy.Load()
		st.SketchDenials += s.sketchDenials.Load()
	}
	return st
}
