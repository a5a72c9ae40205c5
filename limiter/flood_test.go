package limiter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

// floodDuration is how long each flood lasts: short by default, longer with
// GARRISON_FLOOD_SECONDS (e.g. 30) for a soak.
func floodDuration(t *testing.T) time.Duration {
	if s := os.Getenv("GARRISON_FLOOD_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		return time.Duration(n) * time.Second
	}
	if testing.Short() {
		return time.Second
	}
	return 3 * time.Second
}

// attacker holds conns connections from src against addr until ctx ends:
// each connects, sends head (nothing for an idle flood, part of a request
// head for a slowloris), waits until the server closes it, and reconnects
// at once (paced by a rate shared by all attackers so that the attack's own
// CPU does not starve the server on a small machine).
type attacker struct {
	addr    string
	pace    *rate.Limiter
	dials   atomic.Int64
	refused atomic.Int64
}

func (a *attacker) hold(ctx context.Context, wg *sync.WaitGroup, src net.IP, head string) {
	defer wg.Done()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 5 * time.Second}
	buf := make([]byte, 512)
	for ctx.Err() == nil {
		if a.pace.Wait(ctx) != nil {
			return
		}
		c, err := d.DialContext(ctx, "tcp", a.addr)
		a.dials.Add(1)
		if err != nil {
			a.refused.Add(1)
			continue
		}
		_ = c.(*net.TCPConn).SetLinger(0)
		stop := context.AfterFunc(ctx, func() { _ = c.Close() })
		if head != "" {
			_, _ = io.WriteString(c, head)
		}
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		stop()
		_ = c.Close()
	}
}

// legit requests path at every tick from src on a new connection each time
// and records each outcome.
type legit struct {
	mu      sync.Mutex
	lat     []time.Duration
	fails   []string
	dials   atomic.Int64
	dialLat []time.Duration
	served  int // set by report
}

func (lg *legit) run(t *testing.T, ctx context.Context, wg *sync.WaitGroup, addr string, src net.IP, every time.Duration, path string, keepAlive bool) {
	defer wg.Done()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 5 * time.Second}
	tr := &http.Transport{
		DisableKeepAlives: !keepAlive,
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			lg.dials.Add(1)
			start := time.Now()
			c, err := d.DialContext(ctx, network, a)
			lg.mu.Lock()
			lg.dialLat = append(lg.dialLat, time.Since(start))
			lg.mu.Unlock()
			return c, err
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		var wrote, first time.Duration
		trace := &httptrace.ClientTrace{
			WroteRequest:         func(httptrace.WroteRequestInfo) { wrote = time.Since(start) },
			GotFirstResponseByte: func() { first = time.Since(start) },
		}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), "GET", "http://"+addr+path, nil)
		resp, err := client.Do(req)
		if err == nil && path == "/" && time.Since(start) > 50*time.Millisecond {
			t.Logf("slow %s: wrote request after %v, first byte after %v, done after %v", path, wrote, first, time.Since(start))
		}
		if err == nil {
			var body []byte
			body, err = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err == nil && string(body) != "ok" {
				err = fmt.Errorf("status %d body %q", resp.StatusCode, body)
			}
		}
		if ctx.Err() != nil {
			return // the test ended mid request: not the server's doing
		}
		lg.mu.Lock()
		if err != nil {
			lg.fails = append(lg.fails, err.Error())
		} else {
			lg.lat = append(lg.lat, time.Since(start))
		}
		lg.mu.Unlock()
	}
}

func (lg *legit) report(t *testing.T, name string) (success float64, p99 time.Duration) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	n := len(lg.lat) + len(lg.fails)
	if n == 0 || len(lg.lat) == 0 {
		t.Logf("%s: %d requests, none served: %v", name, n, lg.fails[:min(len(lg.fails), 3)])
		return 0, 0
	}
	slices.Sort(lg.lat)
	if len(lg.lat) > 0 {
		p99 = lg.lat[min(len(lg.lat)-1, len(lg.lat)*99/100)]
	}
	success = float64(len(lg.lat)) / float64(n)
	slices.Sort(lg.dialLat)
	t.Logf("%s: %d requests, success %.1f %%, p50 %v, p99 %v (connect p50 %v), failures %v", name, n, 100*success,
		lg.lat[len(lg.lat)/2], p99, lg.dialLat[len(lg.dialLat)/2], lg.fails[:min(len(lg.fails), 3)])
	lg.served = len(lg.lat)
	return success, p99
}

// loopbackOK skips when 127.0.0.0/8 beyond 127.0.0.1 cannot be bound
// (outside Linux).
func loopbackOK(t *testing.T) {
	c, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 9, 9)})
	if err != nil {
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Skip("127.0.0.0/8 is not all routed to lo here")
		}
		t.Fatal(err)
	}
	_ = c.Close()
}

