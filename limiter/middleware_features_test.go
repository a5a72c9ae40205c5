package limiter

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

// TestRateLimitPolicyTruthful reproduces finding 7's policy half: q/w must
// describe the real sustained rate, not q=burst over a rounded-up window.
func TestRateLimitPolicyTruthful(t *testing.T) {
	for _, tc := range []struct {
		r     rate.Limit
		burst int
		want  string
	}{
		{100, 5, `"default";q=100;w=1`}, // was q=5;w=1: 5/s for a 100/s limit
		{rate.Every(12 * time.Second), 5, `"default";q=5;w=60`},
		{0.3, 1, `"default";q=3;w=10`},
		{10, 20, `"default";q=20;w=2`},
		{MaxRate, 1, `"default";q=10000;w=1`},
	} {
		k, _ := newTestKeyed(t, tc.r, tc.burst)
		w := serve(Middleware(k)(okHandler), "192.0.2.1:1")
		require.Equal(t, tc.want, w.Header().Get("RateLimit-Policy"), "rate %v burst %d", tc.r, tc.burst)
	}
	// Rates with no small exact q/w round down: a client pacing to q/w
	// never exceeds the limit.
	q, w := quotaWindow(1, 3141592653*time.Nanosecond)
	require.LessOrEqual(t, float64(q)/float64(w), 1/3.14159265358979)
	require.Positive(t, q)
}

// TestRateLimitTMatchesRetryAfter reproduces finding 7's Retry-After half:
// with burst > 1, t on a 429 was the time to a full bucket while
// Retry-After was the time to the next token.
func TestRateLimitTMatchesRetryAfter(t *testing.T) {
	k, clk := newTestKeyed(t, 1, 10)
	h := Middleware(k)(okHandler)
	for range 10 {
		require.Equal(t, http.StatusOK, serve(h, "192.0.2.1:1").Code)
	}
	clk.advance(300 * time.Millisecond)
	w := serve(h, "192.0.2.1:1")
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	require.Equal(t, `"default";r=0;t=1`, w.Header().Get("RateLimit"))
}

// TestRateLimitClampedToStructuredFields: values beyond the Structured
// Fields integer range are clamped, never sent out of range.
func TestRateLimitClampedToStructuredFields(t *testing.T) {
	f := &fakeLimiter{d: Decision{Allowed: true, Remaining: 1 << 62, Limit: 1 << 62, Window: time.Nanosecond, ResetAfter: 1 << 62}}
	w := serve(RateLimitMiddleware(f)(okHandler), "192.0.2.1:1")
	require.Equal(t, `"default";q=999999999999999;w=1`, w.Header().Get("RateLimit-Policy"))
	require.Equal(t, `"default";r=999999999999999;t=4611686019`, w.Header().Get("RateLimit"))
	require.Equal(t, int64(maxSFInteger), clampSF(1<<62))
}

// TestStackedPolicies reproduces finding 7's stacking half: a per-route
// limit inside a global one must list both policies, not keep the inner.
func TestStackedPolicies(t *testing.T) {
	global, _ := newTestKeyed(t, 100, 100)
	login, _ := newTestKeyed(t, rate.Every(12*time.Second), 5)
	mux := http.NewServeMux()
	mux.Handle("/login", Middleware(login, WithPolicyName("login"))(okHandler))
	mux.Handle("/", okHandler)
	h := Middleware(global, WithPolicyName("global"))(mux)

	r := httptest.NewRequest(http.MethodPost, "/login", nil)
	r.RemoteAddr = "192.0.2.1:1"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, []string{`"global";q=100;w=1`, `"login";q=5;w=60`}, w.Header().Values("RateLimit-Policy"))
	require.Equal(t, []string{`"global";r=99;t=1`, `"login";r=4;t=12`}, w.Header().Values("RateLimit"))

	for range 4 {
		w = httptest.NewRecorder()
		h.ServeHTTP(w, r)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, http.StatusTooManyRequests, w.Code, "the route limit applies inside the global one")
	require.Len(t, w.Header().Values("RateLimit"), 2)
	// Other routes only see the global limit.
	r2 := httptest.NewRequest(http.MethodGet, "/", nil)
	r2.RemoteAddr = "192.0.2.1:1"
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r2)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, []string{`"global";q=100;w=1`}, w.Header().Values("RateLimit-Policy"))
}

func TestProblemJSONRejection(t *testing.T) {
	k, _ := newTestKeyed(t, 1, 1)
	h := Middleware(k, WithRejectHandler(ProblemJSONRejection))(okHandler)
	serve(h, "192.0.2.1:1")
	w := serve(h, "192.0.2.1:1")
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	require.Equal(t, "Too Many Requests", body["title"])
	require.InDelta(t, 429, body["status"], 0)
	require.Equal(t, "request-rate", body["reason"])

	custom := Middleware(k, WithRejectHandler(func(w http.ResponseWriter, _ *http.Request, rej Rejection) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(rej.Status)
		_, _ = w.Write([]byte("<p>slow down</p>"))
	}))(okHandler)
	w = serve(custom, "192.0.2.1:1")
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Equal(t, "<p>slow down</p>", w.Body.String())
	require.Equal(t, "text/html", w.Header().Get("Content-Type"))
	require.NotEmpty(t, w.Header().Get("Retry-After"))
}

