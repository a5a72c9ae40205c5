package limiter

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

func newTestListener(t *testing.T, network, addr string, opts ...ListenerOption) *Listener {
	t.Helper()
	inner, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	l, err := NewListener(inner, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// noTarpit makes refusals resets, for the tests that watch a refusal from
// the client's side; tarpit_test.go covers the refusals that are held.
var noTarpit = WithoutTarpit()

// dialFrom connects to l from the loopback source address src ("" for any).
// Linux routes all of 127.0.0.0/8 to lo, so each 127.x.y.z is a distinct
// client.
func dialFrom(t *testing.T, l net.Listener, src string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		if src != "" && errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Skipf("cannot dial from %q: %v", src, err)
		}
		t.Fatalf("dial from %q: %v", src, err)
	}
	// Reset instead of TIME_WAIT: bounded use of ephemeral ports.
	_ = c.(*net.TCPConn).SetLinger(0)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// acceptLoop runs l.Accept until it fails and hands every connection out.
func acceptLoop(t *testing.T, l *Listener) <-chan net.Conn {
	t.Helper()
	out := make(chan net.Conn, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			out <- c
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		for c := range out {
			_ = c.Close()
		}
	})
	return out
}

// requireRefused dials l from src and requires the server to close the
// connection at once: the reset may even beat the end of the handshake.
func requireRefused(t *testing.T, l net.Listener, src string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		require.ErrorIs(t, err, syscall.ECONNRESET)
		return
	}
	_ = c.(*net.TCPConn).SetLinger(0)
	defer c.Close()
	requireClosedByPeer(t, c)
}

// requireClosedByPeer waits (bounded) for c to be closed by the server.
func requireClosedByPeer(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	require.Error(t, err)
	require.False(t, errors.Is(err, errDeadline), "connection was not closed by the server")
}

var errDeadline = os.ErrDeadlineExceeded

func remote(c net.Conn) string { return c.RemoteAddr().(*net.TCPAddr).IP.String() }

func TestListenerBackpressure(t *testing.T) {
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithMaxConns(2))
	conns := acceptLoop(t, l)
	dialFrom(t, l, "")
	dialFrom(t, l, "")
	a, b := <-conns, <-conns
	dialFrom(t, l, "") // waits in the kernel backlog
	require.Never(t, func() bool { return len(conns) > 0 }, 100*time.Millisecond, 10*time.Millisecond)
	require.Equal(t, int64(2), l.Stats().Active)
	require.NoError(t, a.Close())
	require.ErrorIs(t, a.Close(), net.ErrClosed) // second Close releases nothing
	c := <-conns
	require.NotNil(t, c)
	st := l.Stats()
	require.Equal(t, int64(2), st.Active)
	require.Equal(t, uint64(3), st.Accepted)
	require.Zero(t, st.Rejected)
	_ = b.Close()
	_ = c.Close()
	require.Equal(t, int64(0), l.Stats().Active)
}

func TestListenerShed(t *testing.T) {
	var hooked []Reason
	var mu sync.Mutex
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithMaxConns(1), WithOverflow(Shed),
		WithOnRejectConn(func(a netip.Addr, r Reason) {
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, "127.0.0.1", a.String())
			hooked = append(hooked, r)
		}))
	conns := acceptLoop(t, l)
	dialFrom(t, l, "")
	held := <-conns
	requireRefused(t, l, "")
	require.Eventually(t, func() bool { return l.Stats().Rejected[GlobalConns] == 1 }, 5*time.Second, time.Millisecond)
	mu.Lock()
	require.Equal(t, []Reason{GlobalConns}, hooked)
	mu.Unlock()
	_ = held.Close()
	dialFrom(t, l, "")
	require.NotNil(t, <-conns)
}

func TestListenerPerIPIsolation(t *testing.T) {
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithMaxConnsPerIP(2), noTarpit)
	conns := acceptLoop(t, l)
	dialFrom(t, l, "127.0.0.2")
	dialFrom(t, l, "127.0.0.2")
	a := <-conns
	<-conns
	require.Equal(t, "127.0.0.2", remote(a))
	// The third from .2 is over its cap: it is reset at once and the next
	// client, from .3, is served without waiting for .2 to go away.
	requireRefused(t, l, "127.0.0.2")
	dialFrom(t, l, "127.0.0.3")
	c := <-conns
	require.Equal(t, "127.0.0.3", remote(c))
	st := l.Stats()
	require.Equal(t, uint64(1), st.Rejected[IPConns])
	require.Equal(t, uint64(3), st.Accepted)
	require.Equal(t, 2, st.TrackedIPs)
	// Closing one of .2's frees its per-IP slot.
	_ = a.Close()
	dialFrom(t, l, "127.0.0.2")
	require.Equal(t, "127.0.0.2", remote(<-conns))
}

