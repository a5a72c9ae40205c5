package limiter

import "time"

// Preemption: which held connection gives its slot to a newcomer.
//
// At the global cap a Listener with policy Preempt does not shed the new
// connection (Shed hands every freed slot to whoever is next in the kernel
// backlog, which during a flood is the attacker) and does not make it wait
// (Backpressure lets held connections starve it). It closes one held
// connection that is not serving a request, chosen so that the sources
// holding the most idle slots pay first:
//
//  1. Only a preemptable connection is ever chosen: one that has not yet
//     delivered a complete request (HTTP, wired with Listener.Harden) or
//     has not sent a byte (any other protocol), or an HTTP keep-alive
//     connection idle between requests. A connection serving a request is
//     never in the ledger, so it cannot be chosen.
//  2. Preemptable connections come in two tiers, and a victim is taken
//     from the fresh tier (never completed a request, or never sent a
//     byte) while it holds any; the idle tier (keep-alive connections that
//     have served a request) is touched only when the fresh tier is empty.
//     A flood of silent or partial connections (slowloris, idle flood) is
//     all fresh, whereas an idle keep-alive has proved its client speaks
//     the protocol: ranked together, ten browsers behind one NAT address
//     holding ten idle keep-alives would be the biggest holder and pay
//     first while attackers spread hundreds of never-used connections over
//     many addresses, and the browser's next request would race the reset.
//     Rules 3 to 5 apply within the chosen tier, counting only that
//     tier's connections.
//  3. The victim's source is the one holding the most preemptable
//     connections; the newcomer's own source when it holds as many (a
//     source at the top churns its own connections, never another's). A
//     legitimate client holding one or two slots is therefore only touched
//     once every source holds as few, which takes more addresses than
//     slots.
//  4. Within that source, the connection preemptable the longest: the one
//     that has waited longest for its request, or idled longest.
//  5. A newcomer whose source already holds preemptable connections, and
//     holds as many as the top or one fewer, would not make the shares
//     fairer: it preempts only a connection that has been preemptable for
//     preemptMinAge, and is shed (FairShare) otherwise. Without this rule
//     every preempted attacker reconnects one short of the top and
//     preempts another attacker, whose reconnect does the same: a chain as
//     fast as the attacker can reconnect, each link a whole connection set
//     up and torn down. With it, those reconnects cost one accept and one
//     reset each. A newcomer whose source holds nothing preemptable (a
//     legitimate client, typically) always gets a slot while any is
//     preemptable; when more sources than slots each hold one, that is the
//     oldest connection's, and such a flood costs a preemption per
//     attacking connection. When the fresh tier refuses (this rule), the
//     newcomer is shed rather than given an idle keep-alive's slot: it
//     would not make the shares fairer there either.
//
// Each tier keeps, per source, an intrusive list of its preemptable
// connections in the order they became preemptable, and a list of sources
// per count ("bucket k holds the sources with exactly k preemptable
// connections", as in an O(1) LFU cache). A connection entering or leaving
// the ledger moves its source by one bucket, and the top bucket is found by
// stepping down at most one when it empties, so every operation, the
// choice of a victim included, is O(1) in the number of connections. A
// connection moves between tiers as http.Server reports its state through
// ConnState: fresh on accept, out of the ledger while serving (active),
// idle between requests, out again on the next request.
// preemptMinAge is how long a connection must have been preemptable
// before a newcomer that would not make the shares fairer may take its slot.
const preemptMinAge = int64(time.Second)

// ledger holds the preemptable connections in two tiers (rule 2).
type ledger struct {
	tier [2]*tier // tierFresh, tierIdle
	n    int      // preemptable connections, both tiers
}

const (
	tierFresh = 0 // never completed a request, or never sent a byte
	tierIdle  = 1 // HTTP keep-alive idle between requests
)

// tier is one tier's connections, bucketed by source (see above).
type tier struct {
	src    []srcEntry // by ipTable slot; the last entry is for unknown sources
	bucket []bucketList
	top    int // highest non-empty bucket; 0 when the tier is empty
	n      int // connections in the tier
}

// srcEntry is one source's preemptable connections.
type srcEntry struct {
	n          int32
	prev, next int32 // neighbours in bucket[n], -1 at the ends
	head, tail *conn
}

type bucketList struct{ head, tail int32 }

