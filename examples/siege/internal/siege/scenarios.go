package siege

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

func scenarios() []scenario {
	return []scenario{
		{
			Name:    "spawn-flood",
			Title:   "Spawn flood",
			Threat:  "every request starts a background job, far above capacity, until CPU and memory are gone",
			Defence: "background jobs go through a bounded spawn.Spawner with a per-tenant cap: past its workers and queue a job is refused (429 for a tenant over its cap, 503 when full), never started as one more goroutine",
			run:     runSpawn,
			figures: spawnFigures,
			notes:   attackNotes("jobs requested"),
		},
		{
			Name:    "conn-flood",
			Title:   "Connection flood + slowloris",
			Threat:  "a burst of connections, half silent and half trickling headers, holds every file descriptor",
			Defence: "limiter.Listener caps connections in all and per address, leaves silent ones in the kernel (TCP_DEFER_ACCEPT), and closes what sends nothing in time or trickles below the minimum read rate",
			run:     runConns,
			figures: connFigures,
			notes:   connNotes,
		},
		{
			Name:    "botnet",
			Title:   "Botnet connection flood",
			Threat:  "32 source addresses hold idle, half-sent and churning connections, 64× the connection cap, so per-address caps alone cannot keep a slot free",
			Defence: "limiter.Listener shares its cap fairly among sources, gives a newcomer the slot of an idle connection from the source holding the most, and holds refused connections of heavy sources open and unread (the tarpit) so they do not redial at once",
			run:     runBotnet,
			figures: botnetFigures,
			notes:   botnetNotes,
		},
		{
			Name:    "keepalive-idle",
			Title:   "Idle flood against kept-alive clients",
			Threat:  "a botnet parks idle connections beyond the cap while regular clients keep theirs open between requests: a defence that closes whatever is silent resets the regulars",
			Defence: "at the cap the listener closes an idle connection of the source holding the most, which is the botnet, never a regular's kept-alive connection in the middle of its use",
			run:     runKeepAlive,
			figures: keepAliveFigures,
			notes:   keepAliveNotes,
		},
		{
			Name:    "http2",
			Title:   "HTTP/2 rapid reset",
			Threat:  "one client opens and cancels HTTP/2 streams in a loop (CVE-2023-44487): each costs the server a handler, none holds a stream slot",
			Defence: "limiter bounds, per connection, how fast HTTP/2 streams start and how fast the client cancels them, and closes a connection past either rate",
			run:     runHTTP2,
			figures: http2Figures,
			notes:   http2Notes,
		},
		{
			Name:    "capacity-drop",
			Title:   "Capacity drop",
			Threat:  "the database's link turns ten times slower for a while under a steady overload: a fixed concurrency cap is right for one phase only",
			Defence: "limiter.AdaptiveConcurrencyMiddleware moves its concurrency limit with the latency it measures and refuses (503) at once what the database cannot serve within the deadline",
			run:     runCapacityDrop,
			figures: capacityDropFigures,
			notes:   capacityDropNotes,
		},
		{
			Name:    "priority",
			Title:   "Sheddable overload",
			Threat:  "batch work marked sheddable arrives at 2.4× what the database can do, beside a trickle of critical requests",
			Defence: "limiter.CriticalityMiddleware takes the criticality from trusted callers; the adaptive limit sheds sheddable work first and keeps a reserve that only critical work may use",
			run:     runPriority,
			figures: priorityFigures,
			notes:   priorityNotes,
		},
		{
			Name:    "chosen-keys",
			Title:   "Chosen-key eviction",
			Threat:  "a password guesser floods the per-user login limit's table with junk user names between rounds of guesses, so the victim's name is pushed out and comes back with a fresh burst",
			Defence: "logins are limited per client address first, so one address cannot feed the table names fast, then per user name in limiter.Keyed with EvictStrict, whose evicted names' debts fold into a sketch: a returning name is never treated as new",
			run:     runChosenKeys,
			figures: chosenKeysFigures,
			notes:   chosenKeysNotes,
		},
		{
			Name:    "deadlock",
			Title:   "Lock-order deadlock",
			Threat:  "transfers (account, then journal) race audits (journal, then account) until two requests wait for each other",
			Defence: "every lock is a lockorder mutex: an acquisition that waits past its timeout is answered 503 instead of hanging, and a checking build reports the inversion with both call sites",
			run:     runDeadlock,
			figures: deadlockFigures,
			notes:   deadlockNotes,
		},
		{
			Name:    "race",
			Title:   "Lost updates",
			Threat:  "concurrent deposits race on shared billing counters",
			Defence: "the billing counters live in a changuard.Guarded, reachable only inside its callback, so a deposit's read-modify-write is one critical section",
			run:     runRace,
			figures: raceFigures,
			notes:   raceNotes,
		},
		{
			Name:    "stuck-upstream",
			Title:   "Stuck upstream",
			Threat:  "the payment provider stops answering and every charge waits for it",
			Defence: "every charge runs under timeout.Run with a 100 ms deadline: the handler answers 504 with an error naming the operation, and no goroutine is left waiting",
			run:     runUpstream,
			figures: upstreamFigures,
			notes:   upstreamNotes,
		},
	}
}

