package app

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// /metrics serves the Prometheus text format with the names of
// contrib/prometheus, and counts what the middlewares refused.
func TestServeMetrics(t *testing.T) {
	a, _ := newApp(t, Config{RatePerIP: 1, BurstPerIP: 1})
	h := a.Handler()
	for range 3 { // past the per-IP burst
		do(h, "GET", "/accounts/alice", "192.0.2.9")
	}
	rec := httptest.NewRecorder()
	a.ServeMetrics(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "text/plain; version=0.0.4; charset=utf-8", rec.Header().Get("Content-Type"))
	body := rec.Body.String()
	assert.Contains(t, body, "# TYPE garrison_spawn_task_outcomes_total counter\n")
	assert.Contains(t, body, `garrison_keyed_tracked_keys{name="per-ip"} `)
	assert.Contains(t, body, `garrison_watchdog_stalls_total{name="upstream.charge"} 0`)
	assert.NotContains(t, body, `garrison_middleware_requests_rejected_total{name="http",reason="request-rate"} 0`)
	assert.Contains(t, body, `garrison_middleware_requests_rejected_total{name="http",reason="request-rate"} `)
	assert.Contains(t, body, `garrison_keyed_tracked_keys{name="login"} `)
	assert.Contains(t, body, `garrison_login_attempts_rejected_total{name="login"} 0`)
	assert.True(t, strings.HasSuffix(body, "\n"))
}