func TestListenerPerIPRate(t *testing.T) {
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithAcceptRatePerIP(rate.Every(time.Hour), 2), noTarpit)
	conns := acceptLoop(t, l)
	for range 2 {
		dialFrom(t, l, "127.0.0.4")
		_ = (<-conns).Close()
	}
	requireRefused(t, l, "127.0.0.4")
	dialFrom(t, l, "127.0.0.5")
	require.Equal(t, "127.0.0.5", remote(<-conns))
	require.Equal(t, uint64(1), l.Stats().Rejected[IPAcceptRate])
}

func TestListenerGlobalAcceptRateShed(t *testing.T) {
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithAcceptRate(rate.Every(time.Hour), 1), WithOverflow(Shed))
	conns := acceptLoop(t, l)
	dialFrom(t, l, "")
	<-conns
	requireRefused(t, l, "")
	require.Eventually(t, func() bool { return l.Stats().Rejected[AcceptRate] == 1 }, 5*time.Second, time.Millisecond)
}

func TestListenerIPv6(t *testing.T) {
	l := newTestListener(t, "tcp6", "[::1]:0", WithMaxConnsPerIP(1), noTarpit)
	conns := acceptLoop(t, l)
	dialFrom(t, l, "")
	require.Equal(t, "::1", remote(<-conns))
	requireRefused(t, l, "")
	require.Equal(t, uint64(1), l.Stats().Rejected[IPConns])
}

func TestListenerTableFull(t *testing.T) {
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithMaxConnsPerIP(5), WithMaxTrackedIPs(1))
	conns := acceptLoop(t, l)
	// 16 slots (one probe window): 16 sources with an open connection fill
	// it; the 17th source cannot be tracked and is refused.
	for i := range 16 {
		dialFrom(t, l, netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}).String())
		<-conns
	}
	requireRefused(t, l, "127.0.1.100")
	require.Equal(t, uint64(1), l.Stats().Rejected[TableFull])
	require.Equal(t, 16, l.Stats().TrackedIPs)
}

func TestListenerCloseUnblocksAccept(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []ListenerOption
		hold bool // park Accept on the global cap first
	}{
		{"in inner Accept", nil, false},
		{"waiting for a slot", []ListenerOption{WithMaxConns(1)}, true},
		{"waiting for the rate", []ListenerOption{WithAcceptRate(rate.Every(time.Hour), 1)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestListener(t, "tcp", "127.0.0.1:0", tc.opts...)
			if tc.hold {
				dialFrom(t, l, "")
				c, err := l.Accept()
				require.NoError(t, err)
				defer c.Close()
				dialFrom(t, l, "") // would be next, but Accept cannot take it
			}
			errc := make(chan error, 1)
			go func() {
				c, err := l.Accept()
				if c != nil {
					_ = c.Close()
				}
				errc <- err
			}()
			require.NoError(t, l.Close())
			err := <-errc
			require.ErrorIs(t, err, ErrClosed)
			require.ErrorIs(t, err, net.ErrClosed)
			_, err = l.Accept()
			require.ErrorIs(t, err, ErrClosed)
			require.ErrorIs(t, l.Close(), ErrClosed)
		})
	}
}