// side bundles what every scenario run sets up and tears down.
type side struct {
	e     *env
	t     *target
	start time.Time
	smp   *sampler
	res   *SideResult
}

func (e *env) begin(name, upstreamURL, legitWhat string) (*side, error) {
	return e.beginWith(name, upstreamURL, legitWhat, targetConfig{})
}

func (e *env) beginWith(name, upstreamURL, legitWhat string, tc targetConfig) (*side, error) {
	t, err := e.start(name, upstreamURL, tc)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	return &side{e: e, t: t, start: start, smp: startSampler(start, 10*time.Millisecond),
		res: &SideResult{LegitWhat: legitWhat, Values: map[string]float64{}}}, nil
}

// legit starts the legitimate traffic until ctx ends; wait returns it.
func (s *side) legit(ctx context.Context, method, path string) (wait func()) {
	c := newClient(s.e.legitSrc, false, 1, s.e.p.legitTimeout)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.res.Legit = legit(ctx, c, s.start, s.e.p.legitEvery, method, s.t.url+path)
		c.close()
	}()
	return func() { <-done }
}

// end records the peaks and stops the twin.
func (s *side) end() (*SideResult, error) {
	s.res.PeakGoroutines, s.res.PeakHeapMiB, s.res.Series = s.smp.finish()
	s.res.GarrisonStats = s.t.stats()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.t.close(ctx); err != nil {
		return nil, fmt.Errorf("stopping the %s twin: %w", s.t.side, err)
	}
	return s.res, nil
}

func runSpawn(ctx context.Context, e *env, name string) (*SideResult, error) {
	s, err := e.begin(name, "", "GET /accounts/alice")
	if err != nil {
		return nil, err
	}
	// Bounded by count first: a twin that starves this process's CPU
	// slows the attacker down too, and must not get away with fewer jobs.
	// The time bound is the safety net.
	actx, cancel := context.WithTimeout(ctx, 5*e.p.attack)
	defer cancel()
	lctx, stopLegit := context.WithCancel(ctx)
	defer stopLegit()
	wait := s.legit(lctx, "GET", "/accounts/alice")
	atk := e.attackClients(true, e.p.legitTimeout, e.attackSrcs[:4])
	limit := int(float64(e.p.spawnRate) * e.p.attack.Seconds())
	s.res.Attack = flood(actx, atk, e.p.spawnRate, 32, limit, "POST", func(int) string { return s.t.url + "/jobs?tenant=mallory" })
	// Every job accepted in the last second is still alive now; read
	// once more in case the twin starved the sampler of CPU meanwhile.
	s.smp.read()
	stopLegit()
	wait()
	closeAll(atk)
	return s.end()
}

func runConns(ctx context.Context, e *env, name string) (*SideResult, error) {
	s, err := e.begin(name, "", "GET /healthz, new connection each")
	if err != nil {
		return nil, err
	}
	restore, note := capFDs(e.p.fdBudget)
	s.res.Notes = append(s.res.Notes, note)
	actx, cancel := context.WithTimeout(ctx, e.p.attack)
	defer cancel()
	wait := s.legit(actx, "GET", "/healthz")
	s.res.Conns = slowloris(actx, s.t.addr, e.attackSrcs[:4], e.p.slowConns, 20*e.p.slowConns, 200*time.Millisecond, 300*time.Millisecond, s.t.openConns)
	wait()
	res, err := s.end()
	restore()
	return res, err
}

