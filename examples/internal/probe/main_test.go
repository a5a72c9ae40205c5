package main

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestProbeCountsEveryRequest checks that each request ends in exactly one
// bucket: served, or a failure with its reason.
func TestProbeCountsEveryRequest(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	r, err := probe(srv.URL, "127.0.0.1", 10*time.Millisecond, time.Second, 300*time.Millisecond)
	require.NoError(t, err)
	require.Positive(t, r.n)
	assert.Equal(t, int(n.Load()), r.n, "every request sent reached the server once")
	assert.Equal(t, r.n, r.ok+r.failures["status 503"])
	assert.InDelta(t, 50, r.pct(), 10)
	assert.Len(t, r.lat, r.n)
	assert.Contains(t, r.line("legit"), "legit: ")
}

func TestProbeRejectsBadSource(t *testing.T) {
	_, err := probe("http://127.0.0.1:1/", "not-an-ip", time.Millisecond, time.Millisecond, time.Millisecond)
	assert.ErrorContains(t, err, "not an IP address")
}
