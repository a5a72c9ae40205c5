package limiter

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHardenServer(t *testing.T) {
	srv := HardenServer(&http.Server{WriteTimeout: time.Minute, IdleTimeout: -1, MaxHeaderBytes: 1 << 20})
	require.Equal(t, HardenReadHeaderTimeout, srv.ReadHeaderTimeout)
	require.Equal(t, HardenReadTimeout, srv.ReadTimeout)
	require.Equal(t, time.Minute, srv.WriteTimeout)
	require.Equal(t, time.Duration(-1), srv.IdleTimeout)
	require.Equal(t, 1<<20, srv.MaxHeaderBytes)

	fresh := HardenServer(nil)
	require.Equal(t, HardenReadHeaderTimeout, fresh.ReadHeaderTimeout)
	require.Equal(t, HardenReadTimeout, fresh.ReadTimeout)
	require.Equal(t, HardenWriteTimeout, fresh.WriteTimeout)
	require.Equal(t, HardenIdleTimeout, fresh.IdleTimeout)
	require.Equal(t, HardenMaxHeaderBytes, fresh.MaxHeaderBytes)
}

func TestPreflightFindingsAreComplete(t *testing.T) {
	for _, f := range Preflight() {
		require.NotEmpty(t, f.Setting)
		require.NotEmpty(t, f.Value)
		require.NotEmpty(t, f.Want)
		require.NotEmpty(t, f.Why)
		require.True(t, strings.HasPrefix(f.String(), f.Setting+" = "+f.Value))
	}
}