func runDeadlock(ctx context.Context, e *env, name string) (*SideResult, error) {
	s, err := e.begin(name, "", "POST /transfer carol→dave")
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, e.p.attack)
	defer cancel()
	const transfer = "/transfer?from=carol&to=dave&amount=1"
	wait := s.legit(actx, "POST", transfer)
	atk := e.attackClients(true, e.p.legitTimeout, e.attackSrcs[:4])
	s.res.Attack = hammer(actx, atk, e.p.lockWorkers, 1<<20, func(i int) (string, string) {
		if i%2 == 0 {
			return "POST", s.t.url + "/transfer?from=alice&to=bob&amount=1"
		}
		return "GET", s.t.url + "/audit?account=alice"
	})
	wait()
	closeAll(atk)
	// The bounded wait: one more transfer, given the legitimate timeout.
	probe := newClient(e.legitSrc, false, 1, e.p.legitTimeout)
	_, perr := probe.do(ctx, "POST", s.t.url+transfer)
	probe.close()
	answered := 1.0
	if perr != nil {
		answered = 0
	}
	st := summarize(s.res.Legit, e.p.legitTimeout)
	s.res.Values["answers after attack"] = answered
	s.res.Values["requests left hanging"] = float64(s.res.Attack.NoAnswer) + float64(st.N-st.Answered) + (1 - answered)
	if name == "hardened" {
		text, how := e.lockReport(ctx)
		s.res.Notes = append(s.res.Notes, how)
		if text != "" {
			s.res.Values["inversion reported"] = 1
			s.res.Notes = append(s.res.Notes, text)
		}
	}
	return s.end()
}

func runRace(ctx context.Context, e *env, name string) (*SideResult, error) {
	s, err := e.begin(name, "", "GET /accounts/alice")
	if err != nil {
		return nil, err
	}
	lctx, stopLegit := context.WithCancel(ctx)
	defer stopLegit()
	wait := s.legit(lctx, "GET", "/accounts/alice")
	crowd := e.attackClients(true, 5*time.Second, e.attackSrcs)
	before := s.t.deposits()
	// Bounded by count; the time bound is only a safety net.
	actx, cancel := context.WithTimeout(ctx, 10*e.p.attack)
	defer cancel()
	st := &AttackStats{}
	// The two counts are read as the attack goes, for the report's
	// lost-updates chart; the last reading is taken after it ended.
	read := func() {
		s.res.Deposits = append(s.res.Deposits, DepositPoint{AtMS: ms(time.Since(s.start)),
			Acknowledged: atomic.LoadInt64(&st.OK), Recorded: s.t.deposits() - before})
	}
	stopReading := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			read()
			select {
			case <-t.C:
			case <-stopReading:
				return
			}
		}
	}()
	hammerInto(actx, st, crowd, 64, e.p.deposits, func(int) (string, string) {
		return "POST", s.t.url + "/deposit?account=carol&amount=1"
	})
	close(stopReading)
	<-readerDone
	read()
	s.res.Attack = st
	recorded := s.t.deposits() - before
	stopLegit()
	wait()
	closeAll(crowd)
	s.res.Values["deposits acknowledged"] = float64(s.res.Attack.OK)
	s.res.Values["deposits recorded"] = float64(recorded)
	s.res.Values["lost updates"] = float64(s.res.Attack.OK - recorded)
	return s.end()
}

func runUpstream(ctx context.Context, e *env, name string) (*SideResult, error) {
	up, err := startUpstream(true)
	if err != nil {
		return nil, err
	}
	defer up.Close()
	s, err := e.begin(name, up.URL, "POST /charge")
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, 4*e.p.attack)
	defer cancel()
	lctx, stopLegit := context.WithCancel(ctx)
	defer stopLegit()
	wait := s.legit(lctx, "POST", "/charge")
	// The attackers give up after 500 ms, as impatient clients do; the
	// naive twin does not notice and keeps waiting for the provider.
	atk := e.attackClients(true, 500*time.Millisecond, e.attackSrcs[:4])
	limit := int(float64(e.p.chargeRate) * e.p.attack.Seconds())
	s.res.Attack = flood(actx, atk, e.p.chargeRate, 128, limit, "POST", func(int) string { return s.t.url + "/charge" })
	stopLegit()
	wait()
	closeAll(atk)
	g := settle(time.Second)
	s.res.Values["goroutines stuck after attack"] = float64(max(g-s.smp.baseG, 0))
	s.res.Values["attributed timeouts"] = float64(s.t.timeouts())
	// The provider answers everything now, so the naive twin's handlers
	// can return and the twin can stop.
	up.Close()
	return s.end()
}

