package limiter

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// requireHeldOpen checks that the server neither answered nor closed c
// within a short wait: it is parked, not reset.
func requireHeldOpen(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, err := c.Read(make([]byte, 1))
	require.ErrorIs(t, err, errDeadline, "the server closed or answered a connection it should hold")
	require.NoError(t, c.SetReadDeadline(time.Time{}))
}

func requireAccounted(t *testing.T, l *Listener) {
	t.Helper()
	st := l.Stats()
	require.Equal(t, st.Incoming, uint64(st.Active)+st.Closed+st.Rejected.Total(), "every connection in exactly one state: %+v", st)
}

// TestTarpitHoldsRefusedConnsOfAHeavySource: at the cap, a source that
// already holds its share is refused (FairShare) and its newcomer is held
// open and unread instead of reset, counted once under its reason; the
// hold time, the peer's close and Close each end a parked connection.
func TestTarpitHoldsRefusedConnsOfAHeavySource(t *testing.T) {
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithMaxConns(4), WithOverflow(Preempt),
		WithTarpit(8, 1500*time.Millisecond))
	conns := acceptLoop(t, l)
	var first []net.Conn
	for range 4 {
		first = append(first, dialFrom(t, l, "127.0.2.1"))
		<-conns
	}
	// A fifth from the same source would not make the shares fairer, and
	// none of its connections has waited preemptMinAge: refused, parked.
	held := []net.Conn{dialFrom(t, l, "127.0.2.1"), dialFrom(t, l, "127.0.2.1")}
	require.Eventually(t, func() bool { return l.Stats().Tarpitted == 2 }, 5*time.Second, 5*time.Millisecond)
	for _, c := range held {
		requireHeldOpen(t, c)
	}
	st := l.Stats()
	require.Equal(t, uint64(2), st.Rejected[FairShare])
	require.Equal(t, int64(4), st.Active)
	requireAccounted(t, l)

	// The peer closes one: the janitor notices without reading.
	require.NoError(t, held[0].Close())
	require.Eventually(t, func() bool { return l.Stats().Tarpitted == 1 }, 5*time.Second, 10*time.Millisecond)
	// The other ends at its hold time, with a reset.
	requireClosedByPeer(t, held[1])
	require.Zero(t, l.Stats().Tarpitted)
	requireAccounted(t, l)

	// The source's connections have now waited preemptMinAge: its next
	// newcomer takes the slot of its oldest, which is parked (the source
	// holds four). Close resets whatever is still held.
	dialFrom(t, l, "127.0.2.1")
	require.Eventually(t, func() bool { return l.Stats().Tarpitted == 1 }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, uint64(1), l.Stats().Rejected[Preempted])
	requireHeldOpen(t, first[0])
	require.NoError(t, l.Close())
	requireClosedByPeer(t, first[0])
	require.Zero(t, l.Stats().Tarpitted)
}

// TestTarpitPressure: a source over its per-address cap is held whatever
// the load, but below half the cap a slow client is reset even from a
// source holding two: the client is told at once.
func TestTarpitPressure(t *testing.T) {
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithMaxConns(16), WithMaxConnsPerIP(2), WithOverflow(Preempt),
		WithFirstByteTimeout(100*time.Millisecond))
	conns := acceptLoop(t, l)
	a, b := dialFrom(t, l, "127.0.2.2"), dialFrom(t, l, "127.0.2.2")
	for range 2 {
		c := <-conns
		go func() { _, _ = c.Read(make([]byte, 1)); _ = c.Close() }()
	}
	over := dialFrom(t, l, "127.0.2.2")
	require.Eventually(t, func() bool { return l.Stats().Tarpitted == 1 }, 5*time.Second, 5*time.Millisecond)
	requireHeldOpen(t, over)
	// Silent past the first-byte timeout: cut as SlowClient, and reset.
	requireClosedByPeer(t, a)
	requireClosedByPeer(t, b)
	st := l.Stats()
	require.Equal(t, uint64(2), st.Rejected[SlowClient])
	require.Equal(t, uint64(1), st.Rejected[IPConns])
	require.Equal(t, 1, st.Tarpitted)
	requireAccounted(t, l)
}

// TestTarpitBudget: the tarpit holds at most its max; beyond it refused
// connections are reset as before.
func TestTarpitBudget(t *testing.T) {
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithMaxConns(2), WithMaxConnsPerIP(2), WithOverflow(Preempt),
		WithTarpit(3, time.Minute))
	conns := acceptLoop(t, l)
	dialFrom(t, l, "127.0.2.3")
	dialFrom(t, l, "127.0.2.3")
	<-conns
	<-conns
	for range 3 {
		dialFrom(t, l, "127.0.2.3")
	}
	require.Eventually(t, func() bool { return l.Stats().Tarpitted == 3 }, 5*time.Second, 5*time.Millisecond)
	requireRefused(t, l, "127.0.2.3")
	require.Equal(t, 3, l.Stats().Tarpitted)
	require.Equal(t, uint64(4), l.Stats().Rejected[IPConns])
	requireAccounted(t, l)
}

