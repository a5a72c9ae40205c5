package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// With Redis down, every decision falls back; the log gets a bounded
// number of lines that name the policy and the error.
func TestWithLoggerLogsFallbacks(t *testing.T) {
	var buf bytes.Buffer
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true, MaxRetries: -1})
	defer c.Close()
	rl, err := New(c, 10, 1, WithFailPolicy(FailOpen), WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
	require.NoError(t, err)
	const calls = 30
	for range calls {
		d, err := rl.AllowContext(context.Background(), "k")
		require.True(t, errors.Is(err, ErrUnavailable), "%v", err)
		require.True(t, d.Allowed)
	}
	require.Equal(t, uint64(calls), rl.Stats().FallbackDecisions)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	assert.GreaterOrEqual(t, len(lines), 10)
	assert.Less(t, len(lines), calls, "sampled, not one line per decision")
	var first map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	assert.Equal(t, "WARN", first["level"])
	assert.Equal(t, "FailOpen", first["policy"])
	assert.Equal(t, true, first["allowed"])
	assert.NotEmpty(t, first["error"])
}

func TestWithLoggerNil(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer c.Close()
	_, err := New(c, 10, 1, WithLogger(nil))
	assert.ErrorIs(t, err, ErrInvalidOption)
}
