package redisstore

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/limiter"
)

// TestMiddlewareSwap checks that the HTTP middleware takes a Limiter where
// it takes a *limiter.Keyed, with the same statuses and headers.
func TestMiddlewareSwap(t *testing.T) {
	c := newClient(t, sharedAddr(t))
	l := newTestLimiter(t, c, 1.0/60, 2)
	h := limiter.RateLimitMiddleware(l)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	serve := func(remote string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	require.Equal(t, http.StatusNoContent, serve("192.0.2.1:1000").Code)
	rec := serve("192.0.2.1:1001")
	require.Equal(t, http.StatusNoContent, rec.Code)
	require.Equal(t, `"default";q=2;w=120`, rec.Header().Get("RateLimit-Policy"))
	rec = serve("192.0.2.1:1002")
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.NotEmpty(t, rec.Header().Get("Retry-After"))
	require.Equal(t, http.StatusNoContent, serve("192.0.2.2:1000").Code, "another client has its own budget")
	st := l.Stats()
	require.Equal(t, uint64(3), st.Allowed)
	require.Equal(t, uint64(1), st.Denied)
}

// TestMiddlewareDuringOutage: with FailClosed and Redis gone, the
// middleware answers 503 (the limit could not be checked), not 429.
func TestMiddlewareDuringOutage(t *testing.T) {
	srv := startServer(t)
	c := newClient(t, srv.addr)
	l, err := New(c, 1, 5, WithPrefix(uniquePrefix(t)), WithTimeout(50*time.Millisecond), WithFailPolicy(FailClosed))
	require.NoError(t, err)
	srv.kill()
	h := limiter.RateLimitMiddleware(l)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	require.Equal(t, uint64(1), l.Stats().FallbackDecisions)
}