// TestTarpitNeverHoldsAKeepAlive: a preempted idle keep-alive connection
// has served a request; its client would send the next one into silence,
// so it is reset even from a source holding many. A preempted fresh
// connection (no complete request) of a source holding two is parked.
func TestTarpitNeverHoldsAKeepAlive(t *testing.T) {
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	listen := func(maxConns int) (*chanListener, *Listener) {
		inner := newChanListener()
		l, err := NewListener(inner, WithMaxConns(maxConns), WithOverflow(Preempt), WithTarpit(8, time.Minute))
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Close() })
		return inner, l
	}
	accept := func(inner *chanListener, l *Listener, src string) (net.Conn, *conn) {
		client := pipeFrom(inner, src)
		clients = append(clients, client)
		c, err := l.Accept()
		require.NoError(t, err)
		return client, c.(*conn)
	}

	inner, l := listen(2)
	aClient, a := accept(inner, l, "10.0.0.1")
	_, b := accept(inner, l, "10.0.0.1")
	a.setState(stIdle)
	b.setState(stIdle)
	// Only idle keep-alives are held: a newcomer from elsewhere preempts
	// 10.0.0.1's oldest, and its client sees the close.
	accept(inner, l, "10.0.0.2")
	_, err := aClient.Read(make([]byte, 1))
	require.Error(t, err)
	require.Zero(t, l.Stats().Tarpitted)
	require.Equal(t, uint64(1), l.Stats().Rejected[Preempted])

	inner, l = listen(3)
	xClient, _ := accept(inner, l, "10.0.0.1")
	accept(inner, l, "10.0.0.1")
	accept(inner, l, "10.0.0.2")
	// Fresh connections: 10.0.0.1 holds two, and its oldest is parked
	// for the newcomer from 10.0.0.3.
	accept(inner, l, "10.0.0.3")
	st := l.Stats()
	require.Equal(t, uint64(1), st.Rejected[Preempted])
	require.Equal(t, 1, st.Tarpitted)
	require.Equal(t, st.Incoming, uint64(st.Active)+st.Closed+st.Rejected.Total())
	// The client end of a pipe sees nothing: no close, no data.
	require.NoError(t, xClient.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err = xClient.Read(make([]byte, 1))
	require.ErrorIs(t, err, errDeadline)
}

// TestTarpitStress: many sources churn against a small cap with the
// tarpit on; every connection ends in exactly one state, the tarpit stays
// within its budget, and Close leaves nothing held and no goroutine.
func TestTarpitStress(t *testing.T) {
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithMaxConns(8), WithMaxConnsPerIP(4), WithOverflow(Preempt),
		WithTarpit(20, 300*time.Millisecond), WithFirstByteTimeout(200*time.Millisecond))
	conns := acceptLoop(t, l)
	var served sync.WaitGroup
	served.Add(1)
	go func() {
		defer served.Done()
		for c := range conns {
			go func() {
				defer c.Close()
				_, _ = c.Read(make([]byte, 1))
			}()
		}
	}()
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := netip.AddrFrom4([4]byte{127, 0, 3, byte(w + 1)}).String()
			d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			for i := range 40 {
				c, err := d.Dial("tcp", l.Addr().String())
				if err != nil {
					continue
				}
				_ = c.(*net.TCPConn).SetLinger(0)
				if i%3 == 0 {
					_, _ = c.Write([]byte("x"))
				}
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				_, _ = c.Read(make([]byte, 1))
				if i%2 == 0 {
					_ = c.Close()
				}
				require.LessOrEqual(t, l.Stats().Tarpitted, 20)
			}
		}()
	}
	wg.Wait()
	requireAccounted(t, l)
	st := l.Stats()
	require.NotZero(t, st.Rejected.Total(), "the run refused connections: %+v", st)
	require.NoError(t, l.Close())
	require.Zero(t, l.Stats().Tarpitted)
}

// TestTarpitBudgetArithmetic: the tarpit never takes more than half of the
// descriptors left beyond the cap and PreflightFDHeadroom.
func TestTarpitBudgetArithmetic(t *testing.T) {
	soft, ok := fdLimit()
	if !ok {
		t.Skip("no RLIMIT_NOFILE here")
	}
	tp := newTarpit(1<<20, time.Second, 128)
	spare := (int(soft) - 128 - PreflightFDHeadroom) / 2
	require.Equal(t, max(0, min(1<<20, spare)), tp.limit(), fmt.Sprintf("soft limit %d", soft))
	small := newTarpit(3, time.Second, 128)
	require.LessOrEqual(t, small.limit(), 3)
	tp.close()
	small.close()
}
