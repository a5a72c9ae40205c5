package limiter

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLogRejectionsSamples(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		hook := LogRejections(slog.New(slog.NewTextHandler(&buf, nil)), time.Second)
		a := netip.MustParseAddr("192.0.2.7")
		for range 1000 {
			hook(a, Preempted)
		}
		hook(a, IPConns)
		require.Equal(t, 2, strings.Count(buf.String(), "\n"), "one line per reason per interval: %s", buf.String())
		time.Sleep(time.Second)
		hook(a, Preempted)
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		require.Len(t, lines, 3)
		require.Contains(t, lines[2], "reason=preempted count=1000 last_source=192.0.2.7")
		hook(a, numReasons) // out of range: ignored
		require.Len(t, strings.Split(strings.TrimSpace(buf.String()), "\n"), 3)
	})
}
