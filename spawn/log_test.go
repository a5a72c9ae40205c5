package spawn_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/internal/panics"
	"github.com/garrison-go/garrison/spawn"
)

// jsonLines parses the JSON records s holds.
func jsonLines(t *testing.T, s *syncBuffer) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		out = append(out, m)
	}
	return out
}

func TestWithLoggerPanicsAndRejections(t *testing.T) {
	panics.ResetLogLimit()
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	s, err := spawn.New(spawn.WithLogger(logger), spawn.WithMaxConcurrent(1), spawn.WithQueue(0))
	require.NoError(t, err)
	ctx := context.Background()
	for range 3 {
		require.NoError(t, s.Go(ctx, func(context.Context) error { panic("boom") }))
	}
	release := make(chan struct{})
	require.NoError(t, s.Go(ctx, func(context.Context) error { <-release; return nil }))
	require.ErrorIs(t, s.TryGo(func(context.Context) error { return nil }), spawn.ErrSaturated)
	close(release)
	require.NoError(t, s.Shutdown(ctx))

	var panics, rejects int
	for _, l := range jsonLines(t, &buf) {
		switch l["msg"] {
		case "recovered panic with no hook to report it to":
			panics++
			assert.Equal(t, "ERROR", l["level"])
			assert.Equal(t, "boom", l["panic"])
			assert.Contains(t, l["stack"], "log_test.go")
		case "spawn: task rejected":
			rejects++
			assert.Equal(t, "WARN", l["level"])
			assert.Contains(t, l["reason"], "saturated")
		}
	}
	assert.Equal(t, 3, panics)
	assert.Equal(t, 1, rejects)
}

// A hook the caller set wins over the logger.
func TestWithLoggerKeepsHooks(t *testing.T) {
	var buf syncBuffer
	var hooked sync.WaitGroup
	hooked.Add(1)
	s, err := spawn.New(spawn.WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))),
		spawn.WithHooks(spawn.Hooks{OnPanic: func(*spawn.PanicError) { hooked.Done() }}))
	require.NoError(t, err)
	require.NoError(t, s.Go(context.Background(), func(context.Context) error { panic("x") }))
	hooked.Wait()
	require.NoError(t, s.Shutdown(context.Background()))
	assert.Empty(t, jsonLines(t, &buf))
}

func TestWithLoggerNil(t *testing.T) {
	_, err := spawn.New(spawn.WithLogger(nil))
	assert.Error(t, err)
}
