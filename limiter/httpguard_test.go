package limiter

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// pipeServer serves h on an in-memory listener guarded by opts, wired with
// Harden when wired is set, and returns a client whose connections come
// from src (a counter of dials alongside). For use inside a synctest bubble.
func pipeServer(t *testing.T, wired bool, src string, h http.Handler, opts ...ListenerOption) (*Listener, *http.Client, *atomic.Int64) {
	t.Helper()
	inner := newChanListener()
	l, err := NewListener(inner, opts...)
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	if wired {
		_, err = l.Harden(srv)
		require.NoError(t, err)
	} else {
		HardenServer(srv)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	var dials atomic.Int64
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		dials.Add(1)
		return pipeFrom(inner, src), nil
	}}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		require.NoError(t, srv.Close())
		require.ErrorIs(t, <-served, http.ErrServerClosed)
	})
	return l, &http.Client{Transport: tr}, &dials
}

func get(t *testing.T, c *http.Client, path string) (string, error) {
	t.Helper()
	resp, err := c.Get("http://x" + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestKeepAliveIdleIsNotSlow: a keep-alive client at one request per
// second, idle longer than the read-rate window each time, is never reset
// when the server is wired with Harden; unwired, the same guard resets its
// idle connection (the bug of issue 11).
func TestKeepAliveIdleIsNotSlow(t *testing.T) {
	for _, wired := range []bool{true, false} {
		t.Run(map[bool]string{true: "wired", false: "unwired"}[wired], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
				l, client, dials := pipeServer(t, wired, "10.1.0.1", h, WithOverflow(Preempt),
					WithFirstByteTimeout(time.Second), WithMinReadRate(256, 500*time.Millisecond))
				for range 12 {
					body, err := get(t, client, "/")
					require.NoError(t, err)
					require.Equal(t, "ok", body)
					time.Sleep(time.Second)
				}
				st := l.Stats()
				if wired {
					require.Equal(t, int64(1), dials.Load(), "one keep-alive connection for every request")
					require.Zero(t, st.Rejected.Total(), "%v", st.Rejected.Map())
				} else {
					require.Greater(t, dials.Load(), int64(1))
					require.Positive(t, st.Rejected[SlowClient])
				}
			})
		})
	}
}

// TestPartialRequestStillSlow: wired, a client trickling its request head
// is still cut by the read-rate guard, and so is a second request on a
// keep-alive connection trickled after an idle pause.
func TestPartialRequestStillSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := newChanListener()
		l, err := NewListener(inner, WithOverflow(Preempt), WithMinReadRate(100, time.Second))
		require.NoError(t, err)
		srv, err := l.Harden(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})})
		require.NoError(t, err)
		srv.ReadHeaderTimeout = time.Hour // only the guard may cut
		srv.IdleTimeout = time.Hour
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()

		c := pipeFrom(inner, "10.1.0.2")
		defer c.Close()
		go func() { _, _ = io.Copy(io.Discard, c) }()
		_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		time.Sleep(10 * time.Second) // idle: not judged
		synctest.Wait()
		require.Zero(t, l.Stats().Rejected[SlowClient])
		for i := 0; err == nil && i < 20; i++ {
			_, err = io.WriteString(c, "G") // 1 B/s, below 100 B/s
			time.Sleep(time.Second)
		}
		require.Error(t, err, "the trickled request head was cut")
		require.Equal(t, uint64(1), l.Stats().Rejected[SlowClient])
	})
}

// TestSlowDownload: a response taken at 32 KiB/s is served whole under a
// 1 KiB/s minimum write rate (and the read guard leaves it alone while the
// handler runs); one taken at 100 B/s is cut as SlowWrite.
func TestSlowDownload(t *testing.T) {
	const size = 256 << 10
	for _, tc := range []struct {
		name   string
		perSec int
		cut    bool
	}{{"honest", 32 << 10, false}, {"slow-read", 100, true}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				inner := newChanListener()
				l, err := NewListener(inner, WithOverflow(Preempt), WithMinReadRate(256, time.Second),
					WithMinWriteRate(1<<10, 2*time.Second))
				require.NoError(t, err)
				payload := strings.Repeat("x", size)
				srv, err := l.Harden(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					_, _ = io.WriteString(w, payload)
				})})
				require.NoError(t, err)
				require.Zero(t, srv.WriteTimeout, "the write rate governs downloads")
				go func() { _ = srv.Serve(l) }()
				defer srv.Close()
				c := pipeFrom(inner, "10.1.0.3")
				defer c.Close()
				_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				require.NoError(t, err)
				got := 0
				buf := make([]byte, tc.perSec/10)
				for got <= size {
					n, err := c.Read(buf)
					got += n
					if err != nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				st := l.Stats()
				if tc.cut {
					require.Less(t, got, size/4)
					require.Equal(t, uint64(1), st.Rejected[SlowWrite])
				} else {
					require.Greater(t, got, size, "headers and the whole body")
					require.Zero(t, st.Rejected.Total(), "%v", st.Rejected.Map())
				}
			})
		})
	}
}

// TestH2IdleIsNotSlow: an HTTP/2 (h2c) client idle between requests, whose
// connection still carries control frames (SETTINGS acks, WINDOW_UPDATEs),
// is never cut by the read-rate guard.
func TestH2IdleIsNotSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := newChanListener()
		l, err := NewListener(inner, WithOverflow(Preempt), WithMinReadRate(256, 500*time.Millisecond))
		require.NoError(t, err)
		srv, err := l.Harden(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, r.Proto+" "+strings.Repeat("x", 100<<10))
		})})
		require.NoError(t, err)
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetUnencryptedHTTP2(true)
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l) }()
		var dials atomic.Int64
		tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
			dials.Add(1)
			return pipeFrom(inner, "10.1.0.9"), nil
		}}
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
		client := &http.Client{Transport: tr}
		for range 5 {
			body, err := get(t, client, "/")
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(body, "HTTP/2.0 "), body[:min(len(body), 20)])
			time.Sleep(2 * time.Second)
		}
		require.Equal(t, int64(1), dials.Load())
		require.Zero(t, l.Stats().Rejected.Total(), "%v", l.Stats().Rejected.Map())
		tr.CloseIdleConnections()
		require.NoError(t, srv.Close())
		require.ErrorIs(t, <-served, http.ErrServerClosed)
	})
}
