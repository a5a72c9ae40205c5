package app

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/garrison-go/garrison/examples/internal/work"
)

func loginStatus(h http.Handler, user, password string) (int, http.Header) {
	return loginFrom(h, "192.0.2.1:1234", user, password)
}

func loginFrom(h http.Handler, addr, user, password string) (int, http.Header) {
	req := httptest.NewRequest(http.MethodPost, "/login?user="+user+"&password="+password, nil)
	req.RemoteAddr = addr
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header()
}

func TestLoginChecksPasswordAndLimitsAttempts(t *testing.T) {
	a, _ := newApp(t, Config{LoginBurst: 3, LoginEvery: time.Hour})
	h := a.Handler()
	code, _ := loginStatus(h, "alice", work.Password("alice"))
	assert.Equal(t, http.StatusOK, code)
	code, _ = loginStatus(h, "alice", "guess")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = loginStatus(h, "alice", "guess")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, hdr := loginStatus(h, "alice", work.Password("alice"))
	assert.Equal(t, http.StatusTooManyRequests, code, "the burst is spent, right password or not")
	assert.NotEmpty(t, hdr.Get("Retry-After"))
	code, _ = loginStatus(h, "bob", work.Password("bob"))
	assert.Equal(t, http.StatusOK, code, "another name has its own attempts")
	code, _ = loginStatus(h, strings.Repeat("x", maxUserName+1), "x")
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = loginStatus(h, "", "x")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, int64(1), a.Stats().Login.Rejected)
}

// TestLoginFloodOfJunkNamesDoesNotResetAVictim is the siege's chosen-keys
// attack in a test: between rounds of guesses at a victim, the attacker
// logs in as twice as many junk names as the table holds. The victim gets
// its burst once, and no round gives it a fresh one.
func TestLoginFloodOfJunkNamesDoesNotResetAVictim(t *testing.T) {
	const burst, users = 5, 256
	// Both per-address limits off: the attacker here has as many
	// addresses as it needs, and the test is of the per-user table.
	a, _ := newApp(t, Config{LoginBurst: burst, LoginEvery: time.Hour, LoginUsers: users, RatePerIP: rate.Inf, LoginRatePerIP: rate.Inf})
	h := a.Handler()
	admitted, junk := 0, 0
	for range 10 {
		for range burst {
			if code, _ := loginStatus(h, "victim", "guess"); code != http.StatusTooManyRequests {
				admitted++
			}
		}
		for range 2 * users {
			loginStatus(h, fmt.Sprintf("junk-%d", junk), "x")
			junk++
		}
	}
	assert.Equal(t, burst, admitted)
	st := a.Stats().Login.Limit
	require.Positive(t, st.LossyEvictions, "the flood must have evicted names for the test to mean anything")
}

// TestLoginPerAddressLimit: one address gets LoginBurstPerIP logins
// whatever the names, then 429; another address is not affected.
func TestLoginPerAddressLimit(t *testing.T) {
	a, _ := newApp(t, Config{LoginRatePerIP: rate.Every(time.Hour), LoginBurstPerIP: 3})
	h := a.Handler()
	for i := range 3 {
		code, _ := loginFrom(h, "192.0.2.7:1", fmt.Sprintf("junk-%d", i), "x")
		assert.Equal(t, http.StatusUnauthorized, code)
	}
	code, hdr := loginFrom(h, "192.0.2.7:1", "junk-3", "x")
	assert.Equal(t, http.StatusTooManyRequests, code)
	assert.NotEmpty(t, hdr.Get("Retry-After"))
	code, _ = loginFrom(h, "192.0.2.8:1", "carol", work.Password("carol"))
	assert.Equal(t, http.StatusOK, code)
	st := a.Stats().Login
	assert.Equal(t, int64(1), st.Rejected)
	assert.Equal(t, 4, st.Limit.Tracked, "three junk names and carol: the refused login never reached the per-user table")
}
