package limiter

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPreflightLinux cross-checks every finding against the source it
// claims to read.
func TestPreflightLinux(t *testing.T) {
	fs := Preflight()
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
	var rl syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl))
	require.Equal(t, rl.Cur < PreflightMinNoFile, has("RLIMIT_NOFILE"))
	_, ok := readProcInt("/proc/does/not/exist")
	require.False(t, ok)
}
