package siege

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRapidResetSpeaksHTTP2 runs the hand-written attacker against Go's
// own HTTP/2 server: every stream it reports written must have been parsed
// by the server as a request (the handler counts them), which proves the
// frames and the header block are valid HTTP/2, not noise the server drops.
func TestRapidResetSpeaksHTTP2(t *testing.T) {
	var handled atomic.Int64
	var paths sync.Map
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		paths.Store(r.Method+" "+r.URL.Path+" "+r.Proto, true)
	})}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv.Protocols = &p
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	defer func() {
		require.NoError(t, srv.Close())
		<-done
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const streams = 640
	res := make(chan *RapidResetStats, 1)
	go func() { res <- rapidReset(ctx, ln.Addr().String(), netip.Addr{}, 1, streams) }()
	// A reset stream may be dropped before its handler starts, so not
	// every stream reaches the handler; some must, and nothing else may.
	require.Eventually(t, func() bool { return handled.Load() > 0 }, 5*time.Second, time.Millisecond)
	cancel()
	st := <-res
	assert.LessOrEqual(t, st.Streams, int64(streams), "the budget bounds the attack")
	assert.LessOrEqual(t, handled.Load(), st.Streams, "every request the server saw was one the attacker counted")
	assert.Equal(t, int64(1), st.Conns)
	assert.Zero(t, st.DialErrors)
	paths.Range(func(k, _ any) bool {
		assert.Equal(t, "GET /accounts/alice HTTP/2.0", k)
		return true
	})
}

// TestH2Frame checks the frame header layout of RFC 9113 §4.1.
func TestH2Frame(t *testing.T) {
	f := h2Frame(nil, h2RSTStream, 0, 0x80000005, []byte{0, 0, 0, 8})
	assert.Equal(t, []byte{0, 0, 4, 3, 0, 0, 0, 0, 5, 0, 0, 0, 8}, f, "length, type, flags, stream id without its reserved bit, payload")
}

// TestBotnetHoldsAndRedials runs a small botnet against a listener that
// accepts everything and closes every connection that sent bytes: idle
// bots are held, partial and churning ones are closed and redial, and
// every dial is accounted for.
func TestBotnetHoldsAndRedials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Go(func() {
				// Close a connection as soon as it sends something.
				if _, err := c.Read(make([]byte, 1)); err == nil {
					_ = c.Close()
				}
			})
		}
	})
	defer func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	srcs := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	st := botnet(ctx, ln.Addr().String(), srcs, botnetMix, 8, 1000, 50*time.Millisecond, 20*time.Millisecond)
	assert.Equal(t, 8, st.Conns)
	assert.GreaterOrEqual(t, st.PeakHeld, int64(4))
	assert.GreaterOrEqual(t, st.HeldAtEnd, int64(4), "the 4 idle bots are still held")
	assert.Greater(t, st.ClosedByServer, int64(0), "partial bots were closed by the server")
	assert.Greater(t, st.Dials, int64(8), "closed bots redialled")
	assert.Zero(t, st.DialErrors)
}

func TestFigureBound(t *testing.T) {
	for _, tc := range []struct {
		f    Figure
		want bool
	}{
		{Figure{Naive: 100, Hardened: 99.5, Better: "higher", Bound: 99, HasBound: true}, true},
		{Figure{Naive: 100, Hardened: 98, Better: "higher", Bound: 99, HasBound: true}, false},
		{Figure{Naive: 5, Hardened: 80, Better: "lower", Bound: 100, HasBound: true}, true},
		{Figure{Naive: 500, Hardened: 120, Better: "lower", Bound: 100, HasBound: true}, false},
	} {
		tc.f.judge()
		assert.Equalf(t, tc.want, tc.f.OK, "%+v", tc.f)
	}
}
