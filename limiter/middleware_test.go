package limiter

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	_, _ = w.Write([]byte("ok"))
})

func serve(h http.Handler, remote string, xff ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestMiddlewareHeaders(t *testing.T) {
	k, clk := newTestKeyed(t, 0.5, 3) // 2 s per token: w=6
	h := Middleware(k)(okHandler)

	for i, want := range []string{`"default";r=2;t=2`, `"default";r=1;t=4`, `"default";r=0;t=6`} {
		w := serve(h, "192.0.2.1:1234")
		require.Equal(t, http.StatusOK, w.Code, i)
		require.Equal(t, `"default";q=3;w=6`, w.Header().Get("RateLimit-Policy"))
		require.Equal(t, want, w.Header().Get("RateLimit"))
		require.Empty(t, w.Header().Get("Retry-After"))
	}
	clk.advance(500 * time.Millisecond)
	w := serve(h, "192.0.2.1:1234")
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Equal(t, "2", w.Header().Get("Retry-After"))               // 1.5 s rounded up
	require.Equal(t, `"default";r=0;t=2`, w.Header().Get("RateLimit")) // t agrees with Retry-After on a 429
	require.Equal(t, `"default";q=3;w=6`, w.Header().Get("RateLimit-Policy"))
	require.Equal(t, "Too Many Requests\n", w.Body.String())

	// Another client is unaffected.
	require.Equal(t, http.StatusOK, serve(h, "192.0.2.2:1234").Code)
}

func TestMiddlewareRetryAfterAtLeastOne(t *testing.T) {
	k, _ := newTestKeyed(t, 1000, 1) // 1 ms per token
	h := Middleware(k, WithPolicyName("api"))(okHandler)
	require.Equal(t, http.StatusOK, serve(h, "192.0.2.1:1").Code)
	w := serve(h, "192.0.2.1:1")
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	require.Equal(t, `"api";q=1000;w=1`, w.Header().Get("RateLimit-Policy")) // the rate, not the burst
}

func TestMiddlewareIgnoresForwardedForByDefault(t *testing.T) {
	k, _ := newTestKeyed(t, 1, 1)
	h := Middleware(k)(okHandler)
	require.Equal(t, http.StatusOK, serve(h, "192.0.2.1:1", "203.0.113.1").Code)
	// A new X-Forwarded-For value does not buy a new bucket.
	require.Equal(t, http.StatusTooManyRequests, serve(h, "192.0.2.1:1", "203.0.113.2").Code)
}

func TestMiddlewareTrustedProxies(t *testing.T) {
	k, _ := newTestKeyed(t, 1, 1)
	proxies := WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::ffff:172.16.0.0/108"))
	h := Middleware(k, proxies)(okHandler)

	// Client 198.51.100.7 behind two trusted proxies; the leftmost entry is
	// what the client wrote itself.
	require.Equal(t, http.StatusOK, serve(h, "10.0.0.1:1", "1.1.1.1, 198.51.100.7, 10.0.0.2").Code)
	require.Equal(t, http.StatusTooManyRequests, serve(h, "10.0.0.1:1", "2.2.2.2, 198.51.100.7, 10.0.0.2").Code)
	// Split over two header lines, and through the mapped-prefix proxy.
	require.Equal(t, http.StatusTooManyRequests, serve(h, "172.16.0.9:1", "198.51.100.7", "10.0.0.2").Code)
	// A direct client cannot use the header at all.
	require.Equal(t, http.StatusOK, serve(h, "198.51.100.8:1", "203.0.113.99").Code)
	require.Equal(t, http.StatusTooManyRequests, serve(h, "198.51.100.8:1", "203.0.113.100").Code)
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	for _, tc := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:80", nil, "192.0.2.1"},
		{"192.0.2.1:80", []string{"9.9.9.9"}, "192.0.2.1"},
		{"[2001:db8::1]:80", []string{"198.51.100.1"}, "198.51.100.1"},
		{"10.0.0.1:80", []string{"198.51.100.1, 10.1.1.1"}, "198.51.100.1"},
		{"10.0.0.1:80", []string{"198.51.100.1 ,\t10.1.1.1 "}, "198.51.100.1"},
		{"10.0.0.1:80", []string{"[2001:db9::1]:443"}, "2001:db9::1"},
		{"10.0.0.1:80", []string{"198.51.100.1:5555"}, "198.51.100.1"},
		{"10.0.0.1:80", []string{"[2001:db9::2]"}, "2001:db9::2"},
		{"10.0.0.1:80", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
		{"10.0.0.1:80", []string{"fe80::1%eth0"}, "fe80::1"},
		{"10.0.0.1:80", []string{"10.0.0.2, 10.0.0.3"}, "10.0.0.2"},                         // all trusted: leftmost
		{"10.0.0.1:80", []string{"198.51.100.1, garbage, 10.0.0.2"}, "10.0.0.1"},            // malformed: fall back
		{"10.0.0.1:80", []string{"198.51.100.1,,10.0.0.2"}, "10.0.0.1"},                     // empty hop
		{"10.0.0.1:80", []string{""}, "10.0.0.1"},                                           // empty header
		{"10.0.0.1:80", []string{"unknown"}, "10.0.0.1"},                                    // RFC 7239 obfuscation
		{"10.0.0.1:80", []string{strings.Repeat("10.0.0.5,", 40) + "10.0.0.5"}, "10.0.0.1"}, // too long
		{"[::ffff:10.0.0.1]:80", []string{"198.51.100.1"}, "198.51.100.1"},
		{"@", []string{"198.51.100.1"}, "invalid IP"},
		{"", nil, "invalid IP"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		require.Equal(t, tc.want, ClientAddr(r, trusted...).String(), "%q %q", tc.remote, tc.xff)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.1:80"
	r.Header.Set("X-Forwarded-For", "198.51.100.1, 10.0.0.2")
	require.Zero(t, testing.AllocsPerRun(100, func() { ClientAddr(r, trusted...) }))
}

// FuzzForwardedFor: whatever the headers hold, ClientAddr never panics and
// returns either the connection's address or a header entry that only
// trusted, well-formed hops follow: the client cannot choose its own key.
func FuzzForwardedFor(f *testing.F) {
	f.Add("10.0.0.1:80", "198.51.100.1, 10.0.0.2", "")
	f.Add("10.0.0.1:80", "[2001:db8::1]:1, ,", "1.2.3.4")
	f.Add("192.0.2.1:5", "1.1.1.1", "")
	f.Add("[::1]:1", "::ffff:10.1.2.3%x, 10.0.0.1", "garbage,")
	f.Add("10.255.255.255:1", "10.0.0.1,10.0.0.2,[10.0.0.3],", "[]")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	f.Fuzz(func(t *testing.T, remote, xff1, xff2 string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		r.Header["X-Forwarded-For"] = []string{xff1, xff2}
		got := ClientAddr(r, trusted...)
		direct := ClientAddr(r)
		require.Equal(t, parseHop(remote), direct)
		if got == direct {
			return
		}
		require.True(t, trustedAny(direct, trusted), "header read for untrusted peer %v", direct)
		require.Equal(t, got, got.Unmap().WithZone(""))
		hops := strings.Split(xff1+","+xff2, ",")
		found := false
		for i := len(hops) - 1; i >= 0 && !found; i-- {
			a := parseHop(strings.Trim(hops[i], " \t"))
			if a == got {
				found = true
				break
			}
			require.True(t, a.IsValid() && trustedAny(a, trusted), "untrusted or malformed hop %q right of the key", hops[i])
		}
		require.True(t, found, "key %v is not in the header", got)
	})
}

func trustedAny(a netip.Addr, ps []netip.Prefix) bool { return trusted(a, ps) }

// FuzzKeyFunc: with a key function that may fail, every request gets a
// decision (never a panic, never an unlimited pass): a client that makes
// the key function fail is limited by address.
func FuzzKeyFunc(f *testing.F) {
	f.Add("user-1", "192.0.2.1:1", false)
	f.Add("", "[2001:db8::1]:80", true)
	f.Add("\x00\xff", "not an address", true)
	f.Fuzz(func(t *testing.T, key, remote string, fail bool) {
		k, _ := newTestKeyed(t, 1, 1)
		h := Middleware(k, WithKeyFunc(func(*http.Request) (string, error) {
			if fail {
				return "", errors.New("no identity")
			}
			return key, nil
		}))(okHandler)
		first := serve(h, remote)
		second := serve(h, remote)
		require.Equal(t, http.StatusOK, first.Code)
		require.Equal(t, http.StatusTooManyRequests, second.Code)
		require.NotEmpty(t, second.Header().Get("Retry-After"))
		for _, v := range second.Header() {
			for _, s := range v {
				require.NotContains(t, s, "\n")
			}
		}
	})
}

// fakeLimiter returns a fixed decision and error, like a store that is down.
type fakeLimiter struct {
	d    Decision
	err  error
	keys []string
	mu   sync.Mutex
}

func (f *fakeLimiter) AllowContext(_ context.Context, key string) (Decision, error) {
	f.mu.Lock()
	f.keys = append(f.keys, key)
	f.mu.Unlock()
	return f.d, f.err
}

func TestRateLimitMiddlewareErrors(t *testing.T) {
	down := errors.New("store down")

	open := &fakeLimiter{d: Decision{Allowed: true}, err: down}
	require.Equal(t, http.StatusOK, serve(RateLimitMiddleware(open)(okHandler), "192.0.2.1:1").Code)

	var hooked error
	closed := &fakeLimiter{d: Decision{RetryAfter: 2500 * time.Millisecond, Reason: RequestRate}, err: down}
	h := RateLimitMiddleware(closed, WithOnReject(func(_ *http.Request, _ Decision, err error) { hooked = err }))(okHandler)
	w := serve(h, "192.0.2.1:1")
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, "3", w.Header().Get("Retry-After"))
	require.Empty(t, w.Header().Get("RateLimit")) // no quota known
	require.ErrorIs(t, hooked, down)

	denied := &fakeLimiter{d: Decision{Reason: RequestRate, Limit: 5, Window: time.Minute, ResetAfter: time.Minute}}
	w = serve(RateLimitMiddleware(denied, WithIPv6Prefix(48))(okHandler), "[2001:db8:1:2::1]:1")
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	require.Equal(t, []string{"addr:2001:db8:1::"}, denied.keys)
}

func TestMiddlewarePanicsOnBadOptions(t *testing.T) {
	k, _ := newTestKeyed(t, 1, 1)
	require.Panics(t, func() { Middleware(nil) })
	require.Panics(t, func() { RateLimitMiddleware(nil) })
	require.Panics(t, func() { Middleware(k, WithTrustedProxies(netip.Prefix{})) })
	require.Panics(t, func() { Middleware(k, WithKeyFunc(nil)) })
	require.Panics(t, func() { Middleware(k, WithIPv6Prefix(0)) })
	require.Panics(t, func() { Middleware(k, WithPolicyName(`a"b`)) })
	require.Panics(t, func() { Middleware(k, WithPolicyName("")) })
	require.Panics(t, func() { Middleware(k, nil) })
	require.Panics(t, func() { ConcurrencyMiddleware(0) })
	require.Panics(t, func() { ConcurrencyMiddleware(1, WithRetryAfter(0)) })
	require.Panics(t, func() { ConcurrencyMiddleware(1, WithOnReject(nil)) })
}

func TestConcurrencyMiddleware(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	slow := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
	})
	var reasons []Reason
	h := ConcurrencyMiddleware(2, WithRetryAfter(1500*time.Millisecond), WithOnReject(func(_ *http.Request, d Decision, _ error) {
		reasons = append(reasons, d.Reason)
	}))(slow)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serve(h, "192.0.2.1:1")
		}()
	}
	<-entered
	<-entered
	w := serve(h, "192.0.2.1:1") // must not block
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, "2", w.Header().Get("Retry-After"))
	require.Equal(t, []Reason{Concurrency}, reasons)
	close(release)
	wg.Wait()
	// Slots came back.
	ok := ConcurrencyMiddleware(1)(okHandler)
	require.Equal(t, http.StatusOK, serve(ok, "x").Code)
	require.Equal(t, http.StatusOK, serve(ok, "x").Code)
}

func TestConcurrencyMiddlewareReleasesOnPanic(t *testing.T) {
	calls := 0
	h := ConcurrencyMiddleware(1)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls++; calls <= 3 {
			panic("boom")
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	for range 3 {
		require.Panics(t, func() { serve(h, "x") })
	}
	// A leaked slot would turn this into a 503.
	require.Equal(t, http.StatusNoContent, serve(h, "x").Code)
}

func TestMiddlewareNeverEchoesRequest(t *testing.T) {
	const marker = "zz-marker-7f3a"
	k, _ := newTestKeyed(t, 1, 1)
	h := Middleware(k, WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")))(okHandler)
	for _, want := range []int{http.StatusOK, http.StatusTooManyRequests} {
		r := httptest.NewRequest(http.MethodGet, "/"+marker, nil)
		r.RemoteAddr = "10.0.0.1:1"
		r.Header.Set("X-Forwarded-For", marker+", 198.51.100.1")
		r.Header.Set("X-Request-Id", marker)
		r.Header.Set("User-Agent", marker)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Equal(t, want, w.Code)
		for name, vs := range w.Header() {
			for _, v := range vs {
				require.NotContains(t, v, marker, name)
			}
		}
		require.NotContains(t, w.Body.String(), marker)
	}
}
