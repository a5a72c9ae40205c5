package redisstoreotel_test

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/garrison-go/garrison/contrib/otel/redisstoreotel"
	"github.com/garrison-go/garrison/limiter/redisstore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// With no Redis listening every decision is the fail policy's.
func TestFallbackDecisionsObserved(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { require.NoError(t, provider.Shutdown(ctx)) }()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true, MaxRetries: -1})
	defer client.Close()
	rl, err := redisstore.New(client, 10, 1)
	require.NoError(t, err)
	reg, err := redisstoreotel.Observe(provider.Meter("t"), "api", rl)
	require.NoError(t, err)
	defer func() { require.NoError(t, reg.Unregister()) }()

	for range 2 {
		_, err := rl.AllowContext(ctx, "k")
		require.True(t, errors.Is(err, redisstore.ErrUnavailable), "%v", err)
	}
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	found := false
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name != "garrison.redisstore.fallback_decisions" {
			continue
		}
		dp := m.Data.(metricdata.Sum[int64]).DataPoints[0]
		assert.Equal(t, int64(2), dp.Value)
		v, ok := dp.Attributes.Value(attribute.Key("name"))
		assert.True(t, ok)
		assert.Equal(t, "api", v.AsString())
		found = true
	}
	assert.True(t, found)

	var nilLimiter *redisstore.Limiter
	_, err = redisstoreotel.Observe(provider.Meter("t"), "api", nilLimiter)
	assert.Error(t, err)
}