func newLedger(sources, maxConns int) *ledger {
	return &ledger{tier: [2]*tier{newTier(sources, maxConns), newTier(sources, maxConns)}}
}

func newTier(sources, maxConns int) *tier {
	lg := &tier{src: make([]srcEntry, sources+1), bucket: make([]bucketList, maxConns+1)}
	for i := range lg.bucket {
		lg.bucket[i] = bucketList{-1, -1}
	}
	return lg
}

// add puts c in the tier of its state (idle: the idle tier; new: the
// fresh tier), preemptable since now. c must not be in the ledger.
func (lg *ledger) add(c *conn, now int64) {
	t := uint8(tierFresh)
	if connState(c.state.Load()) == stIdle {
		t = tierIdle
	}
	c.tier = t
	lg.tier[t].add(c, now)
	lg.n++
}

// remove takes c out of the ledger; a no-op when c is not in it.
func (lg *ledger) remove(c *conn) {
	if !c.inLedger {
		return
	}
	lg.tier[c.tier].remove(c)
	lg.n--
}

// victim returns the connection to preempt at now for a newcomer from
// slot, or nil when none may be (rules 2 to 5 above): from the fresh tier
// while it holds any, from the idle tier only when it is empty.
func (lg *ledger) victim(slot int, now int64) *conn {
	if lg.tier[tierFresh].n > 0 {
		return lg.tier[tierFresh].victim(slot, now)
	}
	return lg.tier[tierIdle].victim(slot, now)
}

// source maps an ipTable slot (-1: untracked) to a ledger index.
func (lg *tier) source(slot int) int32 {
	if slot < 0 {
		return int32(len(lg.src) - 1)
	}
	return int32(slot)
}

func (lg *tier) unbucket(s int32) {
	e := &lg.src[s]
	b := &lg.bucket[e.n]
	if e.prev >= 0 {
		lg.src[e.prev].next = e.next
	} else {
		b.head = e.next
	}
	if e.next >= 0 {
		lg.src[e.next].prev = e.prev
	} else {
		b.tail = e.prev
	}
}

func (lg *tier) rebucket(s int32) {
	e := &lg.src[s]
	if e.n == 0 {
		return
	}
	b := &lg.bucket[e.n]
	e.prev, e.next = b.tail, -1
	if b.tail >= 0 {
		lg.src[b.tail].next = s
	} else {
		b.head = s
	}
	b.tail = s
}

// add appends c to its source's list, preemptable since now. c must not
// be in the ledger.
func (lg *tier) add(c *conn, now int64) {
	c.since = now
	s := lg.source(c.slot)
	e := &lg.src[s]
	if e.n > 0 {
		lg.unbucket(s)
	}
	c.lprev, c.lnext = e.tail, nil
	if e.tail != nil {
		e.tail.lnext = c
	} else {
		e.head = c
	}
	e.tail = c
	e.n++
	lg.rebucket(s)
	lg.top = max(lg.top, int(e.n))
	lg.n++
	c.inLedger = true
}

// remove takes c, which is in this tier, out of it.
func (lg *tier) remove(c *conn) {
	c.inLedger = false
	s := lg.source(c.slot)
	e := &lg.src[s]
	if c.lprev != nil {
		c.lprev.lnext = c.lnext
	} else {
		e.head = c.lnext
	}
	if c.lnext != nil {
		c.lnext.lprev = c.lprev
	} else {
		e.tail = c.lprev
	}
	c.lprev, c.lnext = nil, nil
	lg.unbucket(s)
	e.n--
	lg.rebucket(s)
	// Counts move by one, so when the top bucket empties the next one down
	// holds the source that just left it.
	if lg.bucket[lg.top].head < 0 {
		lg.top--
	}
	lg.n--
}

// victim returns the tier's connection to preempt at now for a newcomer
// from slot, or nil when none may be (rules 3 to 5 above).
func (lg *tier) victim(slot int, now int64) *conn {
	if lg.top == 0 {
		return nil
	}
	own := lg.source(slot)
	c := int(lg.src[own].n)
	s := lg.bucket[lg.top].head
	if c == 0 || c+1 < lg.top {
		return lg.src[s].head
	}
	if c == lg.top {
		s = own
	}
	if v := lg.src[s].head; now-v.since >= preemptMinAge {
		return v
	}
	return nil
}
