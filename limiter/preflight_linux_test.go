package limiter

import (
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPreflightLinux cross-checks every finding against the source it
// claims to read, for the default cap and for a listener's own.
func TestPreflightLinux(t *testing.T) {
	var rl syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl))
	// One cap below the limit and one above it: both verdicts occur.
	low := max(int(rl.Cur)-PreflightFDHeadroom-1, 1)
	high := int(rl.Cur)
	for _, tc := range []struct {
		maxConns int
		deferred bool
	}{{low, false}, {high, true}} {
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		opts := []ListenerOption{WithMaxConns(tc.maxConns)}
		if tc.deferred {
			opts = append(opts, WithDeferAccept(time.Second))
		}
		l, err := NewListener(inner, opts...)
		require.NoError(t, err)
		fs := l.Preflight()
		require.NoError(t, l.Close())
		has := func(setting string) bool {
			for _, f := range fs {
				if f.Setting == setting {
					return true
				}
			}
			return false
		}
		if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_syncookies"); err == nil {
			require.Equal(t, strings.TrimSpace(string(b)) == "0", has("net.ipv4.tcp_syncookies"))
		}
		if v, ok := readProcInt("/proc/sys/net/core/somaxconn"); ok {
			require.Equal(t, v < PreflightMinSomaxconn, has("net.core.somaxconn"))
		}
		if v, ok := readProcInt("/proc/sys/net/ipv4/tcp_max_syn_backlog"); ok {
			require.Equal(t, v < PreflightMinSynBacklog, has("net.ipv4.tcp_max_syn_backlog"))
		}
		require.Equal(t, rl.Cur < uint64(tc.maxConns+PreflightFDHeadroom), has("RLIMIT_NOFILE"), "cap %d, limit %d", tc.maxConns, rl.Cur)
		require.Equal(t, !tc.deferred, has("TCP_DEFER_ACCEPT"))
	}
	_, ok := readProcInt("/proc/does/not/exist")
	require.False(t, ok)
}

// TestDeferAccept: with TCP_DEFER_ACCEPT a connection that says nothing is
// never handed to Accept, while one that speaks is.
func TestDeferAccept(t *testing.T) {
	l := newTestListener(t, "tcp", "127.0.0.1:0", WithDeferAccept(time.Second))
	v, ok := deferAccept(l.inner)
	require.True(t, ok)
	require.Positive(t, v)
	conns := acceptLoop(t, l)
	dialFrom(t, l, "127.0.0.1") // silent
	talker := dialFrom(t, l, "127.0.0.1")
	_, err := talker.Write([]byte("x"))
	require.NoError(t, err)
	c := <-conns
	require.Equal(t, talker.LocalAddr().String(), c.RemoteAddr().String(), "the silent connection came first")
	require.Equal(t, uint64(1), l.Stats().Incoming)
	_ = c.Close()
}