// Figures.

func spawnFigures(e *env, n, h *SideResult) []Figure {
	ns, hs := summarize(n.Legit, e.p.legitTimeout), summarize(h.Legit, e.p.legitTimeout)
	return []Figure{
		{Name: "legit p50", Unit: "ms", Naive: ns.P50, Hardened: hs.P50, Better: "lower"},
		{Name: "legit p99", Unit: "ms", Naive: ns.P99, Hardened: hs.P99, Better: "lower"},
		{Name: "legit success", Unit: "%", Naive: pct(ns.OK, ns.N), Hardened: pct(hs.OK, hs.N), Better: "higher", Ideal: 100, TieOK: true},
		{Name: "peak goroutines", Unit: "", Naive: float64(n.PeakGoroutines), Hardened: float64(h.PeakGoroutines), Better: "lower"},
		{Name: "peak heap", Unit: "MiB", Naive: n.PeakHeapMiB, Hardened: h.PeakHeapMiB, Better: "lower"},
	}
}

func attackNotes(what string) func(e *env, n, h *SideResult) []string {
	return func(e *env, n, h *SideResult) []string {
		return []string{
			fmt.Sprintf("naive: %s %d, accepted %d, refused %d, unanswered %d, not sent within the time bound %d", what, n.Attack.Sent, n.Attack.OK, n.Attack.Rejected, n.Attack.NoAnswer, n.Attack.Skipped),
			fmt.Sprintf("hardened: %s %d, accepted %d, refused %d (429/503), unanswered %d, not sent %d", what, h.Attack.Sent, h.Attack.OK, h.Attack.Rejected, h.Attack.NoAnswer, h.Attack.Skipped),
		}
	}
}

func connFigures(e *env, n, h *SideResult) []Figure {
	ns, hs := summarize(n.Legit, e.p.legitTimeout), summarize(h.Legit, e.p.legitTimeout)
	return []Figure{
		{Name: "legit success", Unit: "%", Naive: pct(ns.OK, ns.N), Hardened: pct(hs.OK, hs.N), Better: "higher", Ideal: 100, TieOK: true},
		{Name: "legit p99", Unit: "ms", Naive: ns.P99, Hardened: hs.P99, Better: "lower"},
	}
}

func connNotes(e *env, n, h *SideResult) []string {
	notes := []string{n.Notes[0], "the attack lasts less than any of the hardened twin's timeouts in a quick run, so how many connections each twin holds at its end is shown here, not judged: the hardened twin holds up to its per-address cap (64) per attacking address, by design; a connection the kernel still holds (TCP_DEFER_ACCEPT, the backlog) costs the process neither a descriptor nor a goroutine"}
	for _, r := range []struct {
		name string
		s    *SideResult
	}{{"naive", n}, {"hardened", h}} {
		c := r.s.Conns
		notes = append(notes, fmt.Sprintf("%s: %d dials (%d failed), %d dropped by the server, peak %d attacker conns open, %d open at the end as the attacker sees them, %d accepted by the server process and open", r.name, c.Dials, c.DialErrors, c.ClosedByServer, c.PeakHeld, c.HeldAtEnd, c.ServerHeldAtEnd))
	}
	return notes
}

func deadlockFigures(e *env, n, h *SideResult) []Figure {
	ns, hs := summarize(n.Legit, e.p.legitTimeout), summarize(h.Legit, e.p.legitTimeout)
	success := Figure{Name: "legit transfers succeeded", Unit: "%", Naive: pct(ns.OK, ns.N), Hardened: pct(hs.OK, hs.N), Better: "higher", Ideal: 100, TieOK: true}
	if success.Hardened < 100 {
		success.Why = "the rest were answered 503 after the lock timeout, while an attacker's audit held the journal lock they needed: refused at once, by design, instead of hanging"
	}
	return []Figure{
		{Name: "legit answered", Unit: "%", Naive: pct(ns.Answered, ns.N), Hardened: pct(hs.Answered, hs.N), Better: "higher", Ideal: 100, TieOK: true},
		success,
		{Name: "legit p99", Unit: "ms", Naive: ns.P99, Hardened: hs.P99, Better: "lower"},
		{Name: "requests left hanging", Unit: "", Naive: n.Values["requests left hanging"], Hardened: h.Values["requests left hanging"], Better: "lower", Ideal: 0, Required: true},
		{Name: "answers after attack", Unit: "bool", Naive: n.Values["answers after attack"], Hardened: h.Values["answers after attack"], Better: "higher", Ideal: 1, Required: true},
		{Name: "inversion reported", Unit: "bool", Naive: n.Values["inversion reported"], Hardened: h.Values["inversion reported"], Better: "higher", Ideal: 1, Required: true},
	}
}

