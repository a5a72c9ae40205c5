package siege

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/garrison-go/garrison/examples/hardened-server/app"
)

// Keep-alive idle: legitimate clients keep their connection open between
// requests, one request a second, while a botnet opens idle connections
// up to several times the connection cap. A defence that judges every
// silent connection alike (a read-rate rule, a first-byte rule applied
// again after each request, preempting whatever is idle) resets the
// legitimate ones too; each reset costs their user a new handshake, and
// a request in flight on it fails.

// kaClients is how many legitimate keep-alive clients run at once in each
// group: one group behind a single address (an office behind NAT), one
// with an address each (127.0.2.1 and up).
const kaClients = 10

// keepAliveClient is one legitimate client on one kept-alive HTTP/1.1
// connection, counting the connections it had to open.
type keepAliveClient struct {
	*client
	dials atomic.Int64
}

func newKeepAliveClient(e *env, src netip.Addr) *keepAliveClient {
	k := &keepAliveClient{}
	d := &net.Dialer{Timeout: e.p.legitTimeout, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			k.dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		IdleConnTimeout:     time.Minute,
		Proxy:               nil,
	}
	k.client = &client{hc: &http.Client{Transport: tr, Timeout: e.p.legitTimeout}, tr: tr}
	return k
}

func runKeepAlive(ctx context.Context, e *env, name string) (*SideResult, error) {
	srcs := botnetAddrs(botnetSources)
	if srcs == nil {
		return nil, fmt.Errorf("cannot bind 127.0.1.1: the keep-alive scenario needs 127.0.0.0/8 on the loopback interface (Linux)")
	}
	s, err := e.beginWith(name, "", "GET /accounts/alice, 1 per second per client on a kept-alive connection", targetConfig{
		hardened: func(c *app.Config) { c.MaxConns = e.p.botnetCap },
	})
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, e.p.kaPhase)
	defer cancel()

	// The clients connect first: they are the regulars the flood finds
	// already there.
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		clients []*keepAliveClient
	)
	for i := range 2 * kaClients {
		src := e.legitSrc // the NAT group
		if i >= kaClients {
			src = netip.AddrFrom4([4]byte{127, 0, 2, byte(1 + i - kaClients)})
		}
		k := newKeepAliveClient(e, src)
		clients = append(clients, k)
		wg.Go(func() {
			// Staggered, so the requests do not all fall in one instant.
			if !sleepCtx(actx, time.Duration(i)*time.Second/(2*kaClients)) {
				return
			}
			for {
				t0 := time.Now()
				status, err := k.do(context.Background(), "GET", s.t.url+"/accounts/alice")
				smp := Sample{AtMS: ms(t0.Sub(s.start)), LatencyMS: ms(time.Since(t0)), Answered: err == nil, OK: err == nil && is2xx(status), Status: status}
				mu.Lock()
				s.res.Legit = append(s.res.Legit, smp)
				mu.Unlock()
				if !sleepCtx(actx, time.Second-time.Since(t0)) {
					return
				}
			}
		})
	}
	// The idle flood: 4× the hardened twin's cap.
	idle := 4 * e.p.botnetCap
	st := botnet(actx, s.t.addr, srcs, []botKind{botIdle}, idle, 20*idle, e.p.kaPhase/4, 100*time.Millisecond)
	wg.Wait()
	var nat, own int64
	for i, k := range clients {
		if i < kaClients {
			nat += max(k.dials.Load()-1, 0)
		} else {
			own += max(k.dials.Load()-1, 0)
		}
		k.close()
	}
	ls := summarize(s.res.Legit, e.p.legitTimeout)
	s.res.Values["legit reconnects, one address"] = float64(nat)
	s.res.Values["legit reconnects, own addresses"] = float64(own)
	s.res.Notes = append(s.res.Notes, fmt.Sprintf("%s: %d legit requests from %d kept-alive clients, %d succeeded, %d reconnects behind one address, %d with their own; idle flood: %d dials (%d failed), %d closed by the server, peak %d held",
		name, ls.N, 2*kaClients, ls.OK, nat, own, st.Dials, st.DialErrors, st.ClosedByServer, st.PeakHeld))
	return s.end()
}

func keepAliveFigures(e *env, n, h *SideResult) []Figure {
	ns, hs := summarize(n.Legit, e.p.legitTimeout), summarize(h.Legit, e.p.legitTimeout)
	return []Figure{
		{Name: "legit success", Unit: "%", Naive: pct(ns.OK, ns.N), Hardened: pct(hs.OK, hs.N), Better: "higher", Ideal: 100, TieOK: true, Bound: 99, HasBound: true},
		{Name: "legit p99", Unit: "ms", Naive: ns.P99, Hardened: hs.P99, Better: "lower", Bound: 100, HasBound: true},
		{Name: "legit reconnects, one address", Unit: "", Naive: n.Values["legit reconnects, one address"], Hardened: h.Values["legit reconnects, one address"], Better: "lower", Ideal: 0, Required: true, TieOK: true},
		{Name: "legit reconnects, own addresses", Unit: "", Naive: n.Values["legit reconnects, own addresses"], Hardened: h.Values["legit reconnects, own addresses"], Better: "lower", Ideal: 0, Required: true, TieOK: true},
	}
}

func keepAliveNotes(e *env, n, h *SideResult) []string {
	notes := []string{
		fmt.Sprintf("attack: %d idle connections (4× the hardened twin's cap of %d) from %d addresses, redialled 100 ms after the server closes one", 4*e.p.botnetCap, e.p.botnetCap, botnetSources),
		fmt.Sprintf("legit: %d clients behind one address (127.0.0.1, an office behind NAT) and %d with an address each (127.0.2.1 and up), each one request a second on its own kept-alive connection; a reconnect means the server closed a connection the client meant to reuse", kaClients, kaClients),
	}
	notes = append(notes, n.Notes...)
	return append(notes, h.Notes...)
}