// floodScale divides the flood's size (and the cap) under the race
// detector, which slows every goroutine several times: the ratio of
// attackers to slots is kept.
func floodScale() int {
	if raceEnabled {
		return 4
	}
	return 1
}

// requireP99 asserts the legit clients' p99 latency. The bound is
// 100 ms, and a soak (GARRISON_FLOOD_SECONDS set, meant for a quiet
// machine) holds it as is. The attacker runs in this process, though, and
// on a loaded two-core machine the scheduler adds its own delays to every
// request: a keep-alive client, whose requests never go through Accept or
// preemption, is the control that measures them (at load average 23 it saw
// 0.77 s). The short run therefore holds 100 ms plus the control's p99.
// Under the race detector, where handling a connection costs ten times
// more, it is only logged. Success rates, resets and accounting are
// asserted in all modes.
func requireP99(t *testing.T, p99, control time.Duration) {
	t.Helper()
	switch {
	case raceEnabled:
		t.Logf("race detector on: p99 %v not asserted", p99)
	case os.Getenv("GARRISON_FLOOD_SECONDS") != "":
		require.LessOrEqual(t, p99, 100*time.Millisecond)
	default:
		require.LessOrEqual(t, p99, 100*time.Millisecond+control, "control (keep-alive) p99 %v", control)
	}
}

// floodServer starts a hardened server on a Listener with the settings
// hardened-server uses (its cap divided by floodScale), and returns it.
func floodServer(t *testing.T) (*Listener, *http.Server, chan error) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l, err := NewListener(inner, WithMaxConns(512/floodScale()), WithOverflow(Preempt), WithMaxConnsPerIP(64/floodScale()),
		WithFirstByteTimeout(5*time.Second), WithAdaptiveTimeouts(0.2), WithMinReadRate(256, time.Second),
		WithMinWriteRate(1024, 10*time.Second), WithDeferAccept(time.Second))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	// /slow holds its connection active while the flood preempts around
	// it: a preempted active request would fail the legit client.
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(200 * time.Millisecond):
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "ok")
	})
	srv, err := l.Harden(&http.Server{Handler: mux})
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	return l, srv, served
}

// manySources runs the multi-source flood against l (served by srv): 3,000
// partial-request connections from 30 addresses and 2,000 idle ones from
// 50 addresses (divided by floodScale), all reconnecting as soon as they
// are closed, against a 512-connection cap: about ten times the cap. Three
// legit clients run meanwhile, from their own addresses: one opening a new
// connection per request, one keep-alive, one on a slow endpoint whose
// requests hold their connection active for 200 ms.
func manySources(t *testing.T, l *Listener, paceRate rate.Limit) (fresh, keep, slow *legit, st ListenerStats) {
	addr := l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	partial, idle := 3000/floodScale(), 2000/floodScale()
	pace := rate.NewLimiter(paceRate/rate.Limit(floodScale()), partial+idle)
	atk := &attacker{addr: addr, pace: pace}
	idler := &attacker{addr: addr, pace: pace}
	for i := range partial {
		wg.Add(1)
		go atk.hold(ctx, &wg, net.IPv4(127, 0, 10, byte(1+i%30)), "GET / HTTP/1.1\r\nHost: x\r\nX-A: ")
	}
	for i := range idle {
		wg.Add(1)
		go idler.hold(ctx, &wg, net.IPv4(127, 0, 11, byte(1+i%50)), "")
	}
	// The legit clients start once the first wave has been accepted: the
	// burst of thousands of simultaneous connects is a SYN flood, the
	// kernel's business; what is measured here is the held and
	// reconnecting connections that follow.
	require.Eventually(t, func() bool {
		return atk.dials.Load() >= int64(partial) && l.Stats().Incoming >= uint64(atk.dials.Load()-atk.refused.Load()) &&
			l.Stats().Active >= int64(l.cfg.maxConns)*9/10
	}, 30*time.Second, 5*time.Millisecond, "the flood never filled the cap")

	fresh, keep, slow = new(legit), new(legit), new(legit)
	lctx, lcancel := context.WithTimeout(ctx, floodDuration(t))
	defer lcancel()
	var lwg sync.WaitGroup
	// A keep-alive client at one request a second idles between requests
	// the way the issue measured; its connection must never be reset.
	var slowKeep legit
	lwg.Add(4)
	go slowKeep.run(t, lctx, &lwg, addr, net.IPv4(127, 0, 0, 5), time.Second, "/", true)
	defer func() {
		slowKeep.mu.Lock()
		defer slowKeep.mu.Unlock()
		t.Logf("keep-alive at 1 req/s: %d served, %d failed, %d connections", len(slowKeep.lat), len(slowKeep.fails), slowKeep.dials.Load())
		if l.cfg.overflow == Preempt {
			require.Empty(t, slowKeep.fails)
			require.LessOrEqual(t, slowKeep.dials.Load(), int64(1), "the 1 req/s keep-alive connection was reset")
		}
	}()
	go fresh.run(t, lctx, &lwg, addr, net.IPv4(127, 0, 0, 2), 20*time.Millisecond, "/", false)
	go keep.run(t, lctx, &lwg, addr, net.IPv4(127, 0, 0, 3), 100*time.Millisecond, "/", true)
	go slow.run(t, lctx, &lwg, addr, net.IPv4(127, 0, 0, 4), 50*time.Millisecond, "/slow", false)
	lwg.Wait()
	st = l.Stats()
	t.Logf("attack: %d+%d dials, %d+%d refused at connect; listener %+v %v", atk.dials.Load(), idler.dials.Load(),
		atk.refused.Load(), idler.refused.Load(), st, st.Rejected.Map())
	return fresh, keep, slow, st
}