func TestListenerConnExposesInner(t *testing.T) {
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithFirstByteTimeout(time.Minute))
	conns := acceptLoop(t, l)
	client := dialFrom(t, l, "")
	c := <-conns
	inner := c.(interface{ NetConn() net.Conn }).NetConn()
	tcp, ok := inner.(*net.TCPConn)
	require.True(t, ok)
	require.NoError(t, tcp.SetNoDelay(true))
	_, ok = c.(io.ReaderFrom)
	require.True(t, ok, "wrapper must keep the sendfile path")
	// ReadFrom passes data through.
	n, err := c.(io.ReaderFrom).ReadFrom(io.LimitReader(zeroReader{}, 10))
	require.NoError(t, err)
	require.Equal(t, int64(10), n)
	buf := make([]byte, 10)
	_, err = io.ReadFull(client, buf)
	require.NoError(t, err)
	require.Equal(t, c.LocalAddr(), l.Addr())
	// CloseWrite reaches the TCP connection: the client sees EOF.
	require.NoError(t, c.(interface{ CloseWrite() error }).CloseWrite())
	_, err = client.Read(buf)
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, c.Close())
	require.Error(t, c.Close())
	require.Equal(t, int64(0), l.Stats().Active)
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) { clear(b); return len(b), nil }

func TestListenerInnerErrorReturned(t *testing.T) {
	boom := errors.New("accept: too many open files")
	inner := &errListener{err: boom}
	l, err := NewListener(inner, WithMaxConns(1))
	require.NoError(t, err)
	for range 3 { // the slot taken before each Accept is given back
		_, err = l.Accept()
		require.ErrorIs(t, err, boom)
	}
	require.NoError(t, l.Close())
	_, err = l.Accept()
	require.ErrorIs(t, err, ErrClosed)
}

type errListener struct{ err error }

func (e *errListener) Accept() (net.Conn, error) { return nil, e.err }
func (e *errListener) Close() error              { return nil }
func (e *errListener) Addr() net.Addr            { return &net.TCPAddr{} }

func TestNewListenerValidates(t *testing.T) {
	inner := &errListener{}
	for _, opt := range []ListenerOption{
		WithMaxConns(0), WithMaxConns(maxCapacity + 1), WithMaxConnsPerIP(-1), WithIPv6Prefix(0), WithIPv6Prefix(129),
		WithAcceptRate(0, 1), WithAcceptRate(1, 0), WithAcceptRatePerIP(-1, 1),
		WithOverflow(7), WithFirstByteTimeout(0), WithMinReadRate(0, time.Second),
		WithMinReadRate(1, time.Millisecond), WithMinReadRate(1<<40, time.Hour), WithMaxTrackedIPs(0), WithOnRejectConn(nil), nil,
	} {
		_, err := NewListener(inner, opt)
		require.ErrorIs(t, err, errInvalid)
	}
	_, err := NewListener(nil)
	require.ErrorIs(t, err, errInvalid)
}

// TestListenerAccountingStress: many clients from many addresses race a
// small cap; every connection ends in exactly one accounted state, seen the
// same way by client and server.
func TestListenerAccountingStress(t *testing.T) {
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithMaxConns(4), WithOverflow(Shed), WithMaxConnsPerIP(1), noTarpit)
	var served sync.WaitGroup
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			served.Add(1)
			go func() {
				defer served.Done()
				defer c.Close()
				b := make([]byte, 1)
				if _, err := io.ReadFull(c, b); err == nil {
					_, _ = c.Write(b)
					// Hold the slot until the client hangs up.
					_, _ = io.Copy(io.Discard, c)
				}
			}()
		}
	}()
	const clients, perClient = 8, 20
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(i%4+1))}}
			// exchange reports whether a connection was served. The second
			// connection is opened while the first is still held, so when
			// the first was served the second must be refused: both
			// outcomes occur in every run.
			exchange := func() net.Conn {
				c, err := d.Dial("tcp", l.Addr().String())
				if err != nil {
					refused.Add(1) // the reset came before the handshake finished
					return nil
				}
				_ = c.(*net.TCPConn).SetLinger(0)
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				b := []byte{1}
				_, werr := c.Write(b)
				_, rerr := io.ReadFull(c, b)
				if werr == nil && rerr == nil {
					ok.Add(1)
				} else {
					refused.Add(1)
				}
				return c
			}
			for range perClient / 2 {
				first, second := exchange(), exchange()
				for _, c := range []net.Conn{first, second} {
					if c != nil {
						_ = c.Close()
					}
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(clients*perClient), ok.Load()+refused.Load())
	require.Positive(t, ok.Load())
	require.Positive(t, refused.Load())
	require.Eventually(t, func() bool {
		st := l.Stats()
		var rejected uint64
		for _, n := range st.Rejected {
			rejected += n
		}
		return st.Active == 0 && st.Accepted == uint64(ok.Load()) && rejected == uint64(refused.Load())
	}, 10*time.Second, 5*time.Millisecond, "stats %+v ok %d refused %d", l.Stats(), ok.Load(), refused.Load())
	require.NoError(t, l.Close())
	<-acceptDone
	served.Wait()
}

