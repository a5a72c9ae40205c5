package siege

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/garrison-go/garrison/limiter"
)

// newDropPlan sizes capacity-drop. The database does 250 queries a second
// (one worker, 4 ms each) behind an 8 ms link: 12 ms at no load, so 3
// queries in flight use it fully. The link then turns 116 ms (a failover
// to a distant replica): 120 ms at no load, ten times slower, and 30 in
// flight are needed for the same 250 a second. 300 requests a second are
// offered throughout, a fifth more than the database can do, so every
// configuration must refuse some; each has 500 ms.
//
// The static caps are what an operator would configure after a load test
// of one phase, with the usual twofold headroom: 6 (fast) and 60 (slow).
func newDropPlan(quick bool) dropPlan {
	p := dropPlan{
		workers: 1, work: 4 * time.Millisecond,
		fast: 8 * time.Millisecond, slow: 116 * time.Millisecond,
		phase: 10 * time.Second, rate: 300, deadline: 500 * time.Millisecond,
		fastCap: 6, slowCap: 60, maxLimit: 200,
	}
	if quick {
		p.phase = 6 * time.Second
	}
	return p
}

// dropPhases names capacity-drop's phases, in order.
var dropPhases = []string{"fast", "slow", "fast again"}

// dropVariant is one configuration of the capacity-drop service.
type dropVariant struct {
	name string
	mw   func(http.Handler) http.Handler
	// stats, if not nil, is the variant's garrison snapshot.
	stats func() any
}

