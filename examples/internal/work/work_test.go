package work

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestJobReturnsWhenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Job{Size: 1024, Rounds: 1, Wait: time.Hour}.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Job.Run ignored its context")
	}
}

func TestJobCompletes(t *testing.T) {
	assert.NoError(t, Job{Size: 10, Rounds: 3}.Run(context.Background()))
	assert.NoError(t, Pause(context.Background(), 0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, Pause(ctx, time.Hour), context.Canceled)
	assert.ErrorIs(t, Pause(ctx, 0), context.Canceled)
}

func TestRoundsForScalesWithTheCost(t *testing.T) {
	small, large := RoundsFor(64<<10, 2*time.Millisecond), RoundsFor(64<<10, 20*time.Millisecond)
	assert.GreaterOrEqual(t, small, 1)
	// Ten times the CPU is about ten times the rounds; timing noise on a
	// shared machine is allowed a factor of two either way.
	assert.InDelta(t, 10, float64(large)/float64(small), 5)
	assert.Greater(t, RoundsFor(1<<10, 2*time.Millisecond), small, "a smaller buffer hashes faster, so it takes more rounds")
}
