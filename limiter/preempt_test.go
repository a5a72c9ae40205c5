package limiter

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLedgerAgainstModel drives the ledger with random adds, removes and
// moves between the fresh and idle tiers, and checks every victim against
// a brute-force model: from the fresh tier while it holds any connection,
// else from the idle tier; within it, from a source holding the most of
// that tier's connections (the newcomer's own on a tie), the oldest of
// that source; and, when the newcomer's source holds some and the move
// would not make the shares fairer, only a connection preemptable for
// preemptMinAge.
func TestLedgerAgainstModel(t *testing.T) {
	const sources, maxConns = 12, 64
	rng := rand.New(rand.NewPCG(1, 2))
	lg := newLedger(sources, maxConns)
	var held []*conn // in the order they entered the ledger (or their tier)
	seq := map[*conn]int{}
	idle := func(c *conn) bool { return connState(c.state.Load()) == stIdle }
	tiersSeen := [2]int{}
	for step := range 40_000 {
		now := int64(step) * preemptMinAge / 8 // eight steps per minimum age
		switch op := rng.IntN(3); {
		case len(held) < maxConns && (len(held) == 0 || op == 0):
			c := &conn{slot: rng.IntN(sources+1) - 1} // -1: an untracked source
			if rng.IntN(2) == 0 {
				c.state.Store(uint32(stIdle))
			}
			lg.add(c, now)
			held = append(held, c)
			seq[c] = step
		case op == 1:
			// A move between tiers, as setState does: new or idle to
			// idle (served a request) or back to new.
			i := rng.IntN(len(held))
			c := held[i]
			lg.remove(c)
			c.state.Store(uint32([]connState{stNew, stIdle}[rng.IntN(2)]))
			lg.add(c, now)
			held = append(append(held[:i:i], held[i+1:]...), c)
			seq[c] = step
		default:
			i := rng.IntN(len(held))
			lg.remove(held[i])
			lg.remove(held[i]) // a second remove is a no-op
			held = append(held[:i], held[i+1:]...)
		}
		var fresh, kept []*conn
		for _, c := range held {
			if idle(c) {
				kept = append(kept, c)
			} else {
				fresh = append(fresh, c)
			}
		}
		require.Equal(t, len(held), lg.n)
		require.Equal(t, len(fresh), lg.tier[tierFresh].n)
		require.Equal(t, len(kept), lg.tier[tierIdle].n)
		// The tier a victim must come from, and its counts per source.
		pool := fresh
		if len(fresh) == 0 {
			pool = kept
		}
		for ti, cs := range [][]*conn{fresh, kept} {
			top := 0
			count := map[int]int{}
			for _, c := range cs {
				count[c.slot]++
				top = max(top, count[c.slot])
			}
			require.Equal(t, top, lg.tier[ti].top)
		}
		count := map[int]int{}
		top := 0
		for _, c := range pool {
			count[c.slot]++
			top = max(top, count[c.slot])
		}
		self := rng.IntN(sources+1) - 1
		v := lg.victim(self, now)
		if len(held) == 0 {
			require.Nil(t, v)
			continue
		}
		fairer := count[self] == 0 || count[self]+1 < top
		if v == nil {
			require.False(t, fairer, "a fairer move is never refused")
			continue
		}
		require.Equal(t, len(fresh) == 0, idle(v), "an idle keep-alive only when no fresh connection is left")
		tiersSeen[v.tier]++
		require.Equal(t, top, count[v.slot], "victim's source holds the most of its tier")
		if count[self] == top {
			require.Equal(t, self, v.slot, "a newcomer whose source is at the top churns its own")
		}
		if !fairer {
			require.GreaterOrEqual(t, now-v.since, preemptMinAge, "an unfair move takes only an old connection")
		}
		for _, c := range pool {
			if c.slot == v.slot {
				require.LessOrEqual(t, seq[v], seq[c], "victim is its source's oldest in its tier")
			}
		}
	}
	require.NotZero(t, tiersSeen[tierFresh], "the run chose fresh victims")
	require.NotZero(t, tiersSeen[tierIdle], "the run chose idle victims")
}

// srcConn is one end of a net.Pipe that claims a TCP remote address, so
// in-memory connections have distinct sources.
type srcConn struct {
	net.Conn
	remote net.Addr
}