// chanListener is an in-memory net.Listener: Accept hands out the conns
// sent on ch, and blocks on channels only, so inside a synctest bubble a
// parked Accept is durably blocked and synctest.Wait can see it.
type chanListener struct {
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn, 1), done: make(chan struct{})}
}

func (c *chanListener) Accept() (net.Conn, error) {
	select {
	case conn := <-c.ch:
		return conn, nil
	case <-c.done:
		return nil, net.ErrClosed
	}
}

func (c *chanListener) Close() error   { c.closed.Do(func() { close(c.done) }); return nil }
func (c *chanListener) Addr() net.Addr { return &net.TCPAddr{} }

// TestListenerCloseUnblocksParkedAccept proves Accept is parked (in the
// inner Accept, on the global cap, or on the accept rate) before Close, so
// the ErrClosed comes from the wake-up and not from Close having won the
// race to the first check.
func TestListenerCloseUnblocksParkedAccept(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []ListenerOption
		hold bool
	}{
		{"in inner Accept", nil, false},
		{"in inner Accept, shed", []ListenerOption{WithOverflow(Shed)}, false},
		{"waiting for a slot", []ListenerOption{WithMaxConns(1)}, true},
		{"waiting for the rate", []ListenerOption{WithAcceptRate(rate.Every(time.Hour), 1)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				inner := newChanListener()
				l, err := NewListener(inner, tc.opts...)
				require.NoError(t, err)
				if tc.hold {
					server, client := net.Pipe()
					defer client.Close()
					inner.ch <- server
					c, err := l.Accept()
					require.NoError(t, err)
					defer c.Close()
					next, peer := net.Pipe()
					defer next.Close()
					defer peer.Close()
					inner.ch <- next // waiting, but Accept may not take it
				}
				errc := make(chan error, 1)
				go func() {
					c, err := l.Accept()
					if c != nil {
						_ = c.Close()
					}
					errc <- err
				}()
				synctest.Wait()
				select {
				case err := <-errc:
					t.Fatalf("Accept returned %v before Close", err)
				default:
				}
				require.NoError(t, l.Close())
				require.ErrorIs(t, <-errc, ErrClosed)
				held := int64(0)
				if tc.hold {
					held = 1
				}
				require.Equal(t, held, l.Stats().Active)
				require.Len(t, l.sem, int(held), "the parked Accept gave back its slot")
			})
		})
	}
}

// TestListenerFirstByteTimeoutIsOnByDefault: a Listener built without
// options closes a connection that stays silent for DefaultFirstByteTimeout,
// and WithoutFirstByteTimeout leaves such a connection open.
func TestListenerFirstByteTimeoutIsOnByDefault(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []ListenerOption
		closed bool
	}{
		{"default", nil, true},
		{"without", []ListenerOption{WithoutFirstByteTimeout()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				inner := newChanListener()
				l, err := NewListener(inner, tc.opts...)
				require.NoError(t, err)
				defer l.Close()
				server, client := net.Pipe()
				defer client.Close()
				inner.ch <- server
				c, err := l.Accept()
				require.NoError(t, err)
				defer c.Close()

				errc := make(chan error, 1)
				go func() {
					_, err := c.Read(make([]byte, 1))
					errc <- err
				}()
				time.Sleep(DefaultFirstByteTimeout - time.Millisecond)
				synctest.Wait()
				select {
				case err := <-errc:
					t.Fatalf("Read ended before the first-byte timeout: %v", err)
				default:
				}

				time.Sleep(2 * time.Millisecond)
				synctest.Wait()
				if tc.closed {
					require.ErrorIs(t, <-errc, os.ErrDeadlineExceeded)
					require.Equal(t, uint64(1), l.Stats().Rejected[SlowClient])
					return
				}
				select {
				case err := <-errc:
					t.Fatalf("Read ended with the timeout turned off: %v", err)
				default:
				}
				require.NoError(t, client.Close())
				require.Error(t, <-errc)
				require.Zero(t, l.Stats().Rejected[SlowClient])
			})
		})
	}
}