func deadlockNotes(e *env, n, h *SideResult) []string {
	notes := []string{
		fmt.Sprintf("attack: naive %d requests, %d unanswered; hardened %d requests, %d refused (429/503), %d unanswered",
			n.Attack.Sent, n.Attack.NoAnswer, h.Attack.Sent, h.Attack.Rejected, h.Attack.NoAnswer),
	}
	return append(notes, h.Notes...)
}

func raceFigures(e *env, n, h *SideResult) []Figure {
	return []Figure{
		{Name: "lost updates", Unit: "", Naive: n.Values["lost updates"], Hardened: h.Values["lost updates"], Better: "lower", Ideal: 0, Required: true},
		{Name: "deposits recorded", Unit: "%", Naive: pct(int(n.Values["deposits recorded"]), int(n.Values["deposits acknowledged"])),
			Hardened: pct(int(h.Values["deposits recorded"]), int(h.Values["deposits acknowledged"])), Better: "higher", Ideal: 100, Required: true},
	}
}

func raceNotes(e *env, n, h *SideResult) []string {
	var notes []string
	for _, r := range []struct {
		name string
		s    *SideResult
	}{{"naive", n}, {"hardened", h}} {
		notes = append(notes, fmt.Sprintf("%s: %.0f deposits acknowledged with 200, %.0f recorded in the billing counters (%d refused with 429/503 and not counted)",
			r.name, r.s.Values["deposits acknowledged"], r.s.Values["deposits recorded"], r.s.Attack.Rejected))
	}
	return append(notes, "the naive twin locks every single read and write of the counters, so the race detector is silent: the bug is the unlocked gap between them")
}

func upstreamFigures(e *env, n, h *SideResult) []Figure {
	ns, hs := summarize(n.Legit, e.p.legitTimeout), summarize(h.Legit, e.p.legitTimeout)
	answered := Figure{Name: "legit answered", Unit: "%", Naive: pct(ns.Answered, ns.N), Hardened: pct(hs.Answered, hs.N), Better: "higher", Ideal: 100, TieOK: true}
	if hs.OK < hs.N {
		answered.Why = fmt.Sprintf("answered, not charged (%.0f %% succeeded): the provider is down, so no charge can succeed; the user hears so after the 100 ms upstream deadline instead of waiting forever", pct(hs.OK, hs.N))
	}
	return []Figure{
		answered,
		{Name: "legit p99", Unit: "ms", Naive: ns.P99, Hardened: hs.P99, Better: "lower"},
		{Name: "peak goroutines", Unit: "", Naive: float64(n.PeakGoroutines), Hardened: float64(h.PeakGoroutines), Better: "lower"},
		{Name: "goroutines stuck after attack", Unit: "", Naive: n.Values["goroutines stuck after attack"], Hardened: h.Values["goroutines stuck after attack"], Better: "lower"},
		{Name: "attributed timeouts", Unit: "", Naive: n.Values["attributed timeouts"], Hardened: h.Values["attributed timeouts"], Better: "higher"},
	}
}

func upstreamNotes(e *env, n, h *SideResult) []string {
	return []string{
		fmt.Sprintf("naive: %d charges sent, %d answered; every unanswered one still holds a handler, a connection and an upstream connection", n.Attack.Sent, n.Attack.OK+n.Attack.Rejected+n.Attack.Other),
		fmt.Sprintf("hardened: %d charges sent; each ended at its deadline with a timeout naming the operation (an attributed timeout: the error says which call ran out of time, and the count is in the service's stats)", h.Attack.Sent),
	}
}

// num formats a figure for the table.
func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
