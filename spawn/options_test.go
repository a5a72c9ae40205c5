package spawn_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/garrison-go/garrison/spawn"
)

func TestNewOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []spawn.Option
		wantErr bool
	}{
		{"defaults", nil, false},
		{"nil option", []spawn.Option{nil}, true},
		{"max concurrent 1", []spawn.Option{spawn.WithMaxConcurrent(1)}, false},
		{"max concurrent 0", []spawn.Option{spawn.WithMaxConcurrent(0)}, true},
		{"max concurrent negative", []spawn.Option{spawn.WithMaxConcurrent(-1)}, true},
		{"max concurrent huge", []spawn.Option{spawn.WithMaxConcurrent(1 << 30)}, true},
		{"queue 0", []spawn.Option{spawn.WithQueue(0)}, false},
		{"queue negative", []spawn.Option{spawn.WithQueue(-1)}, true},
		{"queue huge", []spawn.Option{spawn.WithQueue(math.MaxInt)}, true},
		{"waiters 0", []spawn.Option{spawn.WithMaxWaiters(0)}, false},
		{"waiters negative", []spawn.Option{spawn.WithMaxWaiters(-5)}, true},
		{"idle timeout", []spawn.Option{spawn.WithIdleTimeout(time.Second)}, false},
		{"idle timeout 0", []spawn.Option{spawn.WithIdleTimeout(0)}, true},
		{"rate", []spawn.Option{spawn.WithRate(100, 10)}, false},
		{"rate inf", []spawn.Option{spawn.WithRate(rate.Inf, 0)}, false},
		{"rate 0", []spawn.Option{spawn.WithRate(0, 1)}, true},
		{"rate negative", []spawn.Option{spawn.WithRate(-1, 1)}, true},
		{"rate NaN", []spawn.Option{spawn.WithRate(rate.Limit(math.NaN()), 1)}, true},
		{"rate burst 0", []spawn.Option{spawn.WithRate(10, 0)}, true},
		{"task timeout", []spawn.Option{spawn.WithTaskTimeout(time.Second)}, false},
		{"task timeout 0", []spawn.Option{spawn.WithTaskTimeout(0)}, true},
		{"task timeout negative", []spawn.Option{spawn.WithTaskTimeout(-time.Second)}, true},
		{"per key", []spawn.Option{spawn.WithPerKey(1, 1)}, false},
		{"per key 0 per key", []spawn.Option{spawn.WithPerKey(0, 10)}, true},
		{"per key 0 keys", []spawn.Option{spawn.WithPerKey(10, 0)}, true},
		{"guard heap", []spawn.Option{spawn.WithOverloadGuard(spawn.OverloadGuard{MaxHeapBytes: 1 << 30})}, false},
		{"guard goroutines", []spawn.Option{spawn.WithOverloadGuard(spawn.OverloadGuard{MaxGoroutines: 1e5})}, false},
		{"guard no threshold", []spawn.Option{spawn.WithOverloadGuard(spawn.OverloadGuard{})}, true},
		{"guard negative goroutines", []spawn.Option{spawn.WithOverloadGuard(spawn.OverloadGuard{MaxGoroutines: -1})}, true},
		{"guard negative period", []spawn.Option{spawn.WithOverloadGuard(spawn.OverloadGuard{MaxGoroutines: 10, SampleEvery: -1})}, true},
		{"hooks", []spawn.Option{spawn.WithHooks(spawn.Hooks{OnDone: func(error) {}})}, false},
		{"last wins", []spawn.Option{spawn.WithQueue(-1), spawn.WithQueue(3)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := spawn.New(tt.opts...)
			if tt.wantErr {
				require.Error(t, err)
				require.Nil(t, s)
				return
			}
			require.NoError(t, err)
			require.NoError(t, s.TryGo(func(context.Context) error { return nil }))
			require.NoError(t, s.Shutdown(context.Background()))
			st := s.Stats()
			require.Equal(t, int64(1), st.Submitted)
			require.Equal(t, int64(1), st.Succeeded)
		})
	}
}

// TestDefaultsAreFinite fills a spawner built with no options: it must
// refuse work at DefaultMaxConcurrent+DefaultQueue tasks, never run more
// than DefaultMaxConcurrent, and park no more than DefaultMaxWaiters.
func TestDefaultsAreFinite(t *testing.T) {
	s := newSpawner(t)
	release := make(chan struct{})
	block := func(context.Context) error { <-release; return nil }
	admitted := 0
	for s.TryGo(block) == nil {
		admitted++
		require.LessOrEqual(t, admitted, spawn.DefaultMaxConcurrent+spawn.DefaultQueue)
	}
	require.Equal(t, spawn.DefaultMaxConcurrent+spawn.DefaultQueue, admitted)
	require.Eventually(t, func() bool { return s.Stats().Running == spawn.DefaultMaxConcurrent }, 10*time.Second, time.Millisecond)
	require.LessOrEqual(t, s.Stats().Workers, spawn.DefaultMaxConcurrent)

	// Park the default number of waiters; the next one is refused.
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, spawn.DefaultMaxWaiters)
	for range spawn.DefaultMaxWaiters {
		go func() { errs <- s.Go(ctx, block) }()
	}
	require.Eventually(t, func() bool { return s.Stats().Waiting == spawn.DefaultMaxWaiters }, 10*time.Second, time.Millisecond)
	require.ErrorIs(t, s.Go(ctx, block), spawn.ErrSaturated)
	cancel()
	for range spawn.DefaultMaxWaiters {
		require.ErrorIs(t, <-errs, context.Canceled)
	}
	close(release)
	require.NoError(t, s.Shutdown(context.Background()))
	assertAccounted(t, s)
}
