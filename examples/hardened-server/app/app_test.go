package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/garrison-go/garrison/examples/internal/work"
	"github.com/garrison-go/garrison/lockorder"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newApp builds an App for a test and shuts it down at the end. Lock-order
// reports go to the returned slice instead of panicking (checking is on
// under -race).
func newApp(t *testing.T, cfg Config) (*App, *orderLog) {
	t.Helper()
	if cfg.Upstream == "" {
		cfg.Upstream = "http://127.0.0.1:1"
	}
	cfg.Logger = log.New(io.Discard, "", 0)
	a, err := New(cfg)
	require.NoError(t, err)
	ol := &orderLog{}
	restore := lockorder.SetHandler(ol.add)
	t.Cleanup(func() {
		restore()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, a.Shutdown(ctx))
	})
	return a, ol
}

type orderLog struct {
	mu      sync.Mutex
	reports []*lockorder.OrderError
}

func (o *orderLog) add(err *lockorder.OrderError) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reports = append(o.reports, err)
}

func (o *orderLog) all() []*lockorder.OrderError {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*lockorder.OrderError(nil), o.reports...)
}

// do sends one request through the full middleware chain, from addr.
func do(h http.Handler, method, target, addr string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = addr + ":1234"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func balance(t *testing.T, h http.Handler, id string) int64 {
	t.Helper()
	rec := do(h, "GET", "/accounts/"+id, "192.0.2.1")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var v struct{ Balance int64 }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v))
	return v.Balance
}

func TestTransferMovesMoney(t *testing.T) {
	a, _ := newApp(t, Config{})
	h := a.Handler()
	before := balance(t, h, "alice") + balance(t, h, "bob")
	rec := do(h, "POST", "/transfer?from=alice&to=bob&amount=7", "192.0.2.1")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	rec = do(h, "POST", "/transfer?from=bob&to=alice&amount=2", "192.0.2.1")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, int64(startBalance-5), balance(t, h, "alice"))
	assert.Equal(t, before, balance(t, h, "alice")+balance(t, h, "bob"), "money is neither made nor lost")
}

func TestHandlerErrors(t *testing.T) {
	a, _ := newApp(t, Config{})
	h := a.Handler()
	for _, tc := range []struct {
		method, target string
		code           int
		body           string
	}{
		{"GET", "/accounts/nobody", http.StatusNotFound, "no such account"},
		{"POST", "/transfer?from=alice&to=bob&amount=-1", http.StatusBadRequest, "positive integer"},
		{"POST", "/transfer?from=alice&to=bob&amount=x", http.StatusBadRequest, "positive integer"},
		{"POST", "/transfer?from=alice&to=alice&amount=1", http.StatusNotFound, "same account"},
		{"POST", "/transfer?from=alice&to=nobody&amount=1", http.StatusNotFound, "no such account"},
		{"POST", "/transfer?from=alice&to=bob&amount=1099511627777", http.StatusConflict, "insufficient funds"},
		{"POST", "/deposit?account=alice&amount=0", http.StatusBadRequest, "positive integer"},
		{"GET", "/audit?account=nobody", http.StatusNotFound, "no such account"},
		{"POST", "/jobs", http.StatusBadRequest, "tenant is required"},
		{"DELETE", "/accounts/alice", http.StatusMethodNotAllowed, ""},
	} {
		rec := do(h, tc.method, tc.target, "192.0.2.1")
		assert.Equal(t, tc.code, rec.Code, "%s %s: %s", tc.method, tc.target, rec.Body.String())
		assert.Contains(t, rec.Body.String(), tc.body, "%s %s", tc.method, tc.target)
	}
}

// TestDepositsLoseNothing is the race scenario in miniature: concurrent
// deposits with a fraud check in the middle all land in the counters.
func TestDepositsLoseNothing(t *testing.T) {
	// A generous lock timeout: this test counts lost updates, and on a
	// loaded machine under -race a 10 ms wait for carol's lock can run out.
	a, _ := newApp(t, Config{CheckPause: 100 * time.Microsecond, BurstPerIP: 10000, LockTimeout: time.Second})
	h := a.Handler()
	const workers, each = 32, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				rec := do(h, "POST", "/deposit?account=carol&amount=3", "192.0.2."+string(rune('0'+w%8)))
				assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			}
		})
	}
	wg.Wait()
	u := a.Usage()
	assert.Equal(t, int64(workers*each), u.Deposits)
	assert.Equal(t, int64(3*workers*each), u.Volume)
	assert.Equal(t, int64(startBalance+3*workers*each), balance(t, h, "carol"))
}

