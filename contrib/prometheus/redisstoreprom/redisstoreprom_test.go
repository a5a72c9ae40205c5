package redisstoreprom_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/garrison-go/garrison/contrib/prometheus/redisstoreprom"
	"github.com/garrison-go/garrison/limiter/redisstore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// With no Redis listening, every decision is the fail policy's: the
// collector shows them as fallback decisions and errors.
func TestFallbackDecisionsExported(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true, MaxRetries: -1})
	defer client.Close()
	rl, err := redisstore.New(client, 10, 1)
	require.NoError(t, err)
	c, err := redisstoreprom.NewCollector("api", rl)
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))

	for range 3 {
		_, err := rl.AllowContext(context.Background(), "k")
		require.True(t, errors.Is(err, redisstore.ErrUnavailable), "%v", err)
	}
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP garrison_redisstore_fallback_decisions_total Decisions made by the fail policy because Redis was unavailable.
# TYPE garrison_redisstore_fallback_decisions_total counter
garrison_redisstore_fallback_decisions_total{name="api"} 3
`), "garrison_redisstore_fallback_decisions_total"))
}

func TestNilLimiter(t *testing.T) {
	var rl *redisstore.Limiter
	_, err := redisstoreprom.NewCollector("api", rl)
	assert.Error(t, err)
	_, err = redisstoreprom.NewCollector("api", nil)
	assert.Error(t, err)
}
