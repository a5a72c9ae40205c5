package limiter

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// slowDependency is a handler in front of a dependency with capacity
// slots, each request taking service time once it has one.
func slowDependency(capacity int, service time.Duration) http.Handler {
	slots := make(chan struct{}, capacity)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slots <- struct{}{}
		time.Sleep(service)
		<-slots
		w.WriteHeader(http.StatusOK)
	})
}

func TestAdaptiveMiddlewareFindsTheDependencysCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, err := NewAdaptiveLimiter(1, 500)
		require.NoError(t, err)
		var mu sync.Mutex
		codes := map[int]int{}
		h := AdaptiveConcurrencyMiddleware(a, WithRetryAfter(2*time.Second))(slowDependency(8, 10*time.Millisecond))

		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
					mu.Lock()
					codes[rec.Code]++
					mu.Unlock()
					if rec.Code != http.StatusOK {
						require.Equal(t, "2", rec.Header().Get("Retry-After"))
						time.Sleep(5 * time.Millisecond)
					}
				}
			})
		}
		// Read before the first baseline probe (every 10 s by default),
		// which pins the limit to Min for a moment.
		time.Sleep(9500 * time.Millisecond)
		limit := a.Stats().Limit
		time.Sleep(500 * time.Millisecond)
		close(stop)
		wg.Wait()
		st := a.Stats()
		t.Logf("limit %d at 9.5 s; %+v %v", limit, st, codes)
		require.GreaterOrEqual(t, limit, 8, "limit below the dependency's capacity")
		require.LessOrEqual(t, limit, 32, "limit far above the dependency's capacity")
		require.Greater(t, codes[http.StatusServiceUnavailable], 0)
		require.Equal(t, uint64(codes[http.StatusServiceUnavailable]), st.RejectedNormal)
		require.Zero(t, st.InFlight)
	})
}

func TestAdaptiveMiddlewareShedsSheddableFirst(t *testing.T) {
	a, err := NewAdaptiveLimiter(10, 10, AdaptiveMaxWait(0))
	require.NoError(t, err)
	release := make(chan struct{})
	entered := make(chan struct{}, 20)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	})
	h := CriticalityMiddleware(CriticalityFromHeader("X-Criticality", Normal, netip.MustParsePrefix("10.0.0.0/8")))(
		AdaptiveConcurrencyMiddleware(a)(inner))
	serve := func(level, remote string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = remote
		if level != "" {
			req.Header.Set("X-Criticality", level)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	var wg sync.WaitGroup
	hold := func(level, remote string) {
		wg.Go(func() { serve(level, remote) })
		<-entered
	}
	for range 7 { // sheddable may fill 75 % of 10
		hold("sheddable", "10.1.2.3:5000")
	}
	require.Equal(t, http.StatusServiceUnavailable, serve("sheddable", "10.1.2.3:5000").Code)
	// An untrusted client claiming criticality is normal: 90 % of 10.
	hold("critical", "203.0.113.9:5000")
	hold("", "203.0.113.9:5000")
	require.Equal(t, http.StatusServiceUnavailable, serve("critical", "203.0.113.9:5000").Code)
	// A trusted critical caller still gets the reserved slot.
	hold("critical", "10.9.9.9:5000")
	close(release)
	wg.Wait()
	st := a.Stats()
	require.Equal(t, uint64(1), st.RejectedSheddable)
	require.Equal(t, uint64(1), st.RejectedNormal)
	require.Zero(t, st.InFlight)
}

func TestAdaptiveMiddlewareDeadlineCountsAsDropped(t *testing.T) {
	a, err := NewAdaptiveLimiter(1, 100, AdaptiveInitial(100))
	require.NoError(t, err)
	h := AdaptiveConcurrencyMiddleware(a)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	ctx, cancel2 := context.WithCancel(context.Background())
	cancel2()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	st := a.Stats()
	require.Equal(t, uint64(1), st.Dropped, "a deadline is overload; a client leaving is not")
	require.Equal(t, 90, st.Limit)
}

func TestAdaptiveLimiterRejectsBadConfig(t *testing.T) {
	for _, f := range []func() (*AdaptiveLimiter, error){
		func() (*AdaptiveLimiter, error) { return NewAdaptiveLimiter(0, 10) },
		func() (*AdaptiveLimiter, error) { return NewAdaptiveLimiter(10, 5) },
		func() (*AdaptiveLimiter, error) { return NewAdaptiveLimiter(1, 10, nil) },
		func() (*AdaptiveLimiter, error) { return NewAdaptiveLimiter(1, 10, AdaptiveTolerance(0.5)) },
		func() (*AdaptiveLimiter, error) { return NewAdaptiveLimiter(2, 10, AdaptiveInitial(1)) },
		func() (*AdaptiveLimiter, error) { return NewAdaptiveLimiter(2, 10, AdaptiveMaxWait(-1)) },
		func() (*AdaptiveLimiter, error) { return NewAdaptiveLimiter(2, 10, AdaptiveMaxWait(2*time.Second)) },
	} {
		_, err := f()
		require.Error(t, err)
	}
	require.Panics(t, func() { AdaptiveConcurrencyMiddleware(nil) })
	require.Panics(t, func() { CriticalityMiddleware(nil) })
	require.Panics(t, func() { CriticalityFromHeader("", Normal) })
}