// TestFloodManySources: with Preempt and Harden, every legit client is
// served: no resets, no preempted active request, p99 within bound.
func TestFloodManySources(t *testing.T) {
	loopbackOK(t)
	l, srv, served := floodServer(t)
	fresh, keep, slow, st := manySources(t, l, attackPace)
	success, p99 := fresh.report(t, "new connection per request")
	ks, control := keep.report(t, "keep-alive")
	require.GreaterOrEqual(t, success, 0.99)
	requireP99(t, p99, control)
	require.Equal(t, 1.0, ks)
	require.Equal(t, int64(1), keep.dials.Load(), "the keep-alive connection was never reset")
	ss, _ := slow.report(t, "slow endpoint")
	require.Equal(t, 1.0, ss, "an active request was preempted")
	require.Positive(t, st.Rejected[Preempted])

	require.NoError(t, srv.Close())
	require.ErrorIs(t, <-served, http.ErrServerClosed)
	require.Eventually(t, func() bool {
		st := l.Stats()
		return st.Active == 0 && st.Incoming == st.Closed+st.Rejected.Total()
	}, 10*time.Second, 5*time.Millisecond, "every connection accounted: %+v", l.Stats())
}

// TestFloodManySourcesFastReconnect: the same flood with attackers
// reconnecting five times faster, against the configuration issue 11
// measured (Shed, 32 per IP, a 1 s first-byte timeout, the read guard
// unwired) and against Preempt wired with Harden. Shed hands most freed
// slots to the attackers and the legit client is barely served, which also
// shows the flood test can tell a defence that works from one that does
// not; Preempt serves every request that completes within the run. (At
// this pace the attacker's own CPU on this machine delays accepts for
// both: latency is not compared here.)
func TestFloodManySourcesFastReconnect(t *testing.T) {
	if raceEnabled {
		// Under the race detector this pace alone saturates the process
		// and neither server accepts in time: the comparison means
		// nothing there. The same code paths run raced in
		// TestFloodManySources.
		t.Skip("a load comparison: needs a build without the race detector")
	}
	loopbackOK(t)
	ticks := int(floodDuration(t) / (20 * time.Millisecond))
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	shed, err := NewListener(inner, WithMaxConns(512/floodScale()), WithOverflow(Shed), WithMaxConnsPerIP(32/floodScale()),
		WithFirstByteTimeout(time.Second), WithMinReadRate(256, time.Second))
	require.NoError(t, err)
	srv := HardenServer(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(shed) }()
	shedFresh, _, _, _ := manySources(t, shed, 5*attackPace)
	shedFresh.report(t, "new connection per request (Shed)")
	require.NoError(t, srv.Close())
	require.ErrorIs(t, <-done, http.ErrServerClosed)

	l, psrv, served := floodServer(t)
	fresh, _, slow, _ := manySources(t, l, 5*attackPace)
	success, _ := fresh.report(t, "new connection per request (Preempt)")
	ss, _ := slow.report(t, "slow endpoint (Preempt)")
	require.NoError(t, psrv.Close())
	require.ErrorIs(t, <-served, http.ErrServerClosed)

	t.Logf("served of %d ticks: Shed %d, Preempt %d", ticks, shedFresh.served, fresh.served)
	require.Less(t, shedFresh.served, ticks*9/10)
	require.GreaterOrEqual(t, success, 0.99)
	require.Equal(t, 1.0, ss, "an active request was preempted")
	require.Greater(t, fresh.served, shedFresh.served)
}