func (c *srcConn) RemoteAddr() net.Addr { return c.remote }

// pipeFrom hands l (through inner) a connection from src and returns the
// client end.
func pipeFrom(inner *chanListener, src string) net.Conn {
	server, client := net.Pipe()
	inner.ch <- &srcConn{Conn: server, remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(src), 1234))}
	return client
}

// TestPreemptPicksTheBiggestHolder: at the cap, a newcomer from a fresh
// source preempts the oldest silent connection of the source holding the
// most; a connection that has spoken (serving) is never chosen; when every
// held connection is serving the newcomer is shed.
func TestPreemptPicksTheBiggestHolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := newChanListener()
		var mu sync.Mutex
		var hooked []Reason
		l, err := NewListener(inner, WithMaxConns(4), WithOverflow(Preempt), WithoutTarpit(),
			WithOnRejectConn(func(_ netip.Addr, r Reason) { mu.Lock(); hooked = append(hooked, r); mu.Unlock() }))
		require.NoError(t, err)
		defer l.Close()
		accept := func(src string) (net.Conn, net.Conn) {
			client := pipeFrom(inner, src)
			c, err := l.Accept()
			require.NoError(t, err)
			return client, c
		}
		// 10.0.0.1 holds three silent connections, 10.0.0.2 one that has
		// spoken: it is serving.
		var a [3]net.Conn
		var aClient [3]net.Conn
		for i := range a {
			aClient[i], a[i] = accept("10.0.0.1")
		}
		bClient, b := accept("10.0.0.2")
		go func() { _, _ = bClient.Write([]byte("GET")) }()
		_, err = b.Read(make([]byte, 3))
		require.NoError(t, err)
		require.Equal(t, 3, l.Stats().Preemptable)

		// A newcomer: 10.0.0.1's oldest goes.
		cClient, c := accept("10.0.0.3")
		errc := make(chan error, 1)
		go func() { _, err := a[0].Read(make([]byte, 1)); errc <- err }()
		require.Error(t, <-errc)
		st := l.Stats()
		require.Equal(t, uint64(1), st.Rejected[Preempted])
		require.Equal(t, int64(4), st.Active)

		// 10.0.0.1 (two) is still the biggest holder; 10.0.0.3's newcomer
		// holds one. Make everyone but 10.0.0.1 serve, then preempt the
		// rest of 10.0.0.1 and require serving connections to survive.
		go func() { _, _ = cClient.Write([]byte("x")) }()
		_, err = c.Read(make([]byte, 1))
		require.NoError(t, err)
		d1Client, d1 := accept("10.0.0.4")
		// Every source now holds one preemptable connection, 10.0.0.4 too:
		// a second from it would not make the shares fairer, so only one
		// of its own that has waited preemptMinAge may give way. None has:
		// the newcomer is shed.
		parked := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				close(parked)
				return
			}
			parked <- c
		}()
		f := pipeFrom(inner, "10.0.0.4")
		_, err = f.Read(make([]byte, 1))
		require.Error(t, err, "the newcomer was closed")
		require.NoError(t, f.Close())
		synctest.Wait()
		require.Equal(t, uint64(1), l.Stats().Rejected[FairShare])
		// A newcomer from a source holding none always gets a slot: the
		// oldest, a[2], gives way. The Accept parked above takes it.
		d2Client := pipeFrom(inner, "10.0.0.5")
		d2, ok := <-parked
		require.True(t, ok)
		require.Equal(t, uint64(3), l.Stats().Rejected[Preempted], "a[1] and a[2] preempted")
		go func() { _, _ = d1Client.Write([]byte("x")); _, _ = d2Client.Write([]byte("x")) }()
		_, err = d1.Read(make([]byte, 1))
		require.NoError(t, err)
		_, err = d2.Read(make([]byte, 1))
		require.NoError(t, err)

		// Everyone serves: the next newcomer is shed.
		e := pipeFrom(inner, "10.0.0.6")
		go func() { _, err := e.Read(make([]byte, 1)); errc <- err }()
		go func() { _, err := l.Accept(); errc <- err }()
		require.Error(t, <-errc, "the newcomer was closed")
		synctest.Wait()
		st = l.Stats()
		require.Equal(t, uint64(1), st.Rejected[GlobalConns])
		require.Equal(t, int64(4), st.Active)
		for _, s := range []net.Conn{b, c, d1, d2} {
			require.NoError(t, s.SetReadDeadline(time.Now()))
			_, err := s.Read(make([]byte, 1))
			require.ErrorIs(t, err, errDeadline, "a serving connection is still open")
		}
		mu.Lock()
		require.Equal(t, []Reason{Preempted, Preempted, FairShare, Preempted, GlobalConns}, hooked)
		mu.Unlock()
		require.NoError(t, l.Close())
		require.ErrorIs(t, <-errc, ErrClosed)
		for _, s := range []net.Conn{b, c, d1, d2, aClient[0], aClient[1], aClient[2], bClient, cClient, d1Client, d2Client, e, f} {
			_ = s.Close()
		}
		st = l.Stats()
		require.Equal(t, st.Incoming, uint64(st.Active)+st.Closed+st.Rejected.Total())
		require.Equal(t, int64(0), st.Active)
	})
}