func TestDryRun(t *testing.T) {
	k, _ := newTestKeyed(t, 1, 2)
	var stats MiddlewareCounter
	var hooked []Decision
	h := Middleware(k, WithDryRun(), WithCounter(&stats), WithOnReject(func(_ *http.Request, d Decision, _ error) {
		hooked = append(hooked, d)
	}))(okHandler)
	for range 5 {
		w := serve(h, "192.0.2.1:1")
		require.Equal(t, http.StatusOK, w.Code)
		require.Empty(t, w.Header().Get("RateLimit"))
		require.Empty(t, w.Header().Get("Retry-After"))
	}
	require.Len(t, hooked, 3)
	require.Equal(t, MiddlewareStats{Allowed: 2, DryRunRejected: 3}, stats.Stats())
	// The decisions were real: the key's quota is spent.
	require.False(t, k.AllowAddr(netip.MustParseAddr("192.0.2.1")).Allowed)
}

func TestExemptions(t *testing.T) {
	k, _ := newTestKeyed(t, 1, 1)
	var stats MiddlewareCounter
	h := Middleware(k, WithCounter(&stats),
		WithExempt(func(r *http.Request) bool { return r.URL.Path == "/healthz" }),
		WithExemptAddrs(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::ffff:192.168.0.0/112")))(okHandler)
	for range 3 {
		r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		r.RemoteAddr = "192.0.2.1:1"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Equal(t, http.StatusOK, w.Code)
		require.Empty(t, w.Header().Get("RateLimit"))
		require.Equal(t, http.StatusOK, serve(h, "10.1.2.3:1").Code)
		require.Equal(t, http.StatusOK, serve(h, "192.168.5.5:1").Code)
	}
	require.Equal(t, http.StatusOK, serve(h, "192.0.2.1:1").Code, "exempt requests took no quota")
	require.Equal(t, http.StatusTooManyRequests, serve(h, "192.0.2.1:1").Code)
	require.Equal(t, MiddlewareStats{Allowed: 1, Rejected: 1, Exempt: 9}, stats.Stats())
}

func TestIPv6PrefixOneName(t *testing.T) {
	k, err := NewKeyed(1, 1, WithIPv6Prefix(48))
	require.NoError(t, err)
	require.True(t, k.AllowAddr(netip.MustParseAddr("2001:db8:1:2::1")).Allowed)
	require.False(t, k.AllowAddr(netip.MustParseAddr("2001:db8:1:ffff::1")).Allowed)
	_, err = NewKeyed(1, 1, WithMaxConns(3))
	require.ErrorIs(t, err, errInvalid, "a Listener option other than the prefix is refused")
	require.Panics(t, func() { RateLimitMiddleware(&fakeLimiter{}, WithMaxConns(3)) })

	f := &fakeLimiter{d: Decision{Allowed: true}}
	serve(RateLimitMiddleware(f, WithIPv6Prefix(32))(okHandler), "[2001:db8:1:2::1]:1")
	require.Equal(t, []string{"addr:2001:db8::"}, f.keys)
}

// TestKeyedWaitContextErrors reproduces finding 8: with a custom cause,
// Wait's error matched only the cause, not context.Canceled.
func TestKeyedWaitContextErrors(t *testing.T) {
	k, _ := newTestKeyed(t, rate.Every(time.Hour), 1)
	cause := errors.New("client went away")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	err := k.Wait(ctx, "a")
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, cause)
	require.True(t, k.Allow("a").Allowed, "a done ctx took quota")

	tctx, tcancel := context.WithTimeoutCause(context.Background(), time.Nanosecond, cause)
	defer tcancel()
	<-tctx.Done()
	err = k.WaitN(tctx, "b", 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, cause)

	//lint:ignore SA1012 the nil context is the point of the test
	err = k.Wait(nil, "c") //nolint:staticcheck
	require.ErrorIs(t, err, ErrNilContext)

	err = k.WaitN(context.Background(), "d", 2)
	require.ErrorIs(t, err, ErrRateLimited, "more than the burst can never pass")
}

// TestMiddlewareAccountingStress: under concurrency every request ends in
// exactly one counted outcome, and with time frozen each client is served
// exactly its burst.
func TestMiddlewareAccountingStress(t *testing.T) {
	const clients, burst, workers, perWorker = 16, 5, 8, 200
	k, _ := newTestKeyed(t, 1, burst)
	var stats MiddlewareCounter
	var served [clients]atomic.Int64
	h := Middleware(k, WithCounter(&stats), WithExempt(func(r *http.Request) bool { return r.URL.Path == "/healthz" }))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" {
				i, _ := strconv.Atoi(r.Header.Get("X-Client"))
				served[i].Add(1)
			}
		}))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				c := (i + w) % clients
				path := "/"
				if i%10 == 0 {
					path = "/healthz"
				}
				r := httptest.NewRequest(http.MethodGet, path, nil)
				r.RemoteAddr = "192.0.2." + strconv.Itoa(c+1) + ":1"
				r.Header.Set("X-Client", strconv.Itoa(c))
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
		}()
	}
	wg.Wait()
	st := stats.Stats()
	require.Equal(t, uint64(workers*perWorker), st.Allowed+st.Rejected+st.DryRunRejected+st.Exempt)
	require.Equal(t, uint64(workers*perWorker/10), st.Exempt)
	require.Equal(t, uint64(clients*burst), st.Allowed)
	for i := range served {
		require.Equal(t, int64(burst), served[i].Load(), "client %d", i)
	}
}