// TestAuditCannotHang holds the journal the way a deadlocked transfer
// would: the audit gives up after LockTimeout with 503 and says why.
func TestAuditCannotHang(t *testing.T) {
	a, _ := newApp(t, Config{LockTimeout: 20 * time.Millisecond})
	h := a.Handler()
	a.ledger.journal.mu.Lock()
	rec := do(h, "GET", "/audit?account=alice", "192.0.2.1")
	a.ledger.journal.mu.Unlock()
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Contains(t, rec.Body.String(), "journal not acquired within 20ms")
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))

	rec = do(h, "GET", "/audit?account=alice", "192.0.2.1")
	assert.Equal(t, http.StatusOK, rec.Code, "the journal is free again")
}

// TestLockOrderInversionReported runs one transfer and then one audit, one
// after the other: no deadlock can happen, yet a checking build reports
// the inversion with both classes and both call sites.
func TestLockOrderInversionReported(t *testing.T) {
	a, ol := newApp(t, Config{})
	h := a.Handler()
	require.Equal(t, http.StatusOK, do(h, "POST", "/transfer?from=alice&to=bob&amount=1", "192.0.2.1").Code)
	require.Equal(t, http.StatusOK, do(h, "GET", "/audit?account=alice", "192.0.2.1").Code)
	reports := ol.all()
	if !lockorder.Enabled() {
		assert.Empty(t, reports, "production builds do not check")
		return
	}
	require.Len(t, reports, 1)
	r := reports[0]
	assert.ErrorIs(t, r, lockorder.ErrInversion)
	text := r.Error()
	for _, want := range []string{"ledger.account", "ledger.journal", "(*ledger).transfer", "(*ledger).audit"} {
		assert.Contains(t, text, want)
	}
	// The same pair in the same order again is not news.
	require.Equal(t, http.StatusOK, do(h, "GET", "/audit?account=bob", "192.0.2.1").Code)
	assert.Len(t, ol.all(), 1)
}

// TestTransfersInBothDirectionsDoNotDeadlock: LockAll takes the two
// accounts in one global order, so opposite transfers never wait for each
// other, and checking builds see no same-class nesting.
func TestTransfersInBothDirectionsDoNotDeadlock(t *testing.T) {
	a, ol := newApp(t, Config{LockPause: 50 * time.Microsecond, BurstPerIP: 10000, LockTimeout: time.Second})
	h := a.Handler()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			target := "/transfer?from=alice&to=bob&amount=1"
			if w%2 == 1 {
				target = "/transfer?from=bob&to=alice&amount=1"
			}
			for range 20 {
				rec := do(h, "POST", target, "192.0.2.1")
				assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(2*startBalance), balance(t, h, "alice")+balance(t, h, "bob"))
	assert.Empty(t, ol.all())
}

// TestJobsCappedPerTenant: a tenant past its share gets 429 at once while
// another tenant still gets 202; Shutdown then cancels the running jobs.
func TestJobsCappedPerTenant(t *testing.T) {
	a, _ := newApp(t, Config{
		Job:           work.Job{Size: 1024, Rounds: 1, Wait: time.Hour},
		JobsPerTenant: 2,
		MaxJobs:       4,
		JobQueue:      1,
	})
	h := a.Handler()
	for range 2 {
		assert.Equal(t, http.StatusAccepted, do(h, "POST", "/jobs?tenant=mallory", "192.0.2.9").Code)
	}
	rec := do(h, "POST", "/jobs?tenant=mallory", "192.0.2.9")
	assert.Equal(t, http.StatusTooManyRequests, rec.Code)
	assert.Contains(t, rec.Body.String(), `tenant "mallory"`)
	assert.Equal(t, http.StatusAccepted, do(h, "POST", "/jobs?tenant=alice", "192.0.2.1").Code, "one tenant's flood does not starve another")
	assert.Equal(t, http.StatusAccepted, do(h, "POST", "/jobs?tenant=bob", "192.0.2.1").Code)
	// 4 running, 1 queued: full.
	assert.Equal(t, http.StatusAccepted, do(h, "POST", "/jobs?tenant=carol", "192.0.2.1").Code)
	rec = do(h, "POST", "/jobs?tenant=dave", "192.0.2.1")
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())

	st := a.Stats().Jobs
	assert.Equal(t, int64(7), st.Submitted)
	assert.Equal(t, int64(2), st.Rejected)
	assert.Equal(t, 5, st.Running+st.Queued)

	// The jobs wait an hour; Shutdown with a short grace cancels them and
	// still returns only after every one has ended (goleak checks).
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := a.Shutdown(ctx)
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	st = a.Stats().Jobs
	assert.Equal(t, 0, st.Running+st.Queued)
	assert.Equal(t, st.Submitted, st.Succeeded+st.Failed+st.Panicked+st.Rejected+st.Canceled+st.TimedOut, "every job is accounted for")
}