// TestPreemptFreshBeforeKeepAlive reproduces the keep-alive bug: ten
// browsers behind one NAT address hold ten idle keep-alive connections
// that have served a request, twenty sources hold one never-used
// connection each, and the cap is reached. Every newcomer preempts a
// never-used connection, though the NAT address holds the most, until
// none is left; only then does an idle keep-alive, the oldest, give way.
func TestPreemptFreshBeforeKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const nat, fresh = 10, 20
		inner := newChanListener()
		var mu sync.Mutex
		var hooked []netip.Addr
		l, err := NewListener(inner, WithMaxConns(nat+fresh), WithOverflow(Preempt),
			WithOnRejectConn(func(a netip.Addr, r Reason) {
				if r == Preempted {
					mu.Lock()
					hooked = append(hooked, a)
					mu.Unlock()
				}
			}))
		require.NoError(t, err)
		defer l.Close()
		var clients []net.Conn
		accept := func(src string) net.Conn {
			clients = append(clients, pipeFrom(inner, src))
			c, err := l.Accept()
			require.NoError(t, err)
			return c
		}
		// serve walks c through a request as http.Server reports it.
		serve := func(c net.Conn, idle bool) {
			l.ConnState(c, http.StateNew)
			l.ConnState(c, http.StateActive)
			if idle {
				l.ConnState(c, http.StateIdle)
			}
		}
		open := func(c net.Conn) bool {
			if err := c.SetReadDeadline(time.Now()); err != nil {
				return false // closed
			}
			_, err := c.Read(make([]byte, 1))
			return errors.Is(err, errDeadline)
		}
		var kept, never []net.Conn
		for range nat {
			c := accept("10.0.0.1")
			serve(c, true)
			kept = append(kept, c)
		}
		for i := range fresh {
			never = append(never, accept(fmt.Sprintf("10.1.0.%d", i+1)))
		}
		st := l.Stats()
		require.Equal(t, int64(nat+fresh), st.Active)
		require.Equal(t, nat+fresh, st.Preemptable)

		// Each newcomer takes a never-used connection's slot (the oldest),
		// then serves, so the never-used ones run out one by one.
		for i := range fresh {
			c := accept(fmt.Sprintf("10.2.0.%d", i+1))
			require.Equal(t, uint64(i+1), l.Stats().Rejected[Preempted])
			mu.Lock()
			require.Equal(t, netip.MustParseAddr(fmt.Sprintf("10.1.0.%d", i+1)), hooked[i], "the oldest never-used connection goes")
			mu.Unlock()
			for _, k := range kept {
				require.True(t, open(k), "an idle keep-alive survives while a never-used connection is held")
			}
			serve(c, false)
		}
		for _, n := range never {
			require.False(t, open(n), "every never-used connection was preempted")
		}
		require.Equal(t, nat, l.Stats().Preemptable)

		// No never-used connection is left: the oldest idle keep-alive goes.
		accept("10.3.0.1")
		require.Equal(t, uint64(fresh+1), l.Stats().Rejected[Preempted])
		require.False(t, open(kept[0]), "the oldest idle keep-alive gave way")
		for _, k := range kept[1:] {
			require.True(t, open(k))
		}
		require.NoError(t, l.Close())
		for _, c := range clients {
			_ = c.Close()
		}
		st = l.Stats()
		require.Equal(t, st.Incoming, uint64(st.Active)+st.Closed+st.Rejected.Total())
	})
}
