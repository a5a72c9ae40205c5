package limiter_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/limiter"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A flood of rejected connections makes a bounded number of lines, and
// every rejection is either logged or counted in a line's "suppressed".
func TestWithLoggerSamplesRejections(t *testing.T) {
	const flood = 60
	begin := time.Now()
	var buf lockedBuffer
	var hooked sync.WaitGroup
	hooked.Add(flood)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln, err := limiter.NewListener(inner, limiter.WithMaxConnsPerIP(1),
		limiter.WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))),
		limiter.WithOnRejectConn(func(_ netip.Addr, _ limiter.Reason) { hooked.Done() }))
	require.NoError(t, err)
	accepted := make(chan net.Conn, 1)
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	holder, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer holder.Close()
	server := <-accepted
	defer server.Close()
	for range flood {
		// The reset may beat the handshake's end: the dial then fails.
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
		}
	}
	hooked.Wait() // the hook still sees every rejection
	require.Equal(t, uint64(flood), ln.Stats().Rejected[limiter.IPConns])
	require.NoError(t, ln.Close())
	for c := range accepted {
		_ = c.Close()
	}

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	// A burst of 10, then one per second of the test at most.
	assert.LessOrEqual(t, len(lines), 10+int(time.Since(begin).Seconds())+1)
	var logged, suppressed int
	for _, l := range lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		assert.Equal(t, "limiter: connection rejected", m["msg"])
		assert.Equal(t, "ip-conns", m["reason"])
		assert.Equal(t, "127.0.0.1", m["remote"])
		logged++
		suppressed += int(m["suppressed"].(float64))
	}
	assert.LessOrEqual(t, logged+suppressed, flood)
	assert.GreaterOrEqual(t, logged, 10)
}

func TestWithLoggerNil(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer inner.Close()
	_, err = limiter.NewListener(inner, limiter.WithLogger(nil))
	assert.Error(t, err)
}