// TestChargeTimesOutWithItsName: a provider that never answers costs one
// budget, and the error names the operation.
func TestChargeTimesOutWithItsName(t *testing.T) {
	release := make(chan struct{})
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer provider.Close()
	defer close(release)
	a, _ := newApp(t, Config{Upstream: provider.URL, UpstreamTimeout: 30 * time.Millisecond})
	h := a.Handler()
	start := time.Now()
	rec := do(h, "POST", "/charge", "192.0.2.1")
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, http.StatusGatewayTimeout, rec.Code)
	assert.Contains(t, rec.Body.String(), chargeOp)
	st := a.Stats().Upstream
	assert.Equal(t, int64(1), st.Calls)
	assert.Equal(t, int64(1), st.Timeouts)
	assert.Contains(t, st.LastTimeout, chargeOp)
	assert.Equal(t, 0, st.Watchdog.Tracking, "the call is no longer in flight")
}

func TestChargeSucceeds(t *testing.T) {
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer provider.Close()
	a, _ := newApp(t, Config{Upstream: provider.URL})
	rec := do(a.Handler(), "POST", "/charge", "192.0.2.1")
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, int64(0), a.Stats().Upstream.Timeouts)
	a.upstream.client.CloseIdleConnections()
}

// TestRateLimitPerAddress: one address past its burst gets 429 with
// Retry-After and the RateLimit headers; another address is unaffected.
func TestRateLimitPerAddress(t *testing.T) {
	a, _ := newApp(t, Config{RatePerIP: 1, BurstPerIP: 3})
	h := a.Handler()
	for range 3 {
		assert.Equal(t, http.StatusOK, do(h, "GET", "/healthz", "192.0.2.66").Code)
	}
	rec := do(h, "GET", "/healthz", "192.0.2.66")
	assert.Equal(t, http.StatusTooManyRequests, rec.Code)
	assert.NotEmpty(t, rec.Header().Get("Retry-After"))
	assert.NotEmpty(t, rec.Header().Get("RateLimit-Policy"))
	assert.Equal(t, http.StatusOK, do(h, "GET", "/healthz", "192.0.2.1").Code)
	assert.Equal(t, int64(1), a.Stats().RateLimit.RateRejected)
}

func TestDebugGarrison(t *testing.T) {
	a, _ := newApp(t, Config{})
	rec := do(a.AdminMux(), "GET", "/debug/garrison", "192.0.2.1")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var v map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v))
	for _, k := range []string{"rate_limit", "jobs", "upstream", "lockorder", "usage"} {
		assert.Contains(t, v, k)
	}
	assert.NotContains(t, v, "listener", "no listener before Serve")
}

// TestServeDropsSilentClients serves on loopback: a client that connects
// and sends nothing is dropped after FirstByteTimeout, a legitimate request
// is served meanwhile, and Shutdown ends Serve with nil.
func TestServeDropsSilentClients(t *testing.T) {
	a, _ := newApp(t, Config{FirstByteTimeout: 100 * time.Millisecond, MaxConnsPerIP: 4})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- a.Serve(ln) }()

	var silent []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		silent = append(silent, c)
	}
	// Each silent connection is closed by the server: Read returns instead
	// of blocking until our own 10 s deadline.
	for _, c := range silent {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err := c.Read(make([]byte, 1))
		assert.Error(t, err)
		assert.False(t, errors.Is(err, context.DeadlineExceeded) || isTimeout(err), "closed by the server, not by our deadline: %v", err)
		c.Close()
	}

	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok\n", string(body))

	st := a.Stats()
	require.NotNil(t, st.Listener)
	assert.GreaterOrEqual(t, st.Listener.Accepted, uint64(5))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, a.Shutdown(ctx))
	require.NoError(t, <-served)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestBadConfigIsAnError(t *testing.T) {
	quiet := log.New(io.Discard, "", 0)
	_, err := New(Config{JobsPerTenant: -1, Logger: quiet})
	assert.ErrorContains(t, err, "spawn")
	_, err = New(Config{LockTimeout: -1, Logger: quiet})
	assert.Error(t, err)

	// Listener limits are checked when Serve wraps the listener.
	a, _ := newApp(t, Config{MaxConnsPerIP: -1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	assert.Error(t, a.Serve(ln))
}
