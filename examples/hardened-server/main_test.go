package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRunServesThenShutsDown is main's life cycle with ctx standing in for
// SIGINT/SIGTERM: it serves HTTP/1.1 and cleartext HTTP/2 on the public
// port, the admin endpoints on their own port only, then returns nil once
// ctx ends, leaving no goroutine behind (goleak checks after the test).
func TestRunServesThenShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	o := defaults()
	o.addr, o.adminAddr = "127.0.0.1:0", "127.0.0.1:0"
	o.upstreamDelay, o.grace = time.Millisecond, 5*time.Second
	type addrs struct{ public, admin net.Addr }
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, o, func(p, a net.Addr) { ready <- addrs{p, a} })
	}()
	var got addrs
	select {
	case got = <-ready:
	case err := <-done:
		t.Fatalf("run returned before serving: %v", err)
	}
	public, admin := "http://"+got.public.String(), "http://"+got.admin.String()

	h1 := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	defer h1.CloseIdleConnections()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 5 * time.Second}
	defer h2.CloseIdleConnections()

	get := func(c *http.Client, method, url string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(body)
	}
	for _, path := range []string{"/healthz", "/accounts/alice"} {
		resp, _ := get(h1, "GET", public+path)
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		resp, _ = get(h2, "GET", public+path)
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Equal(t, 2, resp.ProtoMajor, "the public port speaks h2c")
	}
	resp, _ := get(h1, "POST", public+"/charge")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the built-in provider answers within the upstream timeout")

	resp, _ = get(h1, "GET", public+"/debug/garrison")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "no admin endpoint on the public port")
	resp, body := get(h1, "GET", admin+"/debug/garrison")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	ln, ok := st["listener"].(map[string]any)
	require.True(t, ok, body)
	assert.Contains(t, ln, "accepted")
	rej, ok := ln["rejected"].(map[string]any)
	require.True(t, ok, "rejections by reason name: %s", body)
	assert.Contains(t, rej, "ip-conns")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

// TestEveryLimitIsAFlag checks that the flags' defaults are the Config's,
// so -h tells the truth, and that a flag reaches the Config.
func TestEveryLimitIsAFlag(t *testing.T) {
	var o options
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	o.bind(fs)
	require.NoError(t, fs.Parse([]string{"-max-conns", "77", "-rate-per-ip", "12.5", "-admin-addr", "", "-no-http2"}))
	assert.Equal(t, 77, o.cfg.MaxConns)
	assert.Equal(t, 12.5, float64(o.cfg.RatePerIP))
	assert.Empty(t, o.adminAddr)
	assert.True(t, o.cfg.DisableHTTP2)
	assert.Equal(t, 5, fs.Lookup("login-burst").Value.(flag.Getter).Get(), "the login flags show the Config's defaults")
	for _, name := range []string{"max-conns-per-ip", "first-byte-timeout", "min-read-rate", "read-header-timeout",
		"idle-timeout", "h2-max-streams", "burst-per-ip", "max-in-flight", "max-jobs", "lock-timeout", "upstream-timeout",
		"login-burst", "login-every", "login-users", "login-rate-per-ip", "login-burst-per-ip"} {
		assert.NotNil(t, fs.Lookup(name), name)
	}
	d := defaults()
	assert.Equal(t, "127.0.0.1:6060", d.adminAddr, "admin endpoints on loopback by default")
}
