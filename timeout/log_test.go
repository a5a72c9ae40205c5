package timeout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/timeout"
)

// Twenty requests stall at once: a burst of lines, every stall counted in
// Stats, and no line per stall beyond the burst.
func TestSlogOnStuckSamples(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		wd, err := timeout.NewWatchdog(timeout.WithStallAfter(time.Second),
			timeout.WithOnStuck(timeout.SlogOnStuck(slog.New(slog.NewJSONHandler(&buf, nil)))))
		require.NoError(t, err)
		for range 20 {
			_, tok := wd.Track(context.Background(), "charge")
			defer tok.Done()
		}
		time.Sleep(3 * time.Second) // fake time
		synctest.Wait()
		require.NoError(t, wd.Close())
		assert.Equal(t, uint64(20), wd.Stats().Stalls)

		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		assert.Len(t, lines, 10)
		var first map[string]any
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
		assert.Equal(t, "WARN", first["level"])
		assert.Equal(t, "timeout: work stalled", first["msg"])
		assert.Equal(t, "charge", first["name"])
		assert.Contains(t, first, "since_beat")
	})
}