// TestFloodOneSource: 5,000 connections from one address, reconnecting as
// soon as they are refused (the per-IP cap refuses all but 64). Rejection
// must stay cheap enough that a legit client's p99 stays under 100 ms.
func TestFloodOneSource(t *testing.T) {
	loopbackOK(t)
	l, srv, served := floodServer(t)
	addr := l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	n := 5000 / floodScale()
	atk := &attacker{addr: addr, pace: rate.NewLimiter(attackPace/rate.Limit(floodScale()), n)}
	for range n {
		wg.Add(1)
		go atk.hold(ctx, &wg, net.IPv4(127, 0, 12, 1), "GET / HTTP/1.1\r\nHost: x\r\n")
	}
	require.Eventually(t, func() bool {
		return atk.dials.Load() >= int64(n) && l.Stats().Incoming >= uint64(atk.dials.Load()-atk.refused.Load())
	}, 30*time.Second, 5*time.Millisecond, "the first wave was never accepted")
	var fresh, keep legit
	lctx, lcancel := context.WithTimeout(ctx, floodDuration(t))
	var lwg sync.WaitGroup
	lwg.Add(2)
	go fresh.run(t, lctx, &lwg, addr, net.IPv4(127, 0, 0, 2), 20*time.Millisecond, "/", false)
	go keep.run(t, lctx, &lwg, addr, net.IPv4(127, 0, 0, 3), 100*time.Millisecond, "/", true)
	lwg.Wait()
	lcancel()
	st := l.Stats()
	cancel()
	wg.Wait()
	t.Logf("attack: %d dials, %d refused at connect; listener %+v %v", atk.dials.Load(), atk.refused.Load(), st, st.Rejected.Map())
	success, p99 := fresh.report(t, "new connection per request")
	ks, control := keep.report(t, "keep-alive (control)")
	require.GreaterOrEqual(t, success, 0.99)
	require.Equal(t, 1.0, ks)
	requireP99(t, p99, control)
	require.NoError(t, srv.Close())
	require.ErrorIs(t, <-served, http.ErrServerClosed)
	require.Eventually(t, func() bool {
		st := l.Stats()
		return st.Active == 0 && st.Incoming == st.Closed+st.Rejected.Total()
	}, 10*time.Second, 5*time.Millisecond, "every connection accounted: %+v", l.Stats())
}

// attackPace bounds the reconnect rate of all attackers together (their
// first connections go at once, as a burst). Attacker and server share
// this test's CPU (two cores, shared with other builds): an unpaced
// attacker measures how fast the attacker can dial, not how the server
// defends. At a rate the accept loop cannot keep up with, the kernel's
// accept queue fills and delays or drops handshakes whatever the server
// does: that is a volumetric flood, for SYN cookies and a load balancer.
const attackPace = 300

// TestFloodThousandsOfSources: 2,000 partial-request connections, each
// from its own address (four times the cap, more addresses than slots, as
// an IPv6 botnet with a /64 per bot would be), reconnecting when closed. Every
// source then holds one slot and none is the biggest holder; the oldest
// connection goes first, and a legit client, which completes its request
// within a millisecond of connecting, is still served.
func TestFloodThousandsOfSources(t *testing.T) {
	loopbackOK(t)
	l, srv, served := floodServer(t)
	addr := l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	n := 2000 / floodScale()
	atk := &attacker{addr: addr, pace: rate.NewLimiter(attackPace/rate.Limit(floodScale()), n)}
	for i := range n {
		wg.Add(1)
		go atk.hold(ctx, &wg, net.IPv4(127, 0, byte(20+i/250), byte(1+i%250)), "GET / HTTP/1.1\r\nHost: x\r\n")
	}
	require.Eventually(t, func() bool {
		return atk.dials.Load() >= int64(n) && l.Stats().Incoming >= uint64(atk.dials.Load()-atk.refused.Load()) &&
			l.Stats().Active >= int64(l.cfg.maxConns)*9/10
	}, 30*time.Second, 5*time.Millisecond, "the flood never filled the cap")
	var fresh legit
	lctx, lcancel := context.WithTimeout(ctx, floodDuration(t))
	var lwg sync.WaitGroup
	lwg.Add(1)
	go fresh.run(t, lctx, &lwg, addr, net.IPv4(127, 0, 0, 2), 20*time.Millisecond, "/", false)
	lwg.Wait()
	lcancel()
	st := l.Stats()
	cancel()
	wg.Wait()
	t.Logf("attack: %d dials; listener %+v %v", atk.dials.Load(), st, st.Rejected.Map())
	success, _ := fresh.report(t, "new connection per request")
	require.GreaterOrEqual(t, success, 0.99)
	require.Greater(t, st.TrackedIPs, l.cfg.maxConns/2, "the sources outnumber the slots")
	require.NoError(t, srv.Close())
	require.ErrorIs(t, <-served, http.ErrServerClosed)
	require.Eventually(t, func() bool {
		st := l.Stats()
		return st.Active == 0 && st.Incoming == st.Closed+st.Rejected.Total()
	}, 10*time.Second, 5*time.Millisecond, "every connection accounted: %+v", l.Stats())
}
