package limiter

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/garrison-go/garrison/internal/ctxerr"
	"github.com/stretchr/testify/require"
)

// loadGauge is a probe whose load a test sets.
type loadGauge struct{ bits atomic.Uint64 }

func (g *loadGauge) set(v float64) { g.bits.Store(math.Float64bits(v)) }
func (g *loadGauge) load() float64 { return math.Float64frombits(g.bits.Load()) }

func TestReadinessHysteresis(t *testing.T) {
	var queue, inflight loadGauge
	r, err := NewReadiness([]LoadProbe{{"queue", queue.load}, {"inflight", inflight.load}}, WithMinUnready(0), WithMinOverload(0))
	require.NoError(t, err)

	steps := []struct {
		queue, inflight float64
		ready           bool
		cause           string
		weight          int
	}{
		{0.1, 0.2, true, "inflight", 100},
		{0.8, 0.2, true, "queue", 55},   // between the marks: still ready, weight falls
		{0.95, 0.2, false, "queue", 10}, // high mark: unready
		{0.8, 0.85, false, "inflight", 33},
		{0.6, 0.75, false, "inflight", 77}, // 77.5 less float error // above low: stays unready
		{0.6, 0.7, true, "inflight", 100},  // every load at or under low: ready
		{math.NaN(), -1, true, "queue", 100},
	}
	for i, s := range steps {
		queue.set(s.queue)
		inflight.set(s.inflight)
		got := r.Check()
		require.Equal(t, s.ready, got.Ready, "step %d: %+v", i, got)
		require.Equal(t, s.cause, got.Cause, "step %d", i)
		require.Equal(t, s.weight, r.Weight(got), "step %d", i)
	}
	st := r.Stats()
	require.Equal(t, uint64(1), st.BecameUnready)
	require.Equal(t, uint64(1), st.BecameReady)
	require.True(t, st.Ready)
}

func TestReadinessHandlerAndAgent(t *testing.T) {
	var g loadGauge
	r, err := NewReadiness([]LoadProbe{{"queue", g.load}}, WithHysteresis(0.5, 0.25), WithMinUnready(0), WithMinOverload(0))
	require.NoError(t, err)

	probe := func() (int, map[string]any) {
		rec := httptest.NewRecorder()
		r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
		var body map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		return rec.Code, body
	}
	code, body := probe()
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, true, body["ready"])

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.ServeAgent(ctx, ln) }()
	ask := func() string {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		_, _ = c.Write([]byte("be_web/srv1\n")) // agent-send, ignored
		line, err := bufio.NewReader(c).ReadString('\n')
		require.NoError(t, err)
		return line
	}
	require.Equal(t, "ready 100%\n", ask())

	g.set(0.9)
	code, body = probe()
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "queue", body["cause"])
	require.Equal(t, "drain\n", ask())

	g.set(0.3) // above low: still draining
	require.Equal(t, "drain\n", ask())
	g.set(0.2)
	require.Equal(t, "ready 100%\n", ask())

	cancel()
	require.NoError(t, <-done)
	require.Equal(t, uint64(4), r.Stats().AgentAnswers)
}

func TestReadinessRejectsBadInput(t *testing.T) {
	ok := []LoadProbe{{"q", func() float64 { return 0 }}}
	for _, tc := range []struct {
		probes []LoadProbe
		opts   []ReadinessOption
	}{
		{nil, nil},
		{[]LoadProbe{{"", func() float64 { return 0 }}}, nil},
		{[]LoadProbe{{"q", nil}}, nil},
		{ok, []ReadinessOption{nil}},
		{ok, []ReadinessOption{WithHysteresis(0.5, 0.5)}},
		{ok, []ReadinessOption{WithHysteresis(0.5, 0)}},
		{ok, []ReadinessOption{WithHysteresis(math.Inf(1), 0.5)}},
		{ok, []ReadinessOption{WithMinUnready(-time.Second)}},
		{ok, []ReadinessOption{WithMinOverload(-time.Second)}},
	} {
		_, err := NewReadiness(tc.probes, tc.opts...)
		require.Error(t, err)
	}
	r, err := NewReadiness(ok)
	require.NoError(t, err)
	//lint:ignore SA1012 a nil context is the input under test
	require.ErrorIs(t, r.ServeAgent(nil, nil), ctxerr.ErrNilContext) //nolint:staticcheck
	require.Error(t, r.ServeAgent(context.Background(), nil))
}

func TestReadinessHoldsUnready(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g loadGauge
		r, err := NewReadiness([]LoadProbe{{"queue", g.load}}, WithMinUnready(2*time.Second))
		require.NoError(t, err)
		g.set(1)
		require.True(t, r.Check().Ready, "one check at the high mark is a burst")
		time.Sleep(500 * time.Millisecond)
		g.set(0.5)
		require.True(t, r.Check().Ready)
		g.set(1)
		require.True(t, r.Check().Ready, "the overload restarted: its second has not passed")
		time.Sleep(999 * time.Millisecond)
		require.True(t, r.Check().Ready)
		time.Sleep(time.Millisecond)
		require.False(t, r.Check().Ready, "a second at the high mark is overload")
		g.set(0) // drained: no traffic, no load
		time.Sleep(1999 * time.Millisecond)
		require.False(t, r.Check().Ready, "ready again within the hold")
		time.Sleep(time.Millisecond)
		require.True(t, r.Check().Ready)
	})
}
