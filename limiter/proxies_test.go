package limiter

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func request(remote string, header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

func TestProxiesForwarded(t *testing.T) {
	p := Proxies{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Header: Forwarded}
	for _, tc := range []struct {
		remote string
		fwd    []string
		want   string
	}{
		{"10.0.0.1:1", []string{"for=192.0.2.60;proto=http;by=203.0.113.43"}, "192.0.2.60"},
		{"10.0.0.1:1", []string{`for="[2001:db8:cafe::17]:4711"`}, "2001:db8:cafe::17"},
		{"10.0.0.1:1", []string{`For="198.51.100.1:80", for=10.0.0.7`}, "198.51.100.1"},
		{"10.0.0.1:1", []string{"for=1.1.1.1, for=198.51.100.9", "for=10.2.2.2"}, "198.51.100.9"},
		{"10.0.0.1:1", []string{`for=198.51.100.1;by="a,b", for=10.0.0.2`}, "198.51.100.1"}, // comma inside quotes
		{"10.0.0.1:1", []string{"for=unknown"}, "10.0.0.1"},                                 // not an IP: fall back
		{"10.0.0.1:1", []string{"for=_hidden, for=10.0.0.2"}, "10.0.0.1"},
		{"10.0.0.1:1", []string{"proto=https"}, "10.0.0.1"}, // no for=
		{"10.0.0.1:1", []string{"for=1.1.1.1;for=2.2.2.2"}, "10.0.0.1"},
		{"10.0.0.1:1", []string{`for="1.1.1.1`}, "10.0.0.1"},
		{"10.0.0.1:1", nil, "10.0.0.1"},
		{"192.0.2.1:1", []string{"for=198.51.100.1"}, "192.0.2.1"}, // untrusted peer
	} {
		r := request(tc.remote)
		for _, v := range tc.fwd {
			r.Header.Add("Forwarded", v)
		}
		r.Header.Set("X-Forwarded-For", "203.0.113.200") // not the configured header: ignored
		require.Equal(t, tc.want, p.ClientAddr(r).String(), "%q", tc.fwd)
	}
	r := request("10.0.0.1:1", "Forwarded", `for="[2001:db8::1]:1";proto=https, for=10.0.0.2`)
	require.Zero(t, testing.AllocsPerRun(100, func() { p.ClientAddr(r) }))
}

func TestProxiesXRealIP(t *testing.T) {
	p := Proxies{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Header: XRealIP}
	require.Equal(t, "198.51.100.1", p.ClientAddr(request("10.0.0.1:1", "X-Real-IP", "198.51.100.1")).String())
	require.Equal(t, "10.0.0.1", p.ClientAddr(request("10.0.0.1:1", "X-Real-IP", "198.51.100.1, 1.1.1.1")).String())
	require.Equal(t, "10.0.0.1", p.ClientAddr(request("10.0.0.1:1", "X-Real-IP", "a", "X-Real-IP", "b")).String())
	require.Equal(t, "10.0.0.1", p.ClientAddr(request("10.0.0.1:1", "X-Real-IP", "garbage")).String())
	require.Equal(t, "192.0.2.9", p.ClientAddr(request("192.0.2.9:1", "X-Real-IP", "198.51.100.1")).String())
}

func TestProxiesHops(t *testing.T) {
	p := Proxies{Hops: 2}
	// The peer and the rightmost entry are the two trusted proxies.
	require.Equal(t, "198.51.100.7", p.ClientAddr(request("203.0.113.1:1", "X-Forwarded-For", "6.6.6.6, 198.51.100.7, 203.0.113.2")).String())
	// Too few hops: the chain is not what was promised, fall back to the
	// leftmost, which only trusted proxies wrote.
	require.Equal(t, "203.0.113.2", p.ClientAddr(request("203.0.113.1:1", "X-Forwarded-For", "203.0.113.2")).String())
	one := Proxies{Hops: 1}
	require.Equal(t, "203.0.113.2", one.ClientAddr(request("203.0.113.1:1", "X-Forwarded-For", "6.6.6.6, 203.0.113.2")).String())
}

func TestProxiesNonIPPeer(t *testing.T) {
	for _, remote := range []string{"@", "", "/run/proxy.sock"} {
		r := request(remote, "X-Forwarded-For", "198.51.100.1")
		require.False(t, (&Proxies{}).ClientAddr(r).IsValid(), "untrusted non-IP peer")
		p := Proxies{TrustNonIP: true}
		require.Equal(t, "198.51.100.1", p.ClientAddr(r).String(), "%q", remote)
	}
	// An IP peer is not trusted by TrustNonIP.
	p := Proxies{TrustNonIP: true}
	require.Equal(t, "192.0.2.1", p.ClientAddr(request("192.0.2.1:1", "X-Forwarded-For", "198.51.100.1")).String())
}

// TestUnixSocketProxy reproduces finding 3 end to end: a reverse proxy
// connecting over a Unix socket gives every request RemoteAddr "@", so
// before WithTrustNonIPPeers every client shared one bucket.
func TestUnixSocketProxy(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "app.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	k, err := NewKeyed(1e-3, 1)
	require.NoError(t, err)
	app := &http.Server{Handler: Middleware(k, WithTrustNonIPPeers())(okHandler), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- app.Serve(ln) }()
	t.Cleanup(func() {
		require.NoError(t, app.Shutdown(context.Background()))
		require.ErrorIs(t, <-done, http.ErrServerClosed)
	})

	// The proxy: accepts TCP clients, forwards over the socket, appends the
	// client's address to X-Forwarded-For as nginx or HAProxy would.
	upstream := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	t.Cleanup(upstream.CloseIdleConnections)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://app"+r.URL.Path, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		// Each test client claims its address in a header the proxy
		// trusts on its own side; the proxy writes it as the client IP.
		out.Header.Set("X-Forwarded-For", r.Header.Get("X-Test-Client"))
		resp, err := upstream.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(proxy.Close)

	get := func(client string) int {
		req, err := http.NewRequest(http.MethodGet, proxy.URL, nil)
		require.NoError(t, err)
		req.Header.Set("X-Test-Client", client)
		resp, err := proxy.Client().Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, get("198.51.100.1"))
	require.Equal(t, http.StatusTooManyRequests, get("198.51.100.1"))
	require.Equal(t, http.StatusOK, get("198.51.100.2"), "clients behind the Unix-socket proxy share one bucket")
	require.Equal(t, http.StatusOK, get("198.51.100.3"))
}

// TestKeySpacesDisjoint reproduces finding 4: with a RateLimiter other
// than *Keyed, a WithKeyFunc value spelling "addr:<ip>" landed in that
// address's fallback bucket.
func TestKeySpacesDisjoint(t *testing.T) {
	f := &fakeLimiter{d: Decision{Allowed: true, Limit: 1, Window: time.Second}}
	h := RateLimitMiddleware(f, WithKeyFunc(func(r *http.Request) (string, error) {
		if v := r.Header.Get("X-User"); v != "" {
			return v, nil
		}
		return "", errors.New("anonymous")
	}))(okHandler)
	h.ServeHTTP(httptest.NewRecorder(), request("203.0.113.7:1", "X-User", "addr:203.0.113.7"))
	h.ServeHTTP(httptest.NewRecorder(), request("203.0.113.7:1"))
	require.Len(t, f.keys, 2)
	require.NotEqual(t, f.keys[0], f.keys[1])
	require.Equal(t, "key:addr:203.0.113.7", f.keys[0])
	require.Equal(t, "addr:203.0.113.7", f.keys[1])
	for _, k := range f.keys {
		require.True(t, strings.HasPrefix(k, "key:") != strings.HasPrefix(k, "addr:"))
	}
}