func runCapacityDrop(ctx context.Context, e *env, side string) (*SideResult, error) {
	p := e.p.drop
	res := &SideResult{
		LegitWhat: fmt.Sprintf("GET / at %d/s, each one database query, %v deadline", p.rate, p.deadline),
		Values:    map[string]float64{},
	}
	start := time.Now()
	smp := startSampler(start, 10*time.Millisecond)
	var variants []dropVariant
	if side == "naive" {
		variants = []dropVariant{{name: "naive"}}
	} else {
		al, err := limiter.NewAdaptiveLimiter(4, p.maxLimit)
		if err != nil {
			return nil, err
		}
		variants = []dropVariant{
			{name: "static fast-tuned", mw: limiter.ConcurrencyMiddleware(p.fastCap)},
			{name: "static slow-tuned", mw: limiter.ConcurrencyMiddleware(p.slowCap)},
			{name: "adaptive", mw: limiter.AdaptiveConcurrencyMiddleware(al), stats: func() any { return al.Stats() }},
		}
	}
	// The configurations run at once, each with its own service and
	// database: the machine's noise falls on all of them alike.
	samples := make([][]Sample, len(variants))
	errs := make([]error, len(variants))
	var wg sync.WaitGroup
	for i, v := range variants {
		wg.Go(func() { samples[i], errs[i] = runDrop(ctx, p, v.mw) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	ph := ms(p.phase)
	for k, name := range dropPhases {
		res.Phases = append(res.Phases, Phase{Name: name, FromMS: float64(k) * ph, ToMS: float64(k+1) * ph})
	}
	res.PatienceMS = ms(p.deadline)
	for i, v := range variants {
		for k, name := range dropPhases {
			res.Values[fmt.Sprintf("%s goodput, %s", v.name, name)] = goodput(samples[i], float64(k)*ph, float64(k+1)*ph)
		}
		res.Values[v.name+" p99"] = successP99(samples[i])
		if v.stats != nil {
			res.GarrisonStats = v.stats()
		}
	}
	// The adaptive configuration is the hardened twin's (the last one);
	// its samples are the ones the report draws.
	res.Legit = samples[len(samples)-1]
	res.PeakGoroutines, res.PeakHeapMiB, res.Series = smp.finish()
	return res, nil
}

// successP99 is the 99th percentile latency of the requests answered with
// success, NaN if none was.
func successP99(samples []Sample) float64 {
	var lat []float64
	for _, s := range samples {
		if s.OK {
			lat = append(lat, s.LatencyMS)
		}
	}
	return percentile(lat, 0.99)
}

func capacityDropFigures(e *env, n, h *SideResult) []Figure {
	var fs []Figure
	for _, name := range dropPhases {
		key := func(v string) string { return fmt.Sprintf("%s goodput, %s", v, name) }
		best := max(h.Values[key("static fast-tuned")], h.Values[key("static slow-tuned")])
		f := Figure{
			Name: "goodput, " + name + " phase", Unit: "req/s",
			Naive: n.Values[key("naive")], Hardened: h.Values[key("adaptive")], Better: "higher",
			Bound: math.Round(0.9 * best), HasBound: true,
		}
		if f.Hardened < 0.97*best {
			f.Why = fmt.Sprintf("the better static cap did %.0f: the limit spends a few round trips finding the phase's concurrency", best)
		}
		fs = append(fs, f)
	}
	// The bound is the p99 of the static cap that kept its goodput in
	// every phase; the fast-tuned cap's lower p99 is bought by refusing
	// four in five requests of the slow phase (see the notes).
	p99 := Figure{
		Name: "p99 of successes", Unit: "ms",
		Naive: n.Values["naive p99"], Hardened: h.Values["adaptive p99"], Better: "lower",
		Bound: h.Values["static slow-tuned p99"], HasBound: true,
	}
	if fast := h.Values["static fast-tuned p99"]; fast < p99.Hardened {
		p99.Why = fmt.Sprintf("bound: the slow-tuned cap's; the fast-tuned cap's is lower (%s ms), bought by refusing most of the slow phase", num(fast))
	}
	return append(fs, p99)
}

func capacityDropNotes(e *env, n, h *SideResult) []string {
	p := e.p.drop
	notes := []string{
		fmt.Sprintf("the database does %.0f queries/s; %d/s are offered in every phase, so at most %.0f/s can succeed; its link goes from %v to %v and back, %v each phase", p.capacity(), p.rate, p.capacity(), p.fast, p.slow, p.phase),
		"goodput = requests answered 200 within their deadline, per second of the phase they were sent in; each bound is 90 % of the better static cap in that phase",
	}
	for _, v := range []string{"naive", "static fast-tuned", "static slow-tuned", "adaptive"} {
		s := n
		if v != "naive" {
			s = h
		}
		notes = append(notes, fmt.Sprintf("%s: goodput %.0f / %.0f / %.0f req/s, p99 of successes %s ms", v,
			s.Values[v+" goodput, fast"], s.Values[v+" goodput, slow"], s.Values[v+" goodput, fast again"], num(s.Values[v+" p99"])))
	}
	return append(notes,
		fmt.Sprintf("static fast-tuned (cap %d) answers the few it admits in the slow phase at the link's latency, so its p99 is lowest, but it refuses most of that phase's traffic; static slow-tuned (cap %d) keeps goodput by queueing in the database, which every request waits through in every phase", p.fastCap, p.slowCap),
		"naive admits everything: the database's queue grows by the excess until each query waits longer than its caller, who has gone when it runs")
}

// Priority: critical requests keep their share while sheddable ones
// overload the same service.

// prioPlan sizes the priority scenario: the capacity-drop database at its
// fast link (250 queries/s), sheddable requests at 2.4× that, critical
// requests at a fifth of it.
type prioPlan struct {
	sheddable, critical int // requests per second
	d, deadline         time.Duration
}

func newPrioPlan(quick bool) prioPlan {
	p := prioPlan{sheddable: 600, critical: 50, d: 6 * time.Second, deadline: 500 * time.Millisecond}
	if quick {
		p.d = 4 * time.Second
	}
	return p
}

func runPriority(ctx context.Context, e *env, side string) (*SideResult, error) {
	p := e.p.prio
	db := newDatabase(1, 4*time.Millisecond, 8*time.Millisecond)
	var mw func(http.Handler) http.Handler
	var stats func() any
	if side == "hardened" {
		al, err := limiter.NewAdaptiveLimiter(4, 200)
		if err != nil {
			return nil, err
		}
		// The level comes from a header, trusted from the internal
		// network only: a client cannot raise its own priority.
		classify := limiter.CriticalityFromHeader("X-Criticality", limiter.Normal, netip.MustParsePrefix("127.0.0.0/8"))
		admit := limiter.AdaptiveConcurrencyMiddleware(al)
		mw = func(h http.Handler) http.Handler { return limiter.CriticalityMiddleware(classify)(admit(h)) }
		stats = func() any { return al.Stats() }
	}
	svc, err := startOverloadService(db, p.deadline, mw)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	smp := startSampler(start, 10*time.Millisecond)
	out := openLoop(ctx, svc.url, start, p.d, p.deadline, []stream{
		{src: e.legitSrc, rate: p.critical, header: http.Header{"X-Criticality": {"critical"}}},
		{src: e.attackSrcs[0], rate: p.sheddable, header: http.Header{"X-Criticality": {"sheddable"}}},
	})
	svc.close()
	db.stop()
	res := &SideResult{
		LegitWhat:  fmt.Sprintf("GET / marked critical at %d/s, beside %d/s marked sheddable", p.critical, p.sheddable),
		Legit:      out[0],
		PatienceMS: ms(p.deadline),
		Values:     map[string]float64{},
	}
	if stats != nil {
		res.GarrisonStats = stats()
	}
	shed := summarize(out[1], p.deadline)
	res.Values["sheddable goodput"] = float64(shed.OK) / p.d.Seconds()
	res.Values["sheddable sent"] = float64(shed.N)
	res.PeakGoroutines, res.PeakHeapMiB, res.Series = smp.finish()
	return res, nil
}

func priorityFigures(e *env, n, h *SideResult) []Figure {
	p := e.p.prio
	ns, hs := summarize(n.Legit, p.deadline), summarize(h.Legit, p.deadline)
	return []Figure{
		{Name: "critical success", Unit: "%", Naive: pct(ns.OK, ns.N), Hardened: pct(hs.OK, hs.N), Better: "higher", Bound: 99, HasBound: true},
		{Name: "critical p99", Unit: "ms", Naive: ns.P99, Hardened: hs.P99, Better: "lower"},
		{Name: "sheddable goodput", Unit: "req/s", Naive: n.Values["sheddable goodput"], Hardened: h.Values["sheddable goodput"], Better: "higher"},
	}
}

func priorityNotes(e *env, n, h *SideResult) []string {
	p := e.p.prio
	return []string{
		fmt.Sprintf("the database does 250 queries/s; %d/s sheddable (batch) and %d/s critical requests are offered for %v, each with %v", p.sheddable, p.critical, p.d, p.deadline),
		"hardened: the criticality comes from the X-Criticality header, trusted from 127.0.0.0/8 only; sheddable work may fill three quarters of the adaptive limit and always leaves two slots, so critical work finds one",
		"naive: every request queues for the database alike; once the queue is longer than the deadline, critical requests time out with the rest",
	}
}
