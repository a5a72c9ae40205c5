package naive

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func start(t *testing.T, cfg Config) (*Server, string, chan error) {
	t.Helper()
	s := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	return s, "http://" + ln.Addr().String(), served
}

func post(c *http.Client, url string) error {
	resp, err := c.Post(url, "", nil)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// TestCloseAfterDeadlock drives the twin into its deadlock, checks that it
// really hangs, and then that Close takes it down without leaving a
// goroutine behind (goleak runs after the tests) or crashing on an unlock.
func TestCloseAfterDeadlock(t *testing.T) {
	s, base, served := start(t, Config{LockPause: time.Millisecond})
	c := &http.Client{Transport: &http.Transport{}, Timeout: 300 * time.Millisecond}
	defer c.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if w%2 == 0 {
					_ = post(c, base+"/transfer?from=alice&to=bob&amount=1")
				} else {
					resp, err := c.Get(base + "/audit?account=alice")
					if err == nil {
						resp.Body.Close()
					}
				}
				// Stop once the journal is stuck: a transfer between two
				// other accounts needs only the journal to hang.
				if post(c, base+"/transfer?from=carol&to=dave&amount=1") != nil {
					cancel()
				}
			}
		})
	}
	wg.Wait()
	require.ErrorIs(t, context.Cause(ctx), context.Canceled, "the twin never deadlocked within 10 s")
	assert.Error(t, post(c, base+"/transfer?from=carol&to=dave&amount=1"), "the deadlock is permanent")

	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	require.NoError(t, s.Close(cctx))
	require.NoError(t, <-served)
}

// TestLostUpdates shows the bug the race detector cannot see: every access
// to the counters is locked, yet concurrent deposits overwrite each other.
func TestLostUpdates(t *testing.T) {
	s, base, served := start(t, Config{CheckPause: time.Millisecond})
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	const workers, each = 32, 10
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				assert.NoError(t, post(c, base+"/deposit?account=carol&amount=1"))
			}
		})
	}
	wg.Wait()
	assert.Less(t, s.Usage().Deposits, int64(workers*each), "concurrent read-modify-write lost no update")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Close(ctx))
	require.NoError(t, <-served)
}
