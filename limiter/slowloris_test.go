package limiter

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFirstByteTimeout(t *testing.T) {
	var hooked []Reason
	var mu sync.Mutex
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithFirstByteTimeout(50*time.Millisecond),
		WithOnRejectConn(func(_ netip.Addr, r Reason) { mu.Lock(); hooked = append(hooked, r); mu.Unlock() }))
	conns := acceptLoop(t, l)

	dialFrom(t, l, "") // says nothing
	idle := <-conns
	_, err := idle.Read(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.ErrorContains(t, err, "client too slow")
	require.Equal(t, uint64(1), l.Stats().Rejected[SlowClient])
	require.Equal(t, int64(0), l.Stats().Active, "a slow client's slot is released")
	mu.Lock()
	require.Equal(t, []Reason{SlowClient}, hooked)
	mu.Unlock()

	talker := dialFrom(t, l, "")
	c := <-conns
	_, err = talker.Write([]byte("hi"))
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	// After the first byte no deadline is left behind: the application's
	// own deadline is the only one, and hitting it is not a SlowClient.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err = c.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NotContains(t, err.Error(), "too slow")
	require.Equal(t, uint64(1), l.Stats().Rejected[SlowClient])
	_ = c.Close()
}

func TestMinReadRate(t *testing.T) {
	// 1000 B/s over 100 ms windows: 100 bytes per window.
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithMinReadRate(1000, 100*time.Millisecond))
	conns := acceptLoop(t, l)

	fast := dialFrom(t, l, "")
	c := <-conns
	// Written before the first Read, so no scheduling delay can make the
	// first window come up short.
	_, err := fast.Write(make([]byte, 4096))
	require.NoError(t, err)
	n, err := io.ReadFull(c, make([]byte, 4096))
	require.NoError(t, err)
	require.Equal(t, 4096, n)
	_ = c.Close()

	trickler := dialFrom(t, l, "")
	c = <-conns
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := trickler.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}
	}()
	start := time.Now()
	var got int
	for {
		n, err := c.Read(make([]byte, 64))
		got += n
		if err != nil {
			require.ErrorContains(t, err, "client too slow")
			break
		}
		require.Less(t, time.Since(start), 5*time.Second, "trickler never cut off")
	}
	close(stop)
	<-done
	require.Less(t, got, 100)
	require.Equal(t, uint64(1), l.Stats().Rejected[SlowClient])
}

// TestSlowloris: attackers hold every connection slot with idle and
// trickling connections and reconnect as soon as they are cut off; a
// legitimate request is still served promptly because the guard frees slots
// from clients that do not send, and HardenServer bounds header reading.
func TestSlowloris(t *testing.T) {
	const slots = 8
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithMaxConns(slots),
		WithFirstByteTimeout(100*time.Millisecond), WithMinReadRate(200, 100*time.Millisecond))
	srv := HardenServer(&http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "served") }),
		// Kept (HardenServer only fills zeros), and long enough that only
		// the guard can explain a prompt answer.
		ReadHeaderTimeout: 4 * time.Second,
	})
	require.Equal(t, 4*time.Second, srv.ReadHeaderTimeout)
	require.Equal(t, HardenIdleTimeout, srv.IdleTimeout)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	ctx, stopAttack := context.WithCancel(context.Background())
	var attackers sync.WaitGroup
	attack := func(trickle bool) {
		defer attackers.Done()
		for ctx.Err() == nil {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", l.Addr().String())
			if err != nil {
				continue
			}
			_ = c.(*net.TCPConn).SetLinger(0)
			if trickle {
				_, _ = c.Write([]byte("GET / HTTP/1.1\r\n"))
			}
			tick := time.NewTicker(20 * time.Millisecond)
			for alive := true; alive; {
				select {
				case <-ctx.Done():
					alive = false
				case <-tick.C:
					if trickle {
						_, err = c.Write([]byte("X"))
					} else {
						_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
						_, err = c.Read(make([]byte, 1))
						if errors.Is(err, os.ErrDeadlineExceeded) {
							err = nil
						}
					}
					alive = err == nil
				}
			}
			tick.Stop()
			_ = c.Close()
		}
	}
	for i := range 2 * slots {
		attackers.Add(1)
		go attack(i%2 == 0)
	}
	require.Eventually(t, func() bool { return l.Stats().Active == slots }, 5*time.Second, time.Millisecond, "attack never filled the slots")

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := client.Get("http://" + l.Addr().String() + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, "served", string(body))
	t.Logf("legitimate request served after %v under attack; slow clients cut: %d", time.Since(start), l.Stats().Rejected[SlowClient])
	require.Less(t, time.Since(start), 2*time.Second)
	require.Positive(t, l.Stats().Rejected[SlowClient])

	stopAttack()
	attackers.Wait()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(shutdown))
	require.True(t, errors.Is(<-served, http.ErrServerClosed))
}
